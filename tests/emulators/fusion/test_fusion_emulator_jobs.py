"""Job submission, status progression on the emulator clock, and the jobRequests list."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.clocks import ManualClock
from tests.emulators.fusion import ExtractScenario, FusionEmulator
from tests.emulators.fusion.batch import JOBS
from tests.emulators.fusion.plain_client import PlainClient

RUN_AT = {
    "fixedInterval": {"interval": 1, "timeUnit": "HOUR"},
    "startDate": "12/16/2025",
    "endDate": "12/16/2025",
    "startTime": "1930",
    "endTime": "2230",
}


def test_submit_valid_request_returns_202_with_absolute_location(client: PlainClient) -> None:
    # Given an authorized client
    client.authorize()
    # When it submits a DataExport job for a defined extract
    response = client.submit("Sales")
    # Then the job is accepted and located by an absolute https URL on the Fusion host
    assert response.status_code == 202
    job_id = client.fusion.jobs[0].id
    assert response.headers["Location"] == f"{client.fusion.base_url}{JOBS}/{job_id}"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"serviceName": "bicc"}, "serviceName"),
        ({"jobDefinitionName": "AsyncDataExtraction"}, "jobDefinitionName"),
        (
            {"requestParameters": {"submit.argument1": "Sales", "submit.argument2": "Delta"}},
            "submit.argument2",
        ),
        ({"requestParameters": {"submit.argument2": "Full Data Extract"}}, "submit.argument1"),
        ({"requestParameters": "Sales"}, "requestParameters"),
        ({"runAtTimes": {**RUN_AT, "startDate": "2025-12-16"}}, "startDate"),
        ({"runAtTimes": {**RUN_AT, "endTime": "2460"}}, "endTime"),
        ({"runAtTimes": {**RUN_AT, "fixedInterval": {"interval": 0, "timeUnit": "HOUR"}}}, "interval"),
        ({"runAtTimes": {**RUN_AT, "endDate": "12/15/2025"}}, "endDate"),
        ({"priority": 1}, "priority"),
    ],
    ids=[
        "service",
        "definition",
        "mode",
        "no-extract",
        "parameters-not-object",
        "iso-date",
        "bad-time",
        "zero-interval",
        "end-before-start",
        "unknown-field",
    ],
)
def test_submit_invalid_body_returns_400_naming_the_problem(
    client: PlainClient, change: dict[str, Any], named: str
) -> None:
    # Given an authorized client
    client.authorize()
    # When it submits a body that breaks one documented rule
    response = client.submit("Sales", **change)
    # Then it gets a 400 JSON error naming the offending field, and no job exists
    assert response.status_code == 400
    assert named in response.json()["detail"]
    assert client.fusion.jobs == []


def test_submit_non_json_body_returns_400(client: PlainClient) -> None:
    # Given an authorized client
    client.authorize()
    # When the body is not JSON
    response = client.session.post(
        f"{client.fusion.base_url}{JOBS}", data=b"{oops", headers={"Content-Type": "application/json"}
    )
    # Then the answer says so
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_status_echoes_request_with_description_and_run_at_times_as_sent(client: PlainClient) -> None:
    # Given a job submitted with an idempotency token in its description and a recurrence window
    client.authorize()
    description = "nightly::Sales::Full::Hourly::token=7f3a"
    job_id = client.submit_job("Sales", description=description, runAtTimes=RUN_AT)
    # When its status is read
    request = client.status(job_id).json()["jobDetails"]["jobRequest"]
    # Then the jobRequest echo keeps what was sent, next to the documented server fields
    assert request["description"] == description
    assert request["runAtTimes"] == RUN_AT
    assert request["requestParameters"] == {
        "submit.argument1": "Sales",
        "submit.argument2": "Full Data Extract",
    }
    assert request["timeoutThreshold"] == 36000
    assert request["jobSubmitter"] == "client-id"


def test_status_progresses_enqueued_running_succeeded_on_the_emulator_clock(
    client: PlainClient, clock: ManualClock
) -> None:
    # Given a job of the default scenario (1 s enqueued, 4 s running)
    client.authorize()
    job_id = client.submit_job("Sales")
    seen = []
    # When the clock moves through its life
    for seconds in (0, 1, 2, 2):
        clock.advance(seconds)
        seen.append(client.status(job_id).json()["jobDetails"])
    enqueued, started, halfway, done = seen
    # Then it reports each stage in the documented shape
    assert [details["jobStatus"] for details in seen] == ["ENQUEUED", "RUNNING", "RUNNING", "SUCCEEDED"]
    assert enqueued["jobProgress"]["message"] == "Job Request has been enqueued"
    assert (enqueued["jobProgress"]["completedPercentage"], enqueued["jobProgress"]["startTime"]) == (
        "0",
        None,
    )
    assert started["jobProgress"]["startTime"] == "2026-03-01T08:00:01Z"
    assert halfway["jobProgress"]["completedPercentage"] == "50"
    assert done["jobProgress"] == {
        "jobRequestId": job_id,
        "status": "SUCCEEDED",
        "message": "Job status is changed to SUCCEEDED",
        "startTime": "2026-03-01T08:00:01Z",
        "endTime": "2026-03-01T08:00:05Z",
        "completedPercentage": "100",
        "completed": True,
    }
    assert client.fusion.job(job_id).status == "SUCCEEDED"


@pytest.mark.parametrize(
    ("outcome", "completed"),
    [("ERROR", True), ("CANCELLED", True), ("WARNING", True), ("ERROR_MANUAL_RECOVERY", False)],
)
def test_status_scenario_outcome_is_reported_when_the_job_ends(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock, outcome: str, completed: bool
) -> None:
    # Given an extract whose jobs end with this outcome
    fusion.define_extract("Odd", ExtractScenario(outcome=outcome))
    client.authorize()
    job_id = client.submit_job("Odd")
    # When the job has had its time
    clock.advance(60)
    progress = client.status(job_id).json()["jobDetails"]["jobProgress"]
    # Then it reports the outcome; a job stuck for a human is not `completed`
    assert (progress["status"], progress["completed"]) == (outcome, completed)


def test_status_unknown_extract_ends_error_with_reason(client: PlainClient, clock: ManualClock) -> None:
    # Given a job for an extract that was never defined
    client.authorize()
    job_id = client.submit_job("NoSuchExtract")
    # When it has had its time
    clock.advance(60)
    progress = client.status(job_id).json()["jobDetails"]["jobProgress"]
    # Then it ended ERROR and says why
    assert progress["status"] == "ERROR"
    assert "NoSuchExtract" in progress["message"]


def test_status_fail_first_jobs_then_later_jobs_succeed(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock
) -> None:
    # Given an extract whose first two jobs fail
    fusion.define_extract("Flaky", ExtractScenario(fail_first_jobs=2))
    client.authorize()
    # When three jobs run to their end
    job_ids = [client.submit_job("Flaky") for _ in range(3)]
    clock.advance(60)
    # Then the first two ended ERROR and the rerun succeeded
    statuses = [client.status(job_id).json()["jobDetails"]["jobStatus"] for job_id in job_ids]
    assert statuses == ["ERROR", "ERROR", "SUCCEEDED"]


def test_status_passes_through_paused_and_completed_before_succeeding(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock
) -> None:
    # Given jobs that pause for sub-requests and post-process before they succeed
    fusion.define_extract("Slow", ExtractScenario(passes_through=("PAUSED", "COMPLETED"), seconds_passing=10))
    client.authorize()
    job_id = client.submit_job("Slow")
    seen = []
    # When the clock moves on
    for seconds in (5, 10, 10):
        clock.advance(seconds)
        seen.append(client.status(job_id).json()["jobDetails"]["jobProgress"])
    # Then COMPLETED is not final: only SUCCEEDED is
    assert [(progress["status"], progress["completed"]) for progress in seen] == [
        ("PAUSED", False),
        ("COMPLETED", False),
        ("SUCCEEDED", True),
    ]


def test_status_variants_jobdetails_as_list_and_status_at_top_level(
    fusion: FusionEmulator, client: PlainClient
) -> None:
    # Given two extracts answering in the shapes third-party clients assume
    fusion.define_extract("Listed", ExtractScenario(jobdetails_as_list=True))
    fusion.define_extract("Top", ExtractScenario(status_at_top_level=True))
    client.authorize()
    # When their jobs' statuses are read
    listed = client.status(client.submit_job("Listed")).json()
    top = client.status(client.submit_job("Top")).json()
    # Then one has jobDetails as a one-item list, the other the status only at the top
    assert isinstance(listed["jobDetails"], list)
    assert listed["jobDetails"][0]["jobStatus"] == "ENQUEUED"
    assert top["jobStatus"] == "ENQUEUED"
    assert "jobStatus" not in top["jobDetails"]
    assert "status" not in top["jobDetails"]["jobProgress"]


def test_status_without_the_job_request_echo_when_the_scenario_says_so(
    fusion: FusionEmulator, client: PlainClient
) -> None:
    # Given an extract whose status answers follow Oracle's later examples (no jobRequest echo)
    fusion.define_extract("Bare", ExtractScenario(echo_job_request=False))
    client.authorize()
    # When its job's status is read, Then jobDetails says nothing of the request
    details = client.status(client.submit_job("Bare")).json()["jobDetails"]
    assert "jobRequest" not in details and details["jobStatus"] == "ENQUEUED"


def test_status_unknown_job_returns_404(client: PlainClient) -> None:
    # Given an authorized client and no jobs
    client.authorize()
    # When it asks for a job that does not exist, by number and by garbage
    # Then both are 404 with a JSON error
    assert client.status(99).status_code == 404
    assert client.status("abc").json()["status"] == 404


def test_list_jobs_pages_with_limit_offset_and_has_more(client: PlainClient) -> None:
    # Given five submitted jobs with their own descriptions
    client.authorize()
    for number in range(5):
        client.submit("Sales", description=f"run-{number}")
    # When the list is read two at a time
    first = client.get(JOBS, params={"limit": 2}).json()
    last = client.get(JOBS, params={"limit": 2, "offset": 4}).json()
    # Then pages carry the paging fields and items carry the echo, oldest first
    assert (first["count"], first["hasMore"], first["totalItems"], first["offset"]) == (2, True, 5, 0)
    assert [item["jobRequest"]["description"] for item in first["items"]] == ["run-0", "run-1"]
    assert (last["count"], last["hasMore"]) == (1, False)
    assert last["items"][0]["jobStatus"] == "ENQUEUED"
    assert last["items"][0]["jobRequestId"] == client.fusion.jobs[-1].id


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "ten"}, {"offset": "-1"}])
def test_list_jobs_bad_paging_returns_400(client: PlainClient, query: dict[str, str]) -> None:
    # Given an authorized client
    client.authorize()
    # When it pages with a nonsensical value
    response = client.get(JOBS, params=query)
    # Then the answer names the parameter
    assert response.status_code == 400
    assert next(iter(query)) in response.json()["detail"]


def test_unsupported_method_returns_405_and_unknown_path_404(client: PlainClient) -> None:
    # Given an authorized client
    client.authorize()
    # When it deletes a job (no such operation) or calls an unknown saas-batch path
    deleted = client.session.delete(f"{client.fusion.base_url}{JOBS}/1")
    unknown = client.get("/api/saas-batch/jobscheduler/v2/jobRequests")
    # Then 405 and 404
    assert deleted.status_code == 405
    assert unknown.status_code == 404


def test_status_of_a_held_job_stays_running_until_the_test_releases_it(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock
) -> None:
    # Given an extract whose jobs are held, and a job of it long past its planned end
    release = threading.Event()
    fusion.define_extract("Sales", ExtractScenario(seconds_enqueued=0, seconds_running=0, hold=release))
    client.authorize()
    client.submit("Sales")
    job_id = fusion.jobs[0].id
    clock.advance(600)

    # When its status is read before and after the release
    held = client.status(job_id).json()["jobDetails"]
    release.set()
    released = client.status(job_id).json()["jobDetails"]

    # Then it was RUNNING, not completed, while held; then it ended as planned
    assert (held["jobStatus"], held["jobProgress"]["completed"]) == ("RUNNING", False)
    assert (released["jobStatus"], released["jobProgress"]["completed"]) == ("SUCCEEDED", True)
