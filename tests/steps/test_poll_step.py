"""poll: one bounded step per invocation; continuations carry the run's seq; success fans out transfers."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from fusion_extract.chain.ledger.records import FileState, RunState
from tests.emulators.fusion import ExtractScenario
from tests.emulators.fusion.outputs import job_outputs
from tests.steps.conftest import EXTRACT, MakeSteps, Steps, is_zip

LONG_JOB = ExtractScenario(seconds_running=36_000)  # still running long after any poll step


def job_status_calls(steps: Steps, job_id: str | None) -> int:
    return steps.fusion_calls(rf"/jobRequests/{job_id}$")


def test_poll_stale_seq_is_ignored_without_asking_fusion(make_steps: MakeSteps) -> None:
    # Given a running job followed by poll step seq 1, which handed on to seq 2
    steps = make_steps(POLL_BUDGET_SECONDS="0")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, LONG_JOB)
    run = steps.start()
    steps.poll(run.run_id, 1)
    before = steps.deps.ledger.load_run(run.run_id)
    published = len(steps.ons.published)

    # When seq 1 is delivered again, and a seq that never was the run's arrives
    again = steps.poll(run.run_id, 1)
    unknown = steps.poll(run.run_id, 7)

    # Then both are ignored: no status check beyond the first, no change to the run, nothing published
    assert again["outcome"] == unknown["outcome"] == "stale"
    assert job_status_calls(steps, run.job_id) == 1
    assert steps.deps.ledger.load_run(run.run_id) == before
    assert len(steps.ons.published) == published


def test_poll_for_an_unknown_run_is_ignored(steps: Steps) -> None:
    # Given no run "gone"; When a poll for it arrives, Then it is answered unknown_run and nothing happens
    assert steps.poll("gone", 1) == {"outcome": "unknown_run", "run_id": "gone"}
    assert steps.runs() == [] and steps.ons.published == []


def test_poll_running_job_with_no_time_to_wait_parks_until_the_sweep_brings_its_next_check(
    make_steps: MakeSteps,
) -> None:
    # Given a job that keeps running, and no time to wait inside a step
    steps = make_steps(POLL_BUDGET_SECONDS="0")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, LONG_JOB)
    run = steps.start()
    steps.clock.advance(30)

    # When poll step seq 1 runs
    outcome = steps.poll(run.run_id, 1)

    # Then it checked once, did not wait, and parked the run as seq 2, due after the first interval
    # (15 s +-20 %), publishing nothing: no invocation is spent on the wait
    after = steps.run(run.run_id)
    assert outcome["outcome"] == "running" and outcome["next_at"] == after.next_at.isoformat()
    assert steps.clock.sleeps == []
    assert (after.state, after.poll_seq, after.polls, after.parked) == (RunState.RUNNING, 2, 1, True)
    wait = (after.next_at - steps.clock.now()).total_seconds()
    assert 12 <= wait <= 18
    assert len(steps.published("poll")) == 1

    # When the sweep runs before and at the time of the next check
    early = steps.sweep()
    steps.clock.advance(wait)
    due = steps.sweep()

    # Then only the second brought it back, as seq 3, with no count against the run's progress
    assert early["redriven"] == {} and due["redriven"] == {run.run_id: "poll"}
    assert steps.published("poll")[-1] == {"v": 1, "kind": "poll", "run_id": run.run_id, "seq": 3}
    assert steps.run(run.run_id).redrives == 0


def test_poll_continuation_waits_out_its_interval_before_it_checks(make_steps: MakeSteps) -> None:
    # Given a job that keeps running, and a budget that holds a few checks
    steps = make_steps(POLL_BUDGET_SECONDS="100", POLL_MIN_INTERVAL="15", POLL_MAX_INTERVAL="60")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, LONG_JOB)
    run = steps.start()

    # When the first step hands on to a continuation, and the continuation runs at once
    assert steps.poll(run.run_id, 1)["outcome"] == "running"
    handed = steps.run(run.run_id)
    assert not handed.parked and steps.published("poll")[-1]["seq"] == 2
    slept_before, arrived = len(steps.clock.sleeps), steps.clock.now()
    steps.poll(run.run_id, 2)

    # Then it first slept until the time it was given, and checked only then
    assert steps.clock.sleeps[slept_before] == (handed.next_at - arrived).total_seconds() > 0


def test_poll_waits_growing_jittered_intervals_while_its_budget_lasts(make_steps: MakeSteps) -> None:
    # Given a job that keeps running, a 600 s budget and intervals from 15 s to 120 s
    steps = make_steps(POLL_BUDGET_SECONDS="600", POLL_MIN_INTERVAL="15", POLL_MAX_INTERVAL="120")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, LONG_JOB)
    run = steps.start()

    # When one poll step runs
    outcome = steps.poll(run.run_id, 1)

    # Then it slept between checks, each interval 1.5x the last up to the cap, each jittered within +-20 %
    sleeps = steps.clock.sleeps
    bases = [min(120.0, 15 * 1.5**index) for index in range(len(sleeps))]
    factors = [sleep / base for sleep, base in zip(sleeps, bases, strict=True)]
    assert all(0.8 <= factor <= 1.2 for factor in factors), factors
    assert len({round(factor, 6) for factor in factors}) == len(factors)  # jittered, not a fixed factor
    assert bases[-1] == 120.0  # reached the cap
    # And it stayed inside its budget, handing on when the next wait would not fit
    assert sum(sleeps) <= 600
    after = steps.run(run.run_id)
    next_wait = (after.next_at - steps.clock.now()).total_seconds()
    assert sum(sleeps) + next_wait > 600
    assert outcome["outcome"] == "running"
    assert after.polls == len(sleeps) + 1 == job_status_calls(steps, run.job_id)


def test_poll_success_records_the_plan_creates_file_records_and_fans_out_transfers(steps: Steps) -> None:
    # Given a job of 2 ZIPs (and the .mf manifest)
    run = steps.start()

    # When poll steps follow it to success
    steps.deliver("poll")

    # Then the run is TRANSFERRING with the plan Fusion listed: names, sizes, checksums (files landed as
    # they are first, then the archives, each in the listing's order)
    after = steps.run(run.run_id)
    assert after.state is RunState.TRANSFERRING
    assert steps.fusion is not None and after.job_id is not None
    outputs = sorted(job_outputs(steps.fusion.job(after.job_id)), key=lambda f: is_zip(f.name))
    listed = [(f.name, f.digest().size, f.digest().sha256) for f in outputs]
    assert [(f.name, f.size, f.sha256) for f in steps.planned(after)] == listed
    assert len(listed) == 3
    # And every file has a PENDING record, and one transfer message of its own
    for name, *_ in listed:
        record = steps.file(run.run_id, name)
        assert (record.state, record.attempts) == (FileState.PENDING, 0)
    transfers = steps.published("transfer")
    assert sorted(m["files"][0] for m in transfers) == sorted(name for name, *_ in listed)
    assert all(m["run_id"] == run.run_id and len(m["files"]) == 1 for m in transfers)


def test_poll_success_with_more_than_50_files_fans_out_50_batches_covering_each_file_once(
    steps: Steps,
) -> None:
    # Given a job of 60 ZIPs plus the manifest (Notifications takes 60 messages a minute per topic)
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(chunks=60, rows_per_chunk=1))

    # When poll follows it to success
    run = steps.until_transferring()

    # Then the run's plan is kept beside its document, which holds none of the files
    assert len(steps.planned(run)) == 61
    document = json.loads(steps.read(f"_state/runs/{run.run_id}.json"))
    assert "files" not in document and document["plan"]["files"] == 61
    assert len(json.dumps(document)) < 4096
    # And 50 transfer messages carry the 61 files, each file in exactly one of them
    transfers = steps.published("transfer")
    assert len(transfers) == 50
    carried = [name for message in transfers for name in message["files"]]
    assert sorted(carried) == sorted(f.name for f in steps.planned(run))


def test_poll_success_with_zero_files_lands_the_run_with_an_empty_manifest(steps: Steps) -> None:
    # Given a job that succeeds with no output (nothing changed since the last run)
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(zero_files=True))

    # When poll follows it to success
    run = steps.until_transferring()

    # Then the run LANDED at once: an empty manifest, then _SUCCESS; lease free; people told
    assert run.state is RunState.LANDED
    assert steps.landed(run) == ["_SUCCESS", "_manifest.json"]
    manifest = json.loads(steps.read(steps.deps.layout.manifest(run)))
    assert manifest["files"] == [] and manifest["totals"] == {"files": 0, "members": 0, "bytes": 0, "rows": 0}
    assert manifest["job_id"] == run.job_id
    assert steps.published("transfer") == []
    assert steps.deps.ledger.lease_holder(EXTRACT) is None
    assert steps.alerts() == ["landed"]


def test_poll_failed_job_with_attempts_left_schedules_a_rerun_after_the_backoff(steps: Steps) -> None:
    # Given a job that ends ERROR, attempt 1 of 3, a 300 s rerun backoff
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(fail_first_jobs=1))
    run = steps.start()

    # When poll follows it to its end
    outcomes = steps.deliver("poll")

    # Then the run waits RERUN_PENDING until 300 s after the failure, with the reason; nothing published yet
    assert outcomes[-1]["outcome"] == "rerun_scheduled"
    after = steps.run(run.run_id)
    assert after.state is RunState.RERUN_PENDING
    assert after.next_at == after.updated_at + timedelta(seconds=300)
    assert after.reason is not None and re.search(rf"job {run.job_id} ended ERROR", after.reason)
    assert steps.published("rerun") == [] and steps.alerts() == []
    assert steps.deps.ledger.lease_holder(EXTRACT) == run.run_id


def test_poll_second_failure_doubles_the_rerun_backoff(steps: Steps) -> None:
    # Given a run whose first two jobs end ERROR, the first already rerun after its 300 s backoff
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(fail_first_jobs=2))
    run = steps.start()
    steps.deliver("poll")
    steps.clock.advance(300)
    steps.submit(kind="rerun", run_id=run.run_id)

    # When poll follows attempt 2 to its end
    steps.deliver("poll")

    # Then the next rerun is due 600 s after the failure
    after = steps.run(run.run_id)
    assert (after.state, after.attempt) == (RunState.RERUN_PENDING, 2)
    assert after.next_at == after.updated_at + timedelta(seconds=600)


def test_poll_failed_job_with_zero_backoff_publishes_the_rerun_at_once(make_steps: MakeSteps) -> None:
    # Given a job that ends ERROR and no rerun backoff
    steps = make_steps(RERUN_BACKOFF_SECONDS="0")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(fail_first_jobs=1))
    run = steps.start()

    # When poll follows it to its end
    steps.deliver("poll")

    # Then the rerun request of attempt 2 is published at once
    assert steps.run(run.run_id).state is RunState.RERUN_PENDING
    assert steps.published("rerun") == [{"v": 1, "kind": "rerun", "run_id": run.run_id, "attempt": 2}]


def test_poll_failed_job_with_attempts_spent_ends_the_run_failed_with_an_alert(make_steps: MakeSteps) -> None:
    # Given a job that ends ERROR on the run's last attempt
    steps = make_steps(RUN_MAX_ATTEMPTS="1", RERUN_BACKOFF_SECONDS="0")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(fail_first_jobs=1))
    run = steps.start()

    # When poll follows it to its end
    outcomes = steps.deliver("poll")

    # Then the run is FAILED, people were told, the lease is free, and no rerun was asked for
    assert outcomes[-1]["outcome"] == "failed"
    after = steps.run(run.run_id)
    assert after.state is RunState.FAILED and "ended ERROR" in (after.reason or "")
    assert steps.alerts() == ["failed"]
    assert steps.deps.ledger.lease_holder(EXTRACT) is None
    assert steps.published("rerun") == []


def test_poll_cancelled_job_ends_the_run_failed_without_a_rerun(make_steps: MakeSteps) -> None:
    # Given a job that someone cancelled, with attempts left
    steps = make_steps(RERUN_BACKOFF_SECONDS="0")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(outcome="CANCELLED"))
    run = steps.start()

    # When poll follows it to its end
    steps.deliver("poll")

    # Then the run is FAILED (a person stopped it: no rerun), with an alert
    assert steps.run(run.run_id).state is RunState.FAILED
    assert steps.published("rerun") == []
    assert steps.alerts() == ["failed"]


def test_poll_past_the_deadline_ends_the_run_timed_out_with_an_alert(make_steps: MakeSteps) -> None:
    # Given a job still running an hour after submission, and a 1 h deadline
    steps = make_steps(RUN_DEADLINE_HOURS="1", POLL_BUDGET_SECONDS="0")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, LONG_JOB)
    run = steps.start()
    steps.clock.advance(3600)

    # When poll step seq 1 runs
    outcome = steps.poll(run.run_id, 1)

    # Then the run is TIMED_OUT, people were told, the lease is free, and polling stopped
    assert outcome["outcome"] == "timed_out"
    after = steps.run(run.run_id)
    assert after.state is RunState.TIMED_OUT and "deadline" in (after.reason or "")
    assert steps.alerts() == ["timed_out"]
    assert steps.deps.ledger.lease_holder(EXTRACT) is None
    assert len(steps.published("poll")) == 1


def test_poll_error_manual_recovery_alerts_needs_human_once_and_keeps_polling(make_steps: MakeSteps) -> None:
    # Given a job that stops in ERROR_MANUAL_RECOVERY (Fusion waits for a person)
    steps = make_steps(POLL_BUDGET_SECONDS="0")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(outcome="ERROR_MANUAL_RECOVERY"))
    run = steps.start()
    steps.clock.advance(60)

    # When two poll steps see it
    first = steps.poll(run.run_id, 1)
    steps.clock.advance(60)
    second = steps.poll(run.run_id, 2)

    # Then people were told once, and polling goes on (the run stays RUNNING, seq 3 published)
    assert first["outcome"] == second["outcome"] == "running"
    assert steps.alerts() == ["needs_human"]
    after = steps.run(run.run_id)
    assert (after.state, after.poll_seq, after.alerts) == (RunState.RUNNING, 3, ("needs_human",))
    assert after.parked  # no time to wait in a step: the sweep brings the next check


def test_poll_job_on_hold_for_an_hour_alerts_needs_human_once(make_steps: MakeSteps) -> None:
    # Given a job that goes on HOLD 5 s after submission and stays there
    steps = make_steps(POLL_BUDGET_SECONDS="0")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(outcome="HOLD"))
    run = steps.start()
    steps.clock.advance(10)
    steps.poll(run.run_id, 1)

    # When it has been seen on HOLD for just under an hour, Then nobody is told yet
    steps.clock.advance(3599)
    steps.poll(run.run_id, 2)
    assert steps.alerts() == []

    # When it has been seen on HOLD for an hour, and again later
    steps.clock.advance(1)
    steps.poll(run.run_id, 3)
    steps.clock.advance(600)
    steps.poll(run.run_id, 4)

    # Then people were told once, and polling goes on
    assert steps.alerts() == ["needs_human"]
    assert steps.run(run.run_id).state is RunState.RUNNING
    assert steps.run(run.run_id).poll_seq == 5
