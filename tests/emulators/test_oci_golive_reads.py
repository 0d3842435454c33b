"""What `doctor --cloud` reads from the operator's side, through the real SDK: a function's configuration and
image, a topic's subscriptions, the alarms, a secret's metadata, a bucket's lifecycle policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import oci
import pytest
from oci.object_storage.models import ObjectLifecycleRule, ObjectNameFilter, PutObjectLifecyclePolicyDetails

from tests.emulators.oci import COMPARTMENT, OciEmulator
from tests.emulators.oci.functions import FunctionsService, RecordingFunction
from tests.emulators.oci.management import Management
from tests.emulators.oci.notifications import NotificationsService
from tests.emulators.oci.scheduler import SchedulerService

SUBMIT = "ocid1.fnfunc.oc1.emu.submit"
IMAGE = "fra.ocir.io/ns/fusion-extract:1.2.3"


def _client(cls: Any, emu: OciEmulator) -> Any:
    return cls(
        emu.api_key_config(), service_endpoint=emu.endpoint, retry_strategy=oci.retry.NoneRetryStrategy()
    )


def test_get_function_reports_its_configuration_and_image_in_both_api_shapes(emu: OciEmulator) -> None:
    # Given a function deployed with a configuration and an image
    functions = FunctionsService()
    functions.register(
        SUBMIT, RecordingFunction("fusion-extract-submit"), config={"BUCKET_NAME": "b"}, image=IMAGE
    )
    with NotificationsService(functions) as ons:
        emu.add_service(Management(functions, ons, SchedulerService(functions), compartment=COMPARTMENT))

        # When GetFunction reads it
        function = _client(oci.functions.FunctionsManagementClient, emu).get_function(SUBMIT).data

    # Then its configuration is there, and its image as the 20260325 API gives it (sourceDetails)
    assert function.config == {"BUCKET_NAME": "b"}
    assert (function.source_details.source_type, function.source_details.image) == ("CONTAINER_IMAGE", IMAGE)


def test_list_subscriptions_names_each_function_a_topic_invokes(emu: OciEmulator) -> None:
    # Given two topics, the first subscribed by submit
    functions = FunctionsService()
    with NotificationsService(functions) as ons:
        emu.add_service(Management(functions, ons, SchedulerService(functions), compartment=COMPARTMENT))
        rerun, lonely = ons.create_topic("rerun"), ons.create_topic("lonely")
        ons.subscribe(rerun, SUBMIT)
        client = _client(oci.ons.NotificationDataPlaneClient, emu)

        # When each topic's subscriptions are listed
        subscribed = client.list_subscriptions(COMPARTMENT, topic_id=rerun).data
        unsubscribed = client.list_subscriptions(COMPARTMENT, topic_id=lonely).data

    # Then the first invokes submit, ACTIVE, and the second has none
    assert [(s.protocol, s.endpoint, s.lifecycle_state) for s in subscribed] == [
        ("ORACLE_FUNCTIONS", SUBMIT, "ACTIVE")
    ]
    assert unsubscribed == []


def test_list_alarms_lists_the_compartment_alarms(emu: OciEmulator) -> None:
    # Given an alarm, When the compartment's alarms are listed (and another compartment's)
    emu.monitoring.add_alarm(
        "fusion-extract-run-failed", "RunsFailed[5m].sum() > 0", ["ocid1.onstopic.oc1..a"]
    )
    client = _client(oci.monitoring.MonitoringClient, emu)
    (alarm,) = client.list_alarms(COMPARTMENT).data
    elsewhere = client.list_alarms("ocid1.compartment.oc1..other").data

    # Then the alarm is there, enabled, with its query and destination; none elsewhere
    assert (alarm.display_name, alarm.namespace, alarm.is_enabled) == (
        "fusion-extract-run-failed",
        "fusion_extract",
        True,
    )
    assert alarm.query.startswith("RunsFailed") and alarm.destinations == ["ocid1.onstopic.oc1..a"]
    assert elsewhere == []


def test_get_secret_reads_the_metadata_never_the_content(emu: OciEmulator) -> None:
    # Given a secret in two versions
    secret_id = emu.put_secret("fusion-extract-credentials", b'{"client_secret": "x"}')
    emu.put_secret("fusion-extract-credentials", b'{"client_secret": "y"}')

    # When Vault management's GetSecret reads it (and an unknown one)
    client = _client(oci.vault.VaultsClient, emu)
    secret = client.get_secret(secret_id).data
    with pytest.raises(oci.exceptions.ServiceError) as unknown:
        client.get_secret("ocid1.vaultsecret.oc1..none")

    # Then it is ACTIVE at its current version, with no content; the unknown one is 404
    assert (secret.secret_name, secret.lifecycle_state, secret.current_version_number) == (
        "fusion-extract-credentials",
        "ACTIVE",
        2,
    )
    assert "client_secret" not in str(secret)
    assert (unknown.value.status, unknown.value.code) == (404, "NotAuthorizedOrNotFound")


def test_lifecycle_policy_put_then_get_round_trips_and_is_404_before(
    emu: OciEmulator, tmp_path: Path
) -> None:
    # Given a bucket without a lifecycle policy
    emu.create_bucket("landing")
    client = _client(oci.object_storage.ObjectStorageClient, emu)
    with pytest.raises(oci.exceptions.ServiceError) as missing:
        client.get_object_lifecycle_policy("emuns", "landing")

    # When a policy is put, as Terraform puts it
    rule = ObjectLifecycleRule(
        name="expire-run-ledger",
        target="objects",
        action="DELETE",
        time_amount=90,
        time_unit="DAYS",
        is_enabled=True,
        object_name_filter=ObjectNameFilter(inclusion_prefixes=["_state/"]),
    )
    client.put_object_lifecycle_policy("emuns", "landing", PutObjectLifecyclePolicyDetails(items=[rule]))

    # Then it reads back as written; before, there was none (404)
    (read,) = client.get_object_lifecycle_policy("emuns", "landing").data.items
    assert (read.name, read.action, read.object_name_filter.inclusion_prefixes) == (
        "expire-run-ledger",
        "DELETE",
        ["_state/"],
    )
    assert missing.value.status == 404
