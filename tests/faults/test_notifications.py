"""Notifications lose, duplicate, reorder and delay messages, topic by topic: every run still lands once.

The extract's first job fails, so all three subscribed topics carry work: poll (first check and
continuations), rerun (the second job) and transfer (one message per file).
"""

from __future__ import annotations

import pytest

from fusion_extract.chain.ledger.records import RunState
from tests.emulators.fusion import ExtractScenario
from tests.faults.bus import Bus, Faults, drive, start
from tests.faults.conftest import Expect, assert_end_state
from tests.steps.conftest import EXTRACT, MakeSteps

# Short waits so the sweep comes round quickly; the rules are the product's own.
QUICK = {
    "STEP_OVERDUE_SECONDS": "60",
    "TRANSFER_BUDGET_SECONDS": "20",
    "RERUN_BACKOFF_SECONDS": "0",
    "FILE_RETRY_SECONDS": "0",
}
RERUN_ONCE = ExtractScenario(fail_first_jobs=1, chunks=3, seconds_running=30)
TWO_JOBS = Expect(RunState.LANDED, jobs=2)

FAULTS = {
    "lost": Faults(lose=0.5),
    "lost_all_first": Faults(lose=1.0),
    "duplicated": Faults(duplicate=1.0),
    "reordered": Faults(reorder=True, duplicate=0.3),
    "delayed": Faults(delay=45),  # late, yet within STEP_OVERDUE_SECONDS
}


@pytest.mark.parametrize("topic", ["poll", "transfer", "rerun"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_notifications_when_one_topic_misbehaves_the_run_lands_once(
    make_steps: MakeSteps, topic: str, fault: str
) -> None:
    # Given a run whose first job fails, and one topic that loses, duplicates, reorders or delays
    steps = make_steps(**QUICK)
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, RERUN_ONCE)
    rules = FAULTS[fault]
    bus = Bus(steps, {topic: rules}, seed=7)
    run_id = start(steps)

    # When the chain runs (messages lost for good are replaced by the sweep; a total loss only at first)
    if fault == "lost_all_first":
        bus.pump()
        bus.faults = {}
    final = drive(steps, run_id, bus)

    # Then the run landed exactly once, with two jobs (one per attempt), and nothing was left over
    assert_end_state(steps, final, TWO_JOBS)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_notifications_when_every_topic_misbehaves_at_random_the_run_lands_once(
    make_steps: MakeSteps, seed: int
) -> None:
    # Given every topic losing a fifth, duplicating a third and reordering its messages (seeded)
    steps = make_steps(**QUICK)
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, RERUN_ONCE)
    rules = Faults(lose=0.2, duplicate=0.3, reorder=True, delay=30)
    bus = Bus(steps, dict.fromkeys(("poll", "transfer", "rerun"), rules), seed=seed)

    # When the chain runs
    final = drive(steps, start(steps), bus)

    # Then it landed once, one job per attempt
    assert_end_state(steps, final, TWO_JOBS)


def test_notifications_when_every_poll_arrives_after_the_sweep_re_drove_it_a_person_is_told_and_it_times_out(
    make_steps: MakeSteps,
) -> None:
    # Given poll messages that always arrive later than STEP_OVERDUE_SECONDS (each re-drive makes the
    # message on its way stale, and the new one arrives late again)
    steps = make_steps(**QUICK, RUN_DEADLINE_HOURS="2")
    bus = Bus(steps, {"poll": Faults(delay=600)})

    # When the chain runs
    final = drive(steps, start(steps), bus, tick=300)

    # Then the run still ends, by its deadline, and a person was told it was re-driven without progress
    assert_end_state(steps, final, Expect(RunState.TIMED_OUT, alerts=("overdue",)))
