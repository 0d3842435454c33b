"""Submitting and following Batch Processing jobs against the emulated Fusion over HTTPS: one job per run
token whatever fails, every status the scheduler can report mapped to its phase, throttling and 5xx
retried through the clock, and a pod without the feature named as such."""

from pathlib import Path

import pytest

from fusion_extract.errors import NotFoundError, TransientError
from fusion_extract.models import ExtractRequest, Mode, Phase
from tests.emulators.fusion import ExtractScenario
from tests.emulators.fusion.scenario import PASSING_STATUSES
from tests.integration.fusion_stack import EXTRACT, FINISHED, FULL_SALES, fusion_stack

JOB_LIST = r"/jobscheduler/v1/jobRequests/?$"
ONE_JOB = r"/jobscheduler/v1/jobRequests/\d+$"


def test_submit_sends_the_documented_request_and_returns_the_new_job_id(tmp_path: Path) -> None:
    # Given a Fusion pod with the extract
    with fusion_stack(tmp_path) as stack:
        # When a full extract is submitted for run token run-1
        job = stack.client.submit(FULL_SALES, "run-1")

        # Then Fusion holds exactly that job, its description carrying the run token
        (created,) = stack.fusion.jobs
        assert job == str(created.id)
        assert created.request["description"] == f"fusion-extract-run-1::{EXTRACT}::Full::Immediate"
        assert created.request["requestParameters"] == {
            "submit.argument1": EXTRACT,
            "submit.argument2": "Full Data Extract",
        }


def test_submit_when_the_answer_is_lost_after_the_job_was_created_finds_it_instead_of_posting_again(
    tmp_path: Path,
) -> None:
    # Given Fusion creates the job but the answer to the POST is a 503 (ambiguous submit)
    with fusion_stack(tmp_path) as stack:
        stack.fusion.fail_next(JOB_LIST, 503, method="POST", after_handling=True)

        # When a job is submitted
        job = stack.client.submit(FULL_SALES, "run-1")

        # Then the client found the job by its run token: one POST, exactly one job, and its id
        assert [served.status for served in stack.to_fusion("/jobRequests", "POST")] == [503]
        assert [str(created.id) for created in stack.fusion.jobs] == [job]
        assert [served.status for served in stack.to_fusion("/jobRequests", "GET")] == [200]


def test_submit_when_the_post_failed_before_any_job_existed_posts_again_once(tmp_path: Path) -> None:
    # Given the first two POSTs answer 503 before Fusion created anything
    with fusion_stack(tmp_path, ExtractScenario(server_errors=2)) as stack:
        # When a job is submitted
        job = stack.client.submit(FULL_SALES, "run-1")

        # Then the client looked for the job after each failure, found none, posted again: one job
        assert [served.status for served in stack.to_fusion("/jobRequests", "POST")] == [503, 503, 202]
        assert len(stack.to_fusion("/jobRequests", "GET")) == 2
        assert [str(created.id) for created in stack.fusion.jobs] == [job]
        assert stack.clock.sleeps == [0.5, 1.0]


def test_submit_when_throttled_waits_each_retry_after_and_creates_one_job(tmp_path: Path) -> None:
    # Given Fusion throttles the first two submissions with Retry-After: 7
    with fusion_stack(tmp_path, ExtractScenario(throttle_requests=2, retry_after=7)) as stack:
        # When a job is submitted
        stack.client.submit(FULL_SALES, "run-1")

        # Then the client waited exactly what Fusion asked, twice, and one job exists
        assert [served.status for served in stack.to_fusion("/jobRequests", "POST")] == [429, 429, 202]
        assert stack.clock.sleeps == [7.0, 7.0]
        assert len(stack.fusion.jobs) == 1


def test_submit_with_resume_and_an_existing_job_returns_it_without_posting(tmp_path: Path) -> None:
    # Given a job already submitted for run token run-1
    with fusion_stack(tmp_path) as stack:
        first = stack.client.submit(FULL_SALES, "run-1")

        # When run-1 is submitted again with resume (a duplicate delivery, a rerun of the step)
        again = stack.client.submit(FULL_SALES, "run-1", resume=True)

        # Then the same job came back and no second one was created
        assert again == first
        assert len(stack.to_fusion("/jobRequests", "POST")) == 1
        assert len(stack.fusion.jobs) == 1


