"""Fusion and Object Storage misbehave: storms, outages, cut and short downloads, restarts, skewed clocks,
races, and the job statuses that never end by themselves. Every scenario ends by its end state."""

from __future__ import annotations

import contextlib
import random
import threading
from datetime import datetime, timedelta

import pytest

from fusion_extract.chain.ledger.records import RunState
from fusion_extract.config import Settings
from fusion_extract.runtime import Runtime
from tests.clocks import ManualClock
from tests.emulators.fusion import ExtractScenario
from tests.emulators.loopback import Request, Response
from tests.emulators.oci.http import error as oci_error
from tests.faults.bus import Bus, drive, invoke, start
from tests.faults.conftest import LANDED, Expect, assert_end_state
from tests.faults.storms import Cut, Serve, Storm, Truncate
from tests.steps.conftest import CLIENT_ID, CLIENT_SECRET, EXTRACT, MakeSteps, Outcome, Steps

QUICK = {
    "STEP_OVERDUE_SECONDS": "60",
    "TRANSFER_BUDGET_SECONDS": "20",
    "RERUN_BACKOFF_SECONDS": "0",
    "FILE_RETRY_SECONDS": "0",
}
SAAS = r"/api/saas-batch/"
CONTENT = r"/content"
OBJECTS = r"/n/[^/]+/b/[^/]+/(o|u|actions)(/.*)?"


def quick(make_steps: MakeSteps, scenario: ExtractScenario | None = None, **config: str) -> Steps:
    steps = make_steps(**{**QUICK, **config})
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, scenario or ExtractScenario(chunks=3))
    return steps


# -- storms: a seeded share of every request of a whole run ----------------------------------------------


@pytest.mark.parametrize(("status", "share"), [(429, 0.3), (503, 0.3), (500, 0.25), (502, 0.25)])
def test_fusion_storm_of_errors_for_a_whole_run_still_lands_once(
    make_steps: MakeSteps, status: int, share: float
) -> None:
    # Given Fusion answering a seeded share of every saas-batch request with an error
    steps = quick(make_steps)
    assert steps.fusion is not None
    storm = Storm(share, status, seed=1)
    steps.fusion.intercept(SAAS, storm)

    # When the chain runs
    final = drive(steps, start(steps))

    # Then the storm was felt, yet the run landed once with one job (a retried submit found its job)
    assert storm.hits > 0
    assert_end_state(steps, final)


@pytest.mark.parametrize("applied", [False, True], ids=["refused", "applied_then_503"])
@pytest.mark.parametrize("status", [503, 429])
def test_object_storage_storm_for_a_whole_run_still_lands_once(
    make_steps: MakeSteps, applied: bool, status: int
) -> None:
    # Given Object Storage answering a seeded share of requests with an error, or (applied) taking
    # a seeded share of writes and then answering an error as if it had not
    steps = quick(make_steps)
    storm = Storm(0.25, status, seed=11, applied=applied, oci=True)
    for method in ("PUT", "POST", "DELETE") if applied else (None,):
        steps.oci.intercept(method, OBJECTS, storm)

    # When the chain runs
    final = drive(steps, start(steps))

    # Then it landed once, exactly the expected objects, no staging left
    assert storm.hits > 0
    assert_end_state(steps, final)


def test_fusion_submit_that_takes_effect_but_answers_503_creates_one_job(make_steps: MakeSteps) -> None:
    # Given a submit POST that creates the job and loses its answer, twice
    steps = quick(make_steps)
    assert steps.fusion is not None
    steps.fusion.fail_next(r"/jobRequests$", 503, count=2, method="POST", after_handling=True)

    # When the chain runs, Then one job, and the run landed
    assert_end_state(steps, drive(steps, start(steps)), LANDED)


# -- tokens ---------------------------------------------------------------------------------------------


def test_token_endpoint_down_for_a_while_the_run_lands(make_steps: MakeSteps) -> None:
    # Given the identity domain answering 503 to the next 12 token requests (longer than one step retries)
    steps = quick(make_steps, HTTP_MAX_ATTEMPTS="3")
    assert steps.fusion is not None
    steps.fusion.fail_next(r"/oauth2/v1/token", 503, count=12)

    # When the chain runs, Then the outage was waited out and the run landed
    assert_end_state(steps, drive(steps, start(steps)))


