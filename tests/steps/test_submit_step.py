"""submit: start a run under the extract's lease, rerun a failed one, re-land a succeeded job."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from fusion_extract import resumable
from fusion_extract.chain.ledger.records import RunState
from fusion_extract.chain.readiness import Readiness
from fusion_extract.errors import ConfigError, MessageError
from fusion_extract.models import ExtractRequest, Mode
from tests.emulators.fusion import ExtractScenario
from tests.steps.conftest import EXTRACT, MakeSteps, Steps


def poll_message(run_id: str, seq: int) -> dict[str, object]:
    return {"v": 1, "kind": "poll", "run_id": run_id, "seq": seq}


def test_submit_run_request_creates_run_lease_job_and_first_poll(steps: Steps) -> None:
    # Given no run of Sales

    # When a run request arrives (a schedule firing)
    outcome = steps.submit(extract=EXTRACT, mode="full")

    # Then one job was submitted, carrying the run token of attempt 1
    assert outcome["outcome"] == "submitted"
    run_id = outcome["run_id"]
    assert steps.fusion is not None and len(steps.fusion.jobs) == 1
    job = steps.fusion.jobs[0]
    assert job.request["description"] == f"fusion-extract-{run_id}-a1::{EXTRACT}::Full::Immediate"
    # And the run is RUNNING with that job, under the lease, due for its first poll
    run = steps.run(run_id)
    assert (run.state, run.attempt, run.job_id, run.job_ids) == (
        RunState.RUNNING,
        1,
        str(job.id),
        (str(job.id),),
    )
    assert run.poll_seq == 1 and run.deadline == steps.clock.now() + timedelta(hours=10)
    assert steps.deps.ledger.lease_holder(EXTRACT) == run_id
    assert steps.published("poll") == [poll_message(run_id, 1)]
    assert steps.alerts() == []


def test_submit_second_request_while_a_run_is_active_answers_already_running_with_the_holder(
    steps: Steps,
) -> None:
    # Given a run of Sales in progress
    first = steps.start()

    # When another request for Sales arrives (a manual run while the scheduled one runs)
    outcome = steps.submit(extract=EXTRACT, mode="incremental")

    # Then it is answered already_running with the holder's run id, and nothing else happened
    assert outcome["outcome"] == "already_running"
    assert outcome["run_id"] == first.run_id
    assert steps.fusion is not None and len(steps.fusion.jobs) == 1
    assert [run.run_id for run in steps.runs()] == [first.run_id]
    assert steps.published("poll") == [poll_message(first.run_id, 1)]


def test_submit_rerun_of_rerun_pending_run_waits_for_next_at_then_submits_attempt_2(steps: Steps) -> None:
    # Given a run whose first job failed, due for a rerun after the 300 s backoff
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(fail_first_jobs=1))
    run = steps.start()
    steps.deliver("poll")
    pending = steps.run(run.run_id)
    assert pending.state is RunState.RERUN_PENDING

    # When a rerun request arrives before next_at
    early = steps.submit(kind="rerun", run_id=run.run_id)

    # Then it is not due, and no job was submitted
    assert early["outcome"] == "not_due"
    assert len(steps.fusion.jobs) == 1

    # When it arrives at next_at
    steps.clock.advance((pending.next_at - steps.clock.now()).total_seconds())
    due = steps.submit(kind="rerun", run_id=run.run_id)

    # Then attempt 2 is submitted under its own run token, in the same run, polled with the next seq
    assert due["outcome"] == "submitted"
    assert len(steps.fusion.jobs) == 2
    second = steps.fusion.jobs[1]
    assert second.request["description"] == f"fusion-extract-{run.run_id}-a2::{EXTRACT}::Full::Immediate"
    rerun = steps.run(run.run_id)
    assert (rerun.state, rerun.attempt, rerun.job_id) == (RunState.RUNNING, 2, str(second.id))
    assert rerun.job_ids == (pending.job_id, str(second.id))
    assert steps.published("poll")[-1] == poll_message(run.run_id, rerun.poll_seq)
    assert rerun.poll_seq == pending.poll_seq + 1


def test_submit_rerun_of_a_submitting_run_waits_while_fresh_then_resumes_without_a_second_job(
    steps: Steps,
) -> None:
    # Given a run whose submit reached Fusion but died before recording the job
    run, job_id = steps.crashed_submit()
    overdue = steps.deps.settings.step_overdue_seconds

    # When a rerun request arrives while the submit may still be running
    fresh = steps.submit(kind="rerun", run_id=run.run_id)

    # Then it leaves the run alone
    assert fresh["outcome"] == "in_progress"
    assert steps.run(run.run_id).state is RunState.SUBMITTING

    # When it arrives once the submit is overdue
    steps.clock.advance(overdue + 1)
    resumed = steps.submit(kind="rerun", run_id=run.run_id)

    # Then the run found its job by the run token: RUNNING with it, no second job
    assert resumed["outcome"] == "submitted"
    assert steps.fusion is not None and [str(job.id) for job in steps.fusion.jobs] == [job_id]
    after = steps.run(run.run_id)
    assert (after.state, after.job_id, after.attempt) == (RunState.RUNNING, job_id, 1)
    assert steps.published("poll") == [poll_message(run.run_id, 1)]


def test_submit_rerun_of_a_failed_run_starts_a_new_run_with_rerun_of(make_steps: MakeSteps) -> None:
    # Given a run that failed for good (one attempt allowed, its job ended ERROR)
    steps = make_steps(RUN_MAX_ATTEMPTS="1")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(fail_first_jobs=1))
    failed = steps.start()
    steps.deliver("poll")
    assert steps.run(failed.run_id).state is RunState.FAILED

    # When an operator asks for a rerun of it
    steps.clock.advance(3600)
    outcome = steps.submit(kind="rerun", run_id=failed.run_id)

    # Then a new run starts, pointing back at the failed one, with a new job; the failed run stays as it was
    assert outcome["outcome"] == "submitted" and outcome["run_id"] != failed.run_id
    new = steps.run(outcome["run_id"])
    assert (new.state, new.rerun_of, new.attempt) == (RunState.RUNNING, failed.run_id, 1)
    assert len(steps.fusion.jobs) == 2 and new.job_id == str(steps.fusion.jobs[1].id)
    assert steps.deps.ledger.lease_holder(EXTRACT) == new.run_id
    assert steps.run(failed.run_id).state is RunState.FAILED


def test_submit_rerun_of_an_unknown_run_raises_message_error_naming_it(steps: Steps) -> None:
    # Given no run "nope"; When a rerun of it is asked, Then MessageError names it and nothing is done
    with pytest.raises(MessageError, match="no run 'nope' to rerun"):
        steps.submit(kind="rerun", run_id="nope")
    assert steps.runs() == []
    assert steps.fusion is not None and steps.fusion.jobs == []


def test_submit_reland_creates_a_running_run_of_that_job_and_publishes_its_poll(steps: Steps) -> None:
    # Given a job Fusion ran
    job_id = steps.deps.fusion.submit(ExtractRequest(EXTRACT, Mode.FULL), "earlier-run-a1")
    steps.clock.advance(60)

    # When an operator asks to re-land it
    outcome = steps.submit(kind="reland", extract=EXTRACT, job_id=job_id, mode="full")

    # Then a RUNNING re-land run follows that job, under the lease, without submitting anything
    assert outcome["outcome"] == "relanding"
    run = steps.run(outcome["run_id"])
    assert (run.state, run.reland, run.job_id, run.job_ids) == (RunState.RUNNING, True, job_id, (job_id,))
    assert steps.fusion is not None and len(steps.fusion.jobs) == 1
    assert steps.deps.ledger.lease_holder(EXTRACT) == run.run_id
    assert steps.published("poll") == [poll_message(run.run_id, 1)]

    # And polling it moves it on to landing that job's files
    steps.deliver("poll")
    assert steps.run(run.run_id).state is RunState.TRANSFERRING


@pytest.mark.parametrize(
    ("ran", "asked", "problem"),
    [
        ((EXTRACT, Mode.INCREMENTAL), ("Orders", "full"), "ran extract 'Sales', not 'Orders'"),
        ((EXTRACT, Mode.INCREMENTAL), (EXTRACT, "full"), "ran an incremental extract, not a full one"),
        ((EXTRACT, Mode.FULL), (EXTRACT, "incremental"), "ran a full extract, not an incremental one"),
    ],
)
def test_submit_reland_of_a_job_that_ran_another_extract_or_mode_is_refused_holding_nothing(
    steps: Steps, ran: tuple[str, Mode], asked: tuple[str, str], problem: str
) -> None:
    # Given a job Fusion ran for one extract in one mode (its job details say which)
    extract, mode = ran
    job_id = steps.deps.fusion.submit(ExtractRequest(extract, mode), "earlier-run-a1")
    steps.clock.advance(60)

    # When an operator asks to re-land it as another extract or in the other mode
    # Then it is refused, naming the mismatch, before any lease, run document or message
    with pytest.raises(MessageError, match=problem):
        steps.submit(kind="reland", extract=asked[0], job_id=job_id, mode=asked[1])
    assert steps.runs() == []
    assert steps.deps.ledger.lease_holder(asked[0]) is None
    assert steps.published("poll") == []


def test_submit_reland_goes_on_when_fusion_does_not_say_which_extract_the_job_ran(
    make_steps: MakeSteps,
) -> None:
    # Given a job whose status carries no jobRequest echo (as Oracle's later status examples)
    steps = make_steps()
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(echo_job_request=False))
    job_id = steps.deps.fusion.submit(ExtractRequest(EXTRACT, Mode.FULL), "earlier-run-a1")
    steps.clock.advance(60)

    # When it is re-landed, Then the re-land starts: nothing reported, nothing to compare (docs/landing.md)
    assert steps.submit(kind="reland", extract=EXTRACT, job_id=job_id, mode="full")["outcome"] == "relanding"


def test_submit_permanent_refusal_by_fusion_ends_the_run_failed_with_an_alert_and_frees_the_lease(
    make_steps: MakeSteps,
) -> None:
    # Given credentials of a client the identity domain does not know
    probe = make_steps()
    unknown = json.dumps({"client_id": "stranger", "client_secret": "guess"}).encode()
    steps = make_steps(CREDENTIALS_SECRET_ID=probe.oci.put_secret("other-credentials", unknown))

    # When a run request arrives
    answer = steps.submit(extract=EXTRACT, mode="full")

    # Then the run ended FAILED with the reason, people were told, and the lease is free
    [run] = steps.runs()
    assert answer["outcome"] == "failed" and "invalid_client" in answer["reason"]
    assert run.state is RunState.FAILED
    assert run.reason is not None and run.reason.startswith("submit: IDCS refused the token request")
    assert [(a["event"], a["run_id"]) for a in steps.published("alerts")] == [("failed", run.run_id)]
    assert steps.deps.ledger.lease_holder(EXTRACT) is None
    assert steps.fusion is not None and steps.fusion.jobs == []
    assert steps.published("poll") == []


def test_submit_transient_failure_leaves_the_run_submitting_under_its_lease(make_steps: MakeSteps) -> None:
    # Given Fusion answering the job POST with 503, and one attempt per HTTP call
    steps = make_steps(HTTP_MAX_ATTEMPTS="1")
    assert steps.fusion is not None
    steps.fusion.fail_next(r"/jobRequests$", 503, method="POST")

    # When a run request arrives
    answer = steps.submit(extract=EXTRACT, mode="full")

    # Then the run waits in SUBMITTING under its lease, for the sweep to resume it after a delay; no alert
    [run] = steps.runs()
    assert answer["outcome"] == "deferred" and "503" in answer["reason"]
    assert run.state is RunState.SUBMITTING and run.failures == 1
    assert run.next_at == steps.clock.now() + timedelta(seconds=60)
    assert steps.deps.ledger.lease_holder(EXTRACT) == run.run_id
    assert steps.alerts() == [] and steps.published("poll") == []


def test_submit_late_duplicate_of_a_chain_rerun_finds_nothing_to_do(make_steps: MakeSteps) -> None:
    # Given a run whose rerun request (attempt 2) was delivered and submitted attempt 2
    steps = make_steps(RERUN_BACKOFF_SECONDS="0")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(fail_first_jobs=1))
    run = steps.start()
    steps.deliver("poll")
    [rerun] = steps.published("rerun")
    assert steps.deliver("rerun")[0]["outcome"] == "submitted"
    resubmitted = steps.deps.ledger.load_run(run.run_id)

    # When Notifications delivers that rerun request again
    outcome = steps.submit(**{key: value for key, value in rerun.items() if key != "v"})

    # Then nothing is submitted and the run is as it was
    assert outcome["outcome"] == "nothing_to_do"
    assert len(steps.fusion.jobs) == 2
    assert steps.deps.ledger.load_run(run.run_id) == resubmitted


def test_submit_request_racing_a_run_that_just_took_the_lease_answers_already_running(steps: Steps) -> None:
    # Given another run request of Sales that has just taken the lease and not yet recorded its run
    other = f"{steps.clock.now():%Y%m%dT%H%M%SZ}-other"
    steps.deps.ledger.take_lease(
        EXTRACT, other, steps.clock.now(), timedelta(hours=12), timedelta(minutes=15)
    )

    # When a run request of Sales arrives at that moment
    outcome = steps.submit(extract=EXTRACT, mode="full")

    # Then it is refused in favour of the other, and submits nothing
    assert outcome["outcome"] == "already_running" and outcome["run_id"] == other
    assert steps.fusion is not None and steps.fusion.jobs == []


def test_submit_refuses_before_any_fusion_call_when_the_native_libraries_cannot_load(steps: Steps) -> None:
    # Given a container whose native libraries do not load (a libcrypto the image does not have)
    steps.deps.readiness = Readiness(lambda: resumable.load_libcrypto("libcrypto-absent.so.3").path)

    # When a run, a rerun and a re-land are asked for
    answers = []
    for body in (
        {"extract": EXTRACT, "mode": "full"},
        {"kind": "rerun", "run_id": "20261129T020000Z-0001"},
        {"kind": "reland", "extract": EXTRACT, "job_id": "44046", "mode": "full"},
    ):
        with pytest.raises(ConfigError) as refused:
            steps.submit(**body)
        answers.append(str(refused.value))

    # Then each is refused with the loader's exact error, before Fusion was asked anything
    assert all(
        answer.startswith(
            "this function image cannot land a run, so nothing was submitted: libcrypto-absent.so.3: "
        )
        for answer in answers
    )
    assert steps.fusion is not None and steps.fusion.requests == []
    # And nothing was held or recorded; people were told once, with the error
    assert steps.runs() == [] and steps.deps.ledger.lease_holder(EXTRACT) is None
    [alert] = steps.published("alerts")
    assert alert["event"] == "runtime_broken" and alert["reason"] == answers[0].split(": ", 1)[1]
    # And a cancel, which needs no native library, is still answered on its own terms
    with pytest.raises(MessageError, match="has no active run"):
        steps.submit(kind="cancel", extract=EXTRACT)


def test_submit_checks_the_native_libraries_once_per_container(steps: Steps) -> None:
    # Given a container whose check passes, counting how often it runs
    checks: list[str] = []

    def probe() -> str:
        checks.append(resumable.self_test())
        return checks[-1]

    steps.deps.readiness = Readiness(probe)

    # When two runs are submitted in turn
    first = steps.submit(extract=EXTRACT, mode="full")
    steps.submit(kind="cancel", run_id=first["run_id"])
    second = steps.submit(extract=EXTRACT, mode="full")

    # Then both were submitted, and the libraries were checked once, by the first run
    assert (first["outcome"], second["outcome"]) == ("submitted", "submitted")
    assert len(checks) == 1 and checks[0].startswith("libcrypto ")
