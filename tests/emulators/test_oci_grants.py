"""Withheld grants, through the real SDK: the emulator refuses an operation as OCI refuses a call no policy
allows (404, alike with a missing resource), for whom and on what the test chose, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import oci
import pytest
from oci.object_storage import ObjectStorageClient

from tests.emulators.oci import COMPARTMENT, OciEmulator
from tests.emulators.oci.functions import FunctionsService, RecordingFunction
from tests.emulators.oci.management import Management
from tests.emulators.oci.notifications import NotificationsService
from tests.emulators.oci.scheduler import SchedulerService, schedule_ocid

BUCKET = "landing"
POLL = "ocid1.fnfunc.oc1.emu.poll"


def _objects(emu: OciEmulator, signer: Any = None) -> Any:
    """A client as the function (its signer) or, without one, as the operator (an API key)."""
    auth = {"signer": signer} if signer is not None else {}
    config = {} if signer is not None else emu.api_key_config()
    return ObjectStorageClient(
        config, service_endpoint=emu.endpoint, retry_strategy=oci.retry.NoneRetryStrategy(), **auth
    )


def _function_signer(emu: OciEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A resource principal signer for the function POLL, as the function builds it."""
    for name, value in emu.resource_principal_env(tmp_path / "rp", resource_id=POLL).items():
        monkeypatch.setenv(name, value)
    return oci.auth.signers.get_resource_principals_signer()


def test_withheld_put_object_answers_bucket_not_found_to_that_principal_only(
    emu: OciEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bucket, and PutObject withheld from the poll function's principal
    emu.create_bucket(BUCKET)
    emu.withhold("PutObject", principal=POLL)
    function = _objects(emu, _function_signer(emu, tmp_path, monkeypatch))

    # When the function writes an object, Then OCI's answer for "missing or not authorized" comes back
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        function.put_object("emuns", BUCKET, "_state/x", b"x")
    assert (refused.value.status, refused.value.code) == (404, "BucketNotFound")
    assert "or you are not authorized to access it" in refused.value.message
    assert not emu.object_path(BUCKET, "_state/x").exists()

    # And the same function may still read, and another principal (the operator's key) may still write
    assert function.list_objects("emuns", BUCKET).data.objects == []
    _objects(emu).put_object("emuns", BUCKET, "_state/x", b"x")
    assert emu.object_path(BUCKET, "_state/x").read_bytes() == b"x"


def test_withheld_publish_refuses_one_topic_with_not_authorized_or_not_found(emu: OciEmulator) -> None:
    # Given two topics, publishing withheld on the first
    with NotificationsService(FunctionsService()) as ons:
        emu.add_service(ons)
        denied, allowed = ons.create_topic("denied"), ons.create_topic("allowed")
        emu.withhold("PublishMessage", resource=denied)
        client = oci.ons.NotificationDataPlaneClient(emu.api_key_config(), service_endpoint=emu.endpoint)
        message = oci.ons.models.MessageDetails(body="{}")

        # When a message is published to each
        with pytest.raises(oci.exceptions.ServiceError) as refused:
            client.publish_message(denied, message)
        client.publish_message(allowed, message)

        # Then the first is refused as OCI refuses it, and only the second was accepted
        assert (refused.value.status, refused.value.code) == (404, "NotAuthorizedOrNotFound")
        assert [m.topic_id for m in ons.published] == [allowed]


def test_withheld_secret_read_is_given_back_by_restore_and_by_reset(emu: OciEmulator, tmp_path: Path) -> None:
    # Given a secret whose bundle may not be read
    secret_id = emu.put_secret("credentials", b"{}")
    emu.withhold("GetSecretBundle", resource=secret_id)
    client = oci.secrets.SecretsClient(emu.api_key_config(), service_endpoint=emu.endpoint)

    # When it is read, Then 404; once the grant is given back it reads, and a reset gives every grant back
    with pytest.raises(oci.exceptions.ServiceError, match="NotAuthorizedOrNotFound"):
        client.get_secret_bundle(secret_id)
    emu.grants.restore()
    assert client.get_secret_bundle(secret_id).data.secret_id == secret_id
    emu.withhold("GetSecretBundle")
    emu.reset(tmp_path / "again")
    assert not emu.grants.refuses("GetSecretBundle", None, secret_id)


def test_withhold_of_an_unknown_operation_is_refused_naming_the_known_ones(emu: OciEmulator) -> None:
    with pytest.raises(ValueError, match=r"unknown operation 'PutObjects'.*PutObject"):
        emu.withhold("PutObjects")


def test_a_schedule_refused_invoke_starts_nothing_and_its_last_run_reads_failed(emu: OciEmulator) -> None:
    # Given two schedules of one function, the first of which may not invoke it
    functions = FunctionsService()
    poll = RecordingFunction("fusion-extract-poll")
    functions.register(POLL, poll)
    scheduler = SchedulerService(functions, grants=emu.grants)
    scheduler.add_schedule("sweep", POLL, "CRON", "*/5 * * * *", json.dumps({"kind": "sweep"}))
    scheduler.add_schedule("other", POLL, "CRON", "*/5 * * * *", json.dumps({"kind": "sweep"}))
    emu.withhold("InvokeFunction", principal=schedule_ocid("sweep"), resource=POLL)
    with NotificationsService(functions) as ons:
        emu.add_service(Management(functions, ons, scheduler, compartment=COMPARTMENT))

        # When both fire
        refused, started = scheduler.fire_now("sweep"), scheduler.fire_now("other")
        functions.wait_idle(10)

        # Then the refused one started nothing and ListSchedules reports its last run FAILED
        assert (refused.status, started.status) == (404, 202) and len(poll.calls) == 1
        client = oci.resource_scheduler.ScheduleClient(emu.api_key_config(), service_endpoint=emu.endpoint)
        found = {s.display_name: s for s in client.list_schedules(compartment_id=COMPARTMENT).data.items}
        assert (found["sweep"].last_run_status, found["other"].last_run_status) == ("FAILED", "SUCCEEDED")
        assert found["sweep"].id == schedule_ocid("sweep") and found["sweep"].time_last_run is not None