def test_token_expiring_mid_download_is_renewed_and_the_run_lands(make_steps: MakeSteps) -> None:
    # Given tokens that live 60 s, and the first download cut halfway while a minute and a half pass
    steps = quick(make_steps)
    assert steps.fusion is not None
    steps.fusion.reset(steps.clock)
    steps.fusion.add_client(CLIENT_ID, CLIENT_SECRET, token_lifetime=60)
    steps.fusion.define_extract(EXTRACT, ExtractScenario(chunks=2, rows_per_chunk=4000))
    cut = Cut(times=1, seed=3, then=lambda: steps.clock.advance(90))
    steps.fusion.intercept(CONTENT, cut)

    # When the chain runs
    final = drive(steps, start(steps))

    # Then the resumed download needed a new token, and the run landed whole
    assert cut.cuts and len(steps.fusion.issued_tokens) >= 2
    assert_end_state(steps, final)


# -- downloads -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_downloads_cut_at_random_offsets_resume_and_land_whole(make_steps: MakeSteps, seed: int) -> None:
    # Given the first five downloads cut at seeded random offsets
    steps = quick(make_steps, ExtractScenario(chunks=3, rows_per_chunk=3000))
    assert steps.fusion is not None
    cut = Cut(times=5, seed=seed)
    steps.fusion.intercept(CONTENT, cut)

    # When the chain runs, Then every file landed whole
    final = drive(steps, start(steps))
    assert len(cut.cuts) == 5
    assert_end_state(steps, final)


def test_download_truncated_once_is_retried_and_lands(make_steps: MakeSteps) -> None:
    # Given the first download answered 200 with a short body of consistent length
    steps = quick(make_steps)
    assert steps.fusion is not None
    steps.fusion.intercept(CONTENT, Truncate(times=1))

    # When the chain runs, Then the short file was refused by size/SHA-256, tried again, and landed
    assert_end_state(steps, drive(steps, start(steps)))


def test_download_truncated_every_time_fails_the_run_after_its_attempts(make_steps: MakeSteps) -> None:
    # Given a file that is shorter at the source than listed: every download ends early, no resume helps
    steps = quick(make_steps)
    assert steps.fusion is not None
    steps.fusion.intercept(CONTENT, Truncate(times=1000, source_short=True))

    # When the chain runs, Then the run failed (attempts spent) and nothing partial is visible
    assert_end_state(steps, drive(steps, start(steps)), Expect(RunState.FAILED, reason="after 3 attempts"))


def test_checksum_mismatch_fails_the_run_and_lands_nothing_of_the_file(make_steps: MakeSteps) -> None:
    # Given the first ZIP listed with a SHA-256 it does not have
    steps = quick(make_steps, ExtractScenario(chunks=2, wrong_checksum=True))

    # When the chain runs, Then the run failed, naming the file, and nothing of it became visible
    assert_end_state(steps, drive(steps, start(steps)), Expect(RunState.FAILED))


# -- restarts --------------------------------------------------------------------------------------------


def test_object_storage_restarted_between_steps_the_run_lands(make_steps: MakeSteps) -> None:
    # Given a run whose job succeeded (transfers on their way), and Object Storage restarted
    steps = quick(make_steps)
    bus = Bus(steps)
    run_id = start(steps)
    steps.clock.advance(10)
    bus.pump()
    steps.oci.restart_objectstorage()

    # When the chain goes on, Then it landed from what was on disk
    assert_end_state(steps, drive(steps, run_id, bus))


def test_object_storage_restarted_mid_upload_the_run_lands(make_steps: MakeSteps) -> None:
    # Given members larger than an upload part, and Object Storage restarting as the first part arrives
    # (the open upload's bookkeeping lost)
    steps = quick(
        make_steps, ExtractScenario(chunks=2, rows_per_chunk=30000, compress_level=1), UPLOAD_PART_MB="1"
    )
    restarted: list[bool] = []

    def restart_once(request, serve):
        if not restarted:
            restarted.append(True)
            steps.oci.restart_objectstorage()
            request.drain()
            return oci_error(503, "ServiceUnavailable", "restarting")
        return serve(request)

    steps.oci.intercept("PUT", r"/n/[^/]+/b/[^/]+/u/.*", restart_once)

    # When the chain runs, Then the upload was redone and the run landed
    final = drive(steps, start(steps))
    assert restarted
    assert_end_state(steps, final)


