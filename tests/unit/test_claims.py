"""When a record may be taken up (chain/ledger/machine.py): one rule for every file and unit claim, whoever
asks (the transfer step claiming it, the sweep handing it out again), and one for a run the sweep drives."""

from datetime import UTC, datetime, timedelta

from fusion_extract.chain.ledger.machine import FILE, UNIT, claimable, run_due
from fusion_extract.chain.ledger.records import FileRecord, FileState, Run, RunState, Unit, UnitState

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LIMIT = timedelta(seconds=900)  # STEP_OVERDUE_SECONDS
SECOND = timedelta(seconds=1)


def _file(state: FileState, *, next_at: datetime = T0, claimed_at: datetime | None = None) -> FileRecord:
    return FileRecord("r1", "a.zip", state, next_at=next_at, claimed_at=claimed_at)


def _run(**changes: object) -> Run:
    return Run("r1", "Sales", "full", RunState.RUNNING, T0, T0, next_at=T0).but(**changes)


def test_claim_of_waiting_work_starts_at_its_next_at():
    # Given a file waiting until T0
    pending = _file(FileState.PENDING)

    # When it is asked for a moment before, and then at T0
    # Then it may be claimed from T0 on, not before
    assert not claimable(FILE, pending, FileState.PENDING, T0 - SECOND, LIMIT)
    assert claimable(FILE, pending, FileState.PENDING, T0, LIMIT)


def test_claim_of_work_with_no_next_at_is_at_once():
    # Given a unit planned without a time
    unit = Unit(0, 3)

    # When it is asked for; Then it may be claimed at once
    assert claimable(UNIT, unit, UnitState.PENDING, T0, LIMIT)


def test_claim_of_work_whose_message_is_on_its_way_waits_the_limit_more():
    # Given a file planned at T0, its message sent with the plan
    pending = _file(FileState.PENDING)

    # When the sweep asks while that message may still arrive, and then once it is overdue
    # Then it hands the file out only from T0 + the limit
    assert not claimable(FILE, pending, FileState.PENDING, T0 + LIMIT - SECOND, LIMIT, awaited=True)
    assert claimable(FILE, pending, FileState.PENDING, T0 + LIMIT, LIMIT, awaited=True)


def test_claim_held_by_another_invocation_is_taken_over_only_past_the_limit():
    # Given a file claimed at T0
    held = _file(FileState.TRANSFERRING, claimed_at=T0)

    # When it is asked for at the limit, and a moment past it
    # Then the live claim is respected; the overdue one (its invocation died) is taken over
    assert not claimable(FILE, held, FileState.PENDING, T0 + LIMIT, LIMIT)
    assert claimable(FILE, held, FileState.PENDING, T0 + LIMIT + SECOND, LIMIT)


def test_claim_held_with_no_claim_time_is_never_taken_over():
    # Given a unit at work with no recorded claim
    unit = Unit(0, 3, UnitState.WORKING)

    # When it is asked for long after; Then it is not claimable
    assert not claimable(UNIT, unit, UnitState.PENDING, T0 + 100 * LIMIT, LIMIT)


def test_claim_of_work_in_another_phase_is_refused():
    # Given units staged or promoting, and a file being unpacked
    done = Unit(0, 3, UnitState.DONE, next_at=T0)
    promoting = Unit(0, 3, UnitState.PROMOTING, claimed_at=T0)
    unpacking = _file(FileState.UNPACKING, claimed_at=T0)
    later = T0 + 10 * LIMIT

    # When they are asked for as work of another phase
    # Then none is claimable: unpacking claims PENDING units, promoting DONE ones; files are claimed PENDING
    assert not claimable(UNIT, done, UnitState.PENDING, later, LIMIT)
    assert not claimable(UNIT, promoting, UnitState.PENDING, later, LIMIT)
    assert not claimable(FILE, unpacking, FileState.PENDING, later, LIMIT)
    # And each is, in its own phase
    assert claimable(UNIT, done, UnitState.DONE, later, LIMIT)
    assert claimable(UNIT, promoting, UnitState.DONE, later, LIMIT)


def test_run_awaiting_its_message_is_due_only_once_that_message_is_overdue():
    # Given a running run whose next poll message was sent for T0
    run = _run()

    # When the sweep looks at the limit, and a moment past it
    # Then it re-drives the run only past the limit (the message was lost)
    assert not run_due(run, T0 + LIMIT, LIMIT)
    assert run_due(run, T0 + LIMIT + SECOND, LIMIT)


def test_run_waiting_for_a_retry_or_parked_is_due_at_its_next_at():
    # Given a run put off after a transient failure, and one whose poll was parked for a long wait
    for run in (_run(failures=1), _run(parked=True)):
        # When the sweep looks just before T0, and at T0
        # Then nothing else will drive it: it is due at T0 exactly
        assert not run_due(run, T0 - SECOND, LIMIT)
        assert run_due(run, T0, LIMIT)
