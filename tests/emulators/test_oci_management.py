"""The control-plane reads operators' tools make first, through the real SDK: GetFunction, ListFunctions,
ListApplications, GetTopic, ListSchedules; and the emulator's job ids across restarts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oci
import pytest

from tests.emulators.__main__ import JOB_ID_BLOCK, reserve_job_ids
from tests.emulators.oci import COMPARTMENT, OciEmulator
from tests.emulators.oci.functions import FunctionsService, RecordingFunction
from tests.emulators.oci.management import APPLICATION, Management
from tests.emulators.oci.notifications import NotificationsService
from tests.emulators.oci.scheduler import SchedulerService

SUBMIT = "ocid1.fnfunc.oc1.emu.submit"


@pytest.fixture
def emulated(tmp_path: Path) -> Iterator[tuple[OciEmulator, NotificationsService]]:
    functions = FunctionsService()
    functions.register(SUBMIT, RecordingFunction("fusion-extract-submit"))
    scheduler = SchedulerService(functions)
    scheduler.add_schedule("extract-Sales", SUBMIT, "ICAL", "FREQ=DAILY;BYHOUR=2", '{"extract": "Sales"}')
    with OciEmulator(root=tmp_path / "oci") as emu, NotificationsService(functions) as ons:
        emu.add_service(Management(functions, ons, scheduler, compartment=COMPARTMENT))
        yield emu, ons


def _client(cls: Any, emu: OciEmulator) -> Any:
    return cls(emu.api_key_config(), service_endpoint=emu.endpoint)


def test_get_function_gives_the_emulator_as_the_invoke_endpoint(emulated: tuple[OciEmulator, Any]) -> None:
    # Given a registered function, When GetFunction asks for it
    emu, _ = emulated
    function = _client(oci.functions.FunctionsManagementClient, emu).get_function(SUBMIT).data

    # Then it is ACTIVE in the application, invoked at this emulator (as `oci fn function invoke` needs)
    assert (function.display_name, function.application_id, function.lifecycle_state) == (
        "fusion-extract-submit",
        APPLICATION,
        "ACTIVE",
    )
    assert function.invoke_endpoint == emu.endpoint


def test_list_applications_and_functions_find_the_chain(emulated: tuple[OciEmulator, Any]) -> None:
    # Given the emulator, When the application and its functions are listed
    emu, _ = emulated
    client = _client(oci.functions.FunctionsManagementClient, emu)
    (application,) = client.list_applications(COMPARTMENT).data
    functions = client.list_functions(application.id).data

    # Then the one application holds the registered function
    assert application.id == APPLICATION and [f.id for f in functions] == [SUBMIT]


def test_get_topic_reads_a_topic_and_refuses_an_unknown_one(emulated: tuple[OciEmulator, Any]) -> None:
    # Given a topic
    emu, ons = emulated
    topic_id = ons.create_topic("fusion-extract-alerts")
    client = _client(oci.ons.NotificationControlPlaneClient, emu)

    # When GetTopic reads it, and an unknown one, Then the first is ACTIVE and the second 404
    assert client.get_topic(topic_id).data.name == "fusion-extract-alerts"
    with pytest.raises(oci.exceptions.ServiceError) as raised:
        client.get_topic("ocid1.onstopic.oc1.emu.nothing")
    assert raised.value.status == 404


def test_list_schedules_reports_each_schedule_with_its_body(emulated: tuple[OciEmulator, Any]) -> None:
    # Given a schedule starting submit with a body, When ListSchedules runs
    emu, _ = emulated
    items = (
        _client(oci.resource_scheduler.ScheduleClient, emu)
        .list_schedules(compartment_id=COMPARTMENT)
        .data.items
    )

    # Then it is there, with its function and BODY
    (schedule,) = items
    (resource,) = schedule.resources
    assert resource.id == SUBMIT
    assert json.loads(resource.parameters[0].value[0]) == {"extract": "Sales"}


def test_reserve_job_ids_never_gives_an_id_twice_across_restarts(tmp_path: Path) -> None:
    # Given no reservation yet, When the emulator starts twice
    path = tmp_path / "next-job-id"
    first, second = reserve_job_ids(path), reserve_job_ids(path)

    # Then the second session starts past every id the first could use
    assert first == 44046 and second == first + JOB_ID_BLOCK