def test_fusion_restarted_mid_run_the_run_lands(make_steps: MakeSteps) -> None:
    # Given a submitted job, and Fusion's servers restarted (connections cut) before the first poll
    steps = quick(make_steps)
    assert steps.fusion is not None
    run_id = start(steps)
    steps.fusion.restart()

    # When the chain runs, Then it landed
    assert_end_state(steps, drive(steps, run_id))


# -- clocks and races ------------------------------------------------------------------------------------


class SkewedClock:
    """Another function's clock: the shared one, offset."""

    def __init__(self, base: ManualClock, offset: float) -> None:
        self.base, self.offset = base, timedelta(seconds=offset)

    def now(self) -> datetime:
        return self.base.now() + self.offset

    def sleep(self, seconds: float) -> None:
        self.base.sleep(seconds)


@pytest.mark.parametrize("offset", [-45.0, 45.0, 300.0])
def test_clock_skew_between_functions_still_lands_once(make_steps: MakeSteps, offset: float) -> None:
    # Given poll and transfer running in containers whose clocks are off by `offset` seconds
    steps = quick(make_steps, ExtractScenario(fail_first_jobs=1, chunks=2))
    skewed = Runtime(
        Settings.from_mapping(steps.env),
        clock=SkewedClock(steps.clock, offset),
        ids=lambda: "skew",
        rng=random.Random(5),
    )
    bus = Bus(steps, runtimes={"poll": skewed, "transfer": skewed})

    # When the chain runs, Then the run landed once, one job per attempt
    assert_end_state(steps, drive(steps, start(steps), bus), Expect(RunState.LANDED, jobs=2))