def test_submit_with_resume_for_a_new_run_token_creates_its_job(tmp_path: Path) -> None:
    # Given a job of run token run-1
    with fusion_stack(tmp_path) as stack:
        first = stack.client.submit(FULL_SALES, "run-1")

        # When run-2 is submitted with resume
        second = stack.client.submit(FULL_SALES, "run-2", resume=True)

        # Then run-2 got a job of its own
        assert second != first
        assert [str(job.id) for job in stack.fusion.jobs] == [first, second]


def test_submit_on_a_pod_without_the_feature_raises_the_actionable_error_once(tmp_path: Path) -> None:
    # Given a pod where Batch Processing / Data Extraction is not enabled
    with fusion_stack(tmp_path, ExtractScenario(feature_disabled=True)) as stack:
        # When a job is submitted
        with pytest.raises(NotFoundError, match=r"not enabled on this pod.*Setup Manager") as caught:
            stack.client.submit(FULL_SALES, "run-1")

        # Then the operator is told what to enable, and nothing was retried
        assert caught.value.status == 404
        assert caught.value.retryable is False
        assert len(stack.to_fusion("/jobRequests", "POST")) == 1
        assert stack.clock.sleeps == []


@pytest.mark.parametrize(
    ("outcome", "phase", "warning"),
    [
        ("SUCCEEDED", Phase.SUCCEEDED, False),
        ("WARNING", Phase.SUCCEEDED, True),
        ("ERROR", Phase.FAILED, False),
        ("FAILED", Phase.FAILED, False),
        ("EXPIRED", Phase.FAILED, False),
        ("CANCELLED", Phase.FAILED, False),
        ("CANCELED", Phase.FAILED, False),
        ("ERROR_MANUAL_RECOVERY", Phase.NEEDS_HUMAN, False),
        ("HOLD", Phase.RUNNING, False),  # held by a human: keeps running until the run's deadline
    ],
)
def test_job_status_at_each_outcome_maps_to_its_phase(
    tmp_path: Path, outcome: str, phase: Phase, warning: bool
) -> None:
    # Given a job whose extract ends in `outcome`
    with fusion_stack(tmp_path, ExtractScenario(outcome=outcome)) as stack:
        job = stack.finished_job()

        # When its status is read after it ended
        status = stack.client.job_status(job)

        # Then the status is reported as Fusion says it, with the phase it means for the run
        assert (status.job_id, status.status, status.phase, status.warning) == (job, outcome, phase, warning)
        assert status.known


def test_job_status_walks_every_intermediate_state_as_running_until_success(tmp_path: Path) -> None:
    # Given a job that passes through every intermediate state (PAUSED, COMPLETED, ...) one second each
    passing = tuple(sorted(PASSING_STATUSES))
    scenario = ExtractScenario(
        seconds_enqueued=1, seconds_running=1, passes_through=passing, seconds_passing=1
    )
    with fusion_stack(tmp_path, scenario) as stack:
        job = stack.client.submit(FULL_SALES, "run-1")

        # When its status is read once a second until it ends
        seen = []
        for _ in range(len(passing) + 3):
            status = stack.client.job_status(job)
            seen.append((status.status, status.phase))
            stack.clock.advance(1)

        # Then everything before SUCCEEDED counts as running, in the order Fusion reported it
        expected = ["ENQUEUED", "RUNNING", *passing, "SUCCEEDED"]
        assert seen == [
            (name, Phase.SUCCEEDED if name == "SUCCEEDED" else Phase.RUNNING) for name in expected
        ]


@pytest.mark.parametrize(
    "scenario",
    [ExtractScenario(jobdetails_as_list=True), ExtractScenario(status_at_top_level=True)],
    ids=["jobdetails-as-list", "status-at-top-level"],
)
def test_job_status_in_a_variant_response_shape_is_read_the_same(
    tmp_path: Path, scenario: ExtractScenario
) -> None:
    # Given Fusion answers status in a shape seen in third-party clients
    with fusion_stack(tmp_path, scenario) as stack:
        job = stack.client.submit(FULL_SALES, "run-1")

        # When the status is read while the job runs and after it succeeded
        running = stack.client.job_status(job)
        stack.clock.advance(FINISHED)
        done = stack.client.job_status(job)

        # Then both are read as from the documented shape
        assert (running.status, running.phase) == ("ENQUEUED", Phase.RUNNING)
        assert (done.status, done.phase, done.message) == (
            "SUCCEEDED",
            Phase.SUCCEEDED,
            "Job status is changed to SUCCEEDED",
        )


