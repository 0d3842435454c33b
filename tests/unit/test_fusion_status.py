"""Job status responses normalised into phases, whatever shape Fusion sends them in."""

from typing import Any

import pytest

from fusion_extract.errors import UpstreamError
from fusion_extract.fusion.status import parse_job_status
from fusion_extract.models import Mode, Phase

RUNNING, SUCCEEDED, FAILED, NEEDS_HUMAN = Phase.RUNNING, Phase.SUCCEEDED, Phase.FAILED, Phase.NEEDS_HUMAN


def documented(status: str, completed: bool | None = None, message: str | None = None) -> dict[str, Any]:
    """The shape of Oracle's documented status example: jobDetails object with jobProgress."""
    progress: dict[str, Any] = {"jobRequestId": 44046, "status": status, "completedPercentage": "50"}
    if completed is not None:
        progress["completed"] = completed
    if message is not None:
        progress["message"] = message
    return {"jobDetails": {"jobRequestId": 44046, "jobStatus": status, "jobProgress": progress}}


@pytest.mark.parametrize(
    ("status", "phase", "warning"),
    [
        ("SUCCEEDED", SUCCEEDED, False),
        ("FINISHED", SUCCEEDED, False),
        ("WARNING", SUCCEEDED, True),
        ("ERROR", FAILED, False),
        ("FAILED", FAILED, False),
        ("EXPIRED", FAILED, False),
        ("VALIDATION_FAILED", FAILED, False),
        ("CANCELLED", FAILED, False),
        ("CANCELED", FAILED, False),
        ("ERROR_MANUAL_RECOVERY", NEEDS_HUMAN, False),
        ("SCHEDULE_ENDED", NEEDS_HUMAN, False),
        ("HOLD", RUNNING, False),
        ("PAUSED", RUNNING, False),
        ("COMPLETED", SUCCEEDED, False),  # with jobProgress.completed true
        ("WAIT", RUNNING, False),
        ("READY", RUNNING, False),
        ("PENDING_VALIDATION", RUNNING, False),
        ("ENQUEUED", RUNNING, False),
        ("RUNNING", RUNNING, False),
        ("IN_PROGRESS", RUNNING, False),
        ("BLOCKED", RUNNING, False),
        ("CANCELLING", RUNNING, False),
        ("ERROR_AUTO_RETRY", RUNNING, False),
    ],
)
def test_parse_job_status_maps_each_scheduler_state_to_its_phase(status, phase, warning):
    result = parse_job_status("44046", documented(status, completed=True))

    assert (result.status, result.phase, result.warning, result.known) == (status, phase, warning, True)


def test_parse_job_status_unknown_state_is_running_and_flagged_unknown():
    result = parse_job_status("44046", documented("DREAMING"))

    assert (result.phase, result.known, result.status) == (RUNNING, False, "DREAMING")


@pytest.mark.parametrize("status", ["SUCCEEDED", "FINISHED", "WARNING"])
def test_parse_job_status_success_not_marked_completed_is_still_running(status):
    assert parse_job_status("44046", documented(status, completed=False)).phase is RUNNING


def test_parse_job_status_success_without_completed_flag_is_success():
    assert parse_job_status("44046", documented("SUCCEEDED")).phase is SUCCEEDED


def test_parse_job_status_reads_progress_message_and_upper_cases_status():
    result = parse_job_status(
        "44046", documented(" succeeded ", completed=True, message="Job status is changed")
    )

    assert (result.status, result.phase, result.message) == ("SUCCEEDED", SUCCEEDED, "Job status is changed")


def test_parse_job_status_prefers_top_level_job_status():
    body = {"jobStatus": "FAILED", "jobDetails": {"jobStatus": "RUNNING"}}

    assert parse_job_status("1", body).phase is FAILED


def test_parse_job_status_falls_back_to_details_progress_status():
    body = {"jobDetails": {"jobProgress": {"status": "ERROR"}}}

    assert parse_job_status("1", body).phase is FAILED


def test_parse_job_status_falls_back_to_top_level_progress_status():
    body = {"jobProgress": {"status": "SUCCEEDED", "completed": True}}

    assert parse_job_status("1", body).phase is SUCCEEDED


def test_parse_job_status_details_list_uses_element_of_this_job():
    # Given jobDetails as a list where this job is not the first element
    body = {
        "jobDetails": [
            {"jobRequestId": 1, "jobStatus": "ERROR"},
            {"jobRequestId": 2, "jobStatus": "SUCCEEDED", "jobProgress": {"completed": True}},
        ]
    }

    # When job 2's status is read, Then its own element decides
    assert parse_job_status("2", body).phase is SUCCEEDED


def test_parse_job_status_details_list_without_match_uses_first_element():
    body = {"jobDetails": [{"jobRequestId": 9, "jobStatus": "RUNNING"}, {"jobStatus": "ERROR"}]}

    assert parse_job_status("2", body).phase is RUNNING


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"jobDetails": {}},
        {"jobDetails": []},
        {"jobStatus": ""},
        {"jobStatus": 3},
        {"jobDetails": {"jobProgress": {"status": None}}},
    ],
)
def test_parse_job_status_without_status_raises_malformed_response(body):
    with pytest.raises(UpstreamError, match="job 7: status response has no jobStatus"):
        parse_job_status("7", body)