def test_two_sweeps_at_once_re_drive_a_run_once_and_it_lands(make_steps: MakeSteps) -> None:
    # Given a run whose poll was lost, overdue
    steps = quick(make_steps)
    run_id = start(steps)
    steps.forget("poll")
    steps.clock.advance(61)

    # When two sweeps run at the same moment, in two containers (both read before either writes)
    meet_before_writing(steps)
    containers = [steps.container(), steps.container()]
    answers: list[Outcome] = []

    def sweep(deps: Runtime) -> None:
        answers.append(invoke_with(steps, deps, "poll", {"kind": "sweep"}))

    threads = [threading.Thread(target=sweep, args=(deps,)) for deps in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then at most one poll message was published for the re-drive, and the run lands
    assert len(steps.published("poll")) <= 2, steps.published("poll")
    assert_end_state(steps, drive(steps, run_id))


def test_two_reruns_of_a_dead_submit_at_once_submit_one_job(make_steps: MakeSteps) -> None:
    # Given a submit that died after its job reached Fusion, before recording the job id
    steps = quick(make_steps)
    run = steps.crashed_submit()[0]
    assert steps.fusion is not None
    steps.clock.advance(61)

    # When the sweep's rerun message is delivered twice at the same moment, to two containers (both read
    # the run before either writes)
    meet_before_writing(steps)
    message = {"kind": "rerun", "run_id": run.run_id, "attempt": 1}
    answers: list[Outcome] = []
    containers = [steps.container(), steps.container()]
    threads = [
        threading.Thread(target=lambda d=deps: answers.append(invoke_with(steps, d, "rerun", message)))
        for deps in containers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then only one of them claimed the resume (the other stands down), and the run lands
    assert sorted(a["outcome"] for a in answers) == ["in_progress", "submitted"], answers
    assert_end_state(steps, drive(steps, run.run_id))


def meet_before_writing(steps: Steps) -> None:
    """Hold the next two writes of a run document until both arrived: both writers read the same version."""
    barrier, gated = threading.Barrier(2, timeout=10), [0]

    def hook(request: Request, serve: Serve) -> Response:
        gated[0] += 1
        if gated[0] <= 2:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        return serve(request)

    steps.oci.intercept("PUT", r"/n/[^/]+/b/[^/]+/o/_state%2Fruns%2F.*", hook)


def invoke_with(steps: Steps, deps: Runtime, topic: str, message: Outcome) -> Outcome:
    own, steps.deps = steps.deps, deps
    try:
        return invoke(steps, topic, message)
    finally:
        steps.deps = own


def test_manual_and_scheduled_submit_racing_20_times_start_one_run_each_time(make_steps: MakeSteps) -> None:
    steps = quick(make_steps)
    for _round in range(20):
        # Given a schedule firing while an operator submits the same extract, in two containers
        containers = [steps.container(), steps.container()]
        answers: list[Outcome] = []

        def submit(deps: Runtime, answers: list[Outcome]) -> None:
            answers.append(invoke_with(steps, deps, "submit", {"extract": EXTRACT, "mode": "full"}))

        threads = [threading.Thread(target=submit, args=(deps, answers)) for deps in containers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # Then exactly one started a run, the other was told who runs
        outcomes = sorted(a["outcome"] for a in answers)
        assert outcomes == ["already_running", "submitted"], answers
        [winner] = [a["run_id"] for a in answers if a["outcome"] == "submitted"]
        # And that run ends (cancelled, to go round again quickly; the last one lands)
        if _round < 19:
            invoke(steps, "submit", {"kind": "cancel", "run_id": winner})
            assert_end_state(steps, winner, Expect(RunState.CANCELLED))
        else:
            assert_end_state(steps, drive(steps, winner))
    assert steps.fusion is not None and len(steps.fusion.jobs) == 20


def test_twenty_extracts_at_once_all_land_once(make_steps: MakeSteps) -> None:
    # Given twenty extracts submitted at the same moment from twenty containers
    steps = quick(make_steps)
    assert steps.fusion is not None
    extracts = [f"Extract{n:02}" for n in range(20)]
    for name in extracts:
        steps.fusion.define_extract(name, ExtractScenario(chunks=1, rows_per_chunk=10))
    answers: list[Outcome] = []
    containers = [steps.container() for _ in extracts]

    def submit(name: str, deps: Runtime) -> None:
        answers.append(invoke_with(steps, deps, "submit", {"extract": name, "mode": "full"}))

    threads = [threading.Thread(target=submit, args=pair) for pair in zip(extracts, containers, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # When the chain runs them all
    run_ids = [a["run_id"] for a in answers]
    assert sorted(a["outcome"] for a in answers) == ["submitted"] * 20
    bus = Bus(steps)
    for run_id in run_ids:
        drive(steps, run_id, bus)

    # Then each landed once
    for run_id in run_ids:
        assert_end_state(steps, run_id)


# -- job statuses that never end by themselves, and the ones that end badly --------------------------------

HOUR = ExtractScenario(chunks=1)


@pytest.mark.parametrize(
    ("scenario", "expect"),
    [
        pytest.param(
            ExtractScenario(hold=threading.Event()), Expect(RunState.TIMED_OUT), id="running_past_deadline"
        ),
        pytest.param(
            ExtractScenario(passes_through=("PAUSED",), seconds_passing=10 * 3600),
            Expect(RunState.TIMED_OUT),
            id="paused_past_deadline",
        ),
        pytest.param(
            ExtractScenario(outcome="HOLD"), Expect(RunState.TIMED_OUT, alerts=("needs_human",)), id="hold"
        ),
        pytest.param(
            ExtractScenario(outcome="ERROR_MANUAL_RECOVERY"),
            Expect(RunState.TIMED_OUT, alerts=("needs_human",)),
            id="error_manual_recovery",
        ),
        pytest.param(ExtractScenario(outcome="CANCELLED"), Expect(RunState.FAILED, jobs=1), id="cancelled"),
        pytest.param(ExtractScenario(outcome="COMPLETED", completed_flag=True), LANDED, id="completed_flag"),
        pytest.param(
            ExtractScenario(outcome="COMPLETED", completed_flag=None),
            Expect(RunState.LANDED, alerts=("assumed_complete",)),
            id="completed_no_flag",
        ),
        pytest.param(ExtractScenario(outcome="ERROR"), Expect(RunState.FAILED, jobs=3), id="error_every_job"),
    ],
)
def test_job_status_ends_the_run_as_the_policy_says(
    make_steps: MakeSteps, scenario: ExtractScenario, expect: Expect
) -> None:
    # Given a job that behaves as the scenario says, and a deadline of two hours
    steps = quick(make_steps, scenario, RUN_DEADLINE_HOURS="2")

    # When the chain runs
    final = drive(steps, start(steps), tick=300)

    # Then the run ended as the failure policy says, with the alerts people need
    assert_end_state(steps, final, expect)


def test_status_answering_404_fails_the_run(make_steps: MakeSteps) -> None:
    # Given Fusion answering 404 for the job's status from now on
    steps = quick(make_steps)
    assert steps.fusion is not None
    run_id = start(steps)
    steps.fusion.fail_next(r"/jobRequests/\d+$", 404, count=1000, method="GET")

    # When the chain runs, Then the run failed at once (an unknown job is permanent)
    assert_end_state(steps, drive(steps, run_id), Expect(RunState.FAILED))