def test_job_status_of_an_extract_fusion_does_not_know_is_failed_with_the_reason(tmp_path: Path) -> None:
    # Given a submission naming an extract Fusion has no definition for
    with fusion_stack(tmp_path) as stack:
        job = stack.client.submit(ExtractRequest("Unknown", Mode.FULL), "run-1")
        stack.clock.advance(FINISHED)

        # When its status is read
        status = stack.client.job_status(job)

        # Then it failed, Fusion's message says why, and it is marked as a failure a rerun cannot fix
        assert status.phase is Phase.FAILED
        assert status.message is not None and "'Unknown' does not exist" in status.message
        assert status.validation_failed


def test_job_status_completed_and_confirmed_by_progress_is_success(tmp_path: Path) -> None:
    # Given a job that ends COMPLETED with jobProgress.completed true
    with fusion_stack(tmp_path, ExtractScenario(outcome="COMPLETED", completed_flag=True)) as stack:
        job = stack.finished_job()

        # When its status is read, Then it succeeded
        status = stack.client.job_status(job)
        assert (status.status, status.phase, status.completed, status.unconfirmed) == (
            "COMPLETED",
            Phase.SUCCEEDED,
            True,
            False,
        )


@pytest.mark.parametrize("flag", [False, None], ids=["completed-false", "completed-absent"])
def test_job_status_completed_unconfirmed_is_running_flagged_and_its_files_are_listed(
    tmp_path: Path, flag: bool | None
) -> None:
    # Given a job that stays COMPLETED without jobProgress.completed true
    with fusion_stack(tmp_path, ExtractScenario(outcome="COMPLETED", completed_flag=flag)) as stack:
        job = stack.finished_job()

        # When its status is read
        status = stack.client.job_status(job)

        # Then it is still running but flagged, and its output files can be listed (the chain's grace rule)
        assert (status.phase, status.completed, status.unconfirmed) == (Phase.RUNNING, flag, True)
        assert len(stack.client.output_files(job)) == 3


def test_job_status_when_throttled_sleeps_each_retry_after_then_reads_it(tmp_path: Path) -> None:
    # Given a job, and status reads throttled twice with Retry-After: 5
    with fusion_stack(tmp_path) as stack:
        job = stack.client.submit(FULL_SALES, "run-1")
        stack.fusion.fail_next(ONE_JOB, 429, count=2, retry_after=5)

        # When its status is read
        status = stack.client.job_status(job)

        # Then the client slept the server's 5 seconds each time and got the status: the job (5 s long)
        # finished while it waited
        assert stack.clock.sleeps == [5.0, 5.0]
        assert [served.status for served in stack.to_fusion(f"/{job}")] == [429, 429, 200]
        assert status.phase is Phase.SUCCEEDED


def test_job_status_after_a_burst_of_5xx_retries_with_growing_backoff(tmp_path: Path) -> None:
    # Given a job, and three status reads answered 503 without Retry-After
    with fusion_stack(tmp_path) as stack:
        job = stack.client.submit(FULL_SALES, "run-1")
        stack.fusion.fail_next(ONE_JOB, 503, count=3)

        # When its status is read
        status = stack.client.job_status(job)

        # Then the waits doubled (jitter fixed at one half) and the fourth try succeeded
        assert stack.clock.sleeps == [0.5, 1.0, 2.0]
        assert status.job_id == job


def test_job_status_when_5xx_outlasts_the_attempts_raises_transient_error(tmp_path: Path) -> None:
    # Given at most 3 attempts per call, and more 5xx than that
    with fusion_stack(tmp_path, HTTP_MAX_ATTEMPTS="3") as stack:
        job = stack.client.submit(FULL_SALES, "run-1")
        stack.fusion.fail_next(ONE_JOB, 502, count=5)

        # When its status is read
        with pytest.raises(TransientError, match="answered 502") as caught:
            stack.client.job_status(job)

        # Then it gave up after 3 tries with a retryable error for the caller
        assert caught.value.retryable is True
        assert len(stack.to_fusion(f"/{job}")) == 3