@pytest.mark.parametrize("body", [None, [], "SUCCEEDED"])
def test_parse_job_status_when_body_not_object_raises(body):
    with pytest.raises(UpstreamError, match="not a JSON object"):
        parse_job_status("7", body)


# --- COMPLETED and jobProgress.completed (the chain's grace rule reads `unconfirmed`) ---


def test_parse_job_status_completed_confirmed_by_progress_is_success():
    result = parse_job_status("44046", documented("COMPLETED", completed=True))

    assert (result.phase, result.completed, result.unconfirmed) == (SUCCEEDED, True, False)


@pytest.mark.parametrize("completed", [False, None])
def test_parse_job_status_completed_without_confirmation_is_running_and_flagged_unconfirmed(completed):
    # Given COMPLETED (ESS: post-processing has started) without jobProgress.completed == true
    result = parse_job_status("44046", documented("COMPLETED", completed=completed))

    # Then polling goes on, and the chain can tell it apart from an ordinary RUNNING
    assert (result.phase, result.completed, result.unconfirmed) == (RUNNING, completed, True)


def test_parse_job_status_success_with_completed_false_is_flagged_unconfirmed():
    result = parse_job_status("44046", documented("SUCCEEDED", completed=False))

    assert (result.phase, result.unconfirmed) == (RUNNING, True)


@pytest.mark.parametrize("status", ["RUNNING", "PAUSED", "ERROR"])
def test_parse_job_status_other_states_are_never_unconfirmed(status):
    assert parse_job_status("44046", documented(status, completed=False)).unconfirmed is False


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("FALSE", False), ("yes", None), (1, None)])
def test_parse_job_status_completed_reads_text_booleans_only(value, expected):
    body = {"jobDetails": {"jobStatus": "RUNNING", "jobProgress": {"completed": value}}}

    assert parse_job_status("1", body).completed is expected


# --- failures that resubmitting will not fix ---


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("VALIDATION_FAILED", None),
        ("ERROR", "Job status is changed to ERROR: extract definition 'Slaes' does not exist"),
        ("ERROR", "The extract definition Slaes was not found"),
    ],
)
def test_parse_job_status_failure_of_a_missing_definition_is_a_validation_failure(status, message):
    result = parse_job_status("44046", documented(status, completed=True, message=message))

    assert (result.phase, result.validation_failed) == (FAILED, True)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("ERROR", "Job status is changed to ERROR: the extract failed"),
        ("ERROR", None),
        ("CANCELLED", "definition does not exist"),
        ("RUNNING", "definition does not exist"),
    ],
)
def test_parse_job_status_other_failures_are_not_validation_failures(status, message):
    assert parse_job_status("44046", documented(status, message=message)).validation_failed is False


def with_request(description: Any = None, **parameters: Any) -> dict[str, Any]:
    """The documented status with its `jobRequest` echo: the description and requestParameters as sent."""
    body = documented("SUCCEEDED")
    request: dict[str, Any] = {"serviceName": "boss", "jobDefinitionName": "DataExport"}
    if description is not None:
        request["description"] = description
    if parameters:
        request["requestParameters"] = {f"submit.{key}": value for key, value in parameters.items()}
    body["jobDetails"]["jobRequest"] = request
    return body


@pytest.mark.parametrize(
    ("body", "extract", "mode"),
    [
        # requestParameters, as Fusion acts on them
        (with_request(argument1="Sales", argument2="Incremental Data Extract"), "Sales", Mode.INCREMENTAL),
        (with_request(argument1="Sales", argument2="Full Data Extract"), "Sales", Mode.FULL),
        # the documented four-part description, when the parameters are not echoed
        (
            with_request("ExtractMostLabels-Test-OMS::ExtractMostLabels::Full::Immediate"),
            "ExtractMostLabels",
            Mode.FULL,
        ),
        (
            with_request("TESTEXT2411-Incemental::TESTEXT2411::Incremental::Hourly"),
            "TESTEXT2411",
            Mode.INCREMENTAL,
        ),
        # the parameters win over a description that says otherwise (the description is free text)
        (
            with_request(
                "x::Orders::Full::Immediate", argument1="Sales", argument2="Incremental Data Extract"
            ),
            "Sales",
            Mode.INCREMENTAL,
        ),
        # not said: nothing is guessed
        (documented("SUCCEEDED"), None, None),
        (with_request("a free text description"), None, None),
        (with_request("x::Sales::Weekly::Immediate"), "Sales", None),
        (with_request(argument1="", argument2="Some Other Extract"), None, None),
        (with_request(argument1=7, argument2=None), None, None),
    ],
)
def test_job_status_reports_the_extract_and_mode_the_job_ran_as_fusion_says_them(
    body: dict[str, Any], extract: str | None, mode: Mode | None
) -> None:
    # Given a status body; When it is parsed, Then the job's extract and mode are Fusion's, or None
    status = parse_job_status("44046", body)
    assert (status.extract, status.mode) == (extract, mode)
