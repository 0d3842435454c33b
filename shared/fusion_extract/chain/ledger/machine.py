"""The ledger's three state machines, declared as data: which event moves a run, a file or a unit of an
archive's members from which state to which. Steps name the move they make (`after`), and the ledger
refuses to save a record whose state changed in a way its machine does not have (`check`), so no code path
can move a record where these tables do not lead; final states lead nowhere. docs/states.md is drawn from
the tables (`make docs`, checked by a test).

Each move is saved with one conditional write of the record (ledger.py): of two invocations making a move
from the same version, one wins and the other re-reads.

When a record may be taken up is declared here too, once: `claimable` (a file or a unit: free and due, or
held under a claim its invocation left overdue) and `run_due` (a run the sweep drives on).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from fusion_extract.chain.ledger.records import FileState, Run, RunState, UnitState

S = TypeVar("S", RunState, FileState, UnitState)


class Event(enum.StrEnum):
    # a run
    START = "start"  # a run request (schedule, fn invoke) or an operator's rerun of a failed run
    RELAND = "reland"  # a succeeded job to land again
    SUBMITTED = "submitted"  # Fusion took the job
    RESUME = "resume"  # a submit that died or failed transiently is taken up again
    SUCCEEDED = "succeeded"  # the job succeeded: its files are planned
    JOB_FAILED = "job_failed"  # the job failed and attempts remain: a new one after the backoff
    RERUN = "rerun"  # the backoff passed: the new job is being submitted
    ALL_LANDED = "all_landed"  # every file landed and the cross-checks held: one finisher claims it
    FINISHED = "finished"  # _manifest.json and then _SUCCESS written
    FAIL = "fail"  # a permanent error, attempts spent, a hostile input, a cross-check that failed
    TIME_OUT = "time_out"  # past the deadline
    CANCEL = "cancel"  # an operator's cancel
    # a file or a unit
    PLANNED = "planned"
    CLAIM = "claim"  # an invocation takes the work (or takes it over from one that died)
    PAUSE = "pause"  # the invocation's budget is spent: the next one goes on from there
    RETRY = "retry"  # a failure that another try may mend: later, or from the start
    FETCHED = "fetched"  # an archive is in staging and verified: its units are planned
    STAGED = "staged"  # a unit's members are in staging and verified
    PROMOTED = "promoted"  # a unit's members are in the landing folder
    LANDED = "landed"  # the file's members (or the file itself) are in the landing folder
    GIVE_UP = "give_up"  # the file cannot land: its run fails


class IllegalMove(RuntimeError):
    """A step asked for a move the machine does not have: a bug, never an input's fault."""


@dataclass(frozen=True)
class Machine(Generic[S]):
    name: str
    moves: Mapping[tuple[S | None, Event], S]  # (from, event) -> to; from None: a new record

    def after(self, state: S | None, event: Event) -> S:
        """The state `event` leads to from `state`; IllegalMove when it leads nowhere (a final state)."""
        try:
            return self.moves[(state, event)]
        except KeyError:
            shown = state.value if state is not None else "(new)"
            raise IllegalMove(f"{self.name}: no move {event.value!r} from {shown}") from None

    def allows(self, state: S | None, event: Event) -> bool:
        return (state, event) in self.moves

    def check(self, before: S | None, after: S) -> None:
        """IllegalMove unless some event leads from `before` to `after` (staying put is no move)."""
        if before is not after and after not in {t for (s, _), t in self.moves.items() if s is before}:
            shown = before.value if before is not None else "(new)"
            raise IllegalMove(f"{self.name}: no move from {shown} to {after.value}")

    def __iter__(self) -> Iterator[tuple[S | None, Event, S]]:
        return ((source, event, target) for (source, event), target in self.moves.items())


ENDINGS = {Event.FAIL: RunState.FAILED, Event.TIME_OUT: RunState.TIMED_OUT, Event.CANCEL: RunState.CANCELLED}


def _endings(*states: RunState) -> dict[tuple[RunState | None, Event], RunState]:
    return {(state, event): final for state in states for event, final in ENDINGS.items()}


R, F, U = RunState, FileState, UnitState

RUN: Machine[RunState] = Machine(
    "run",
    {
        (None, Event.START): R.SUBMITTING,
        (None, Event.RELAND): R.RUNNING,
        (R.SUBMITTING, Event.SUBMITTED): R.RUNNING,
        (R.SUBMITTING, Event.RESUME): R.SUBMITTING,
        (R.RUNNING, Event.SUCCEEDED): R.TRANSFERRING,
        (R.RUNNING, Event.JOB_FAILED): R.RERUN_PENDING,
        (R.RERUN_PENDING, Event.RERUN): R.SUBMITTING,
        (R.TRANSFERRING, Event.ALL_LANDED): R.FINISHING,
        (R.FINISHING, Event.FINISHED): R.LANDED,
        # FINISHING only goes on: its _SUCCESS may be written already, so it cannot fail, time out or stop.
        **_endings(R.SUBMITTING, R.RUNNING, R.RERUN_PENDING, R.TRANSFERRING),
    },
)

FILE: Machine[FileState] = Machine(
    "file",
    {
        (None, Event.PLANNED): F.PENDING,
        (F.PENDING, Event.CLAIM): F.TRANSFERRING,
        (F.TRANSFERRING, Event.CLAIM): F.TRANSFERRING,
        (F.TRANSFERRING, Event.PAUSE): F.PENDING,
        (F.TRANSFERRING, Event.RETRY): F.PENDING,
        (F.UNPACKING, Event.RETRY): F.PENDING,
        (F.TRANSFERRING, Event.FETCHED): F.UNPACKING,
        (F.TRANSFERRING, Event.LANDED): F.LANDED,
        (F.UNPACKING, Event.LANDED): F.LANDED,
        (F.TRANSFERRING, Event.GIVE_UP): F.FAILED,
        (F.UNPACKING, Event.GIVE_UP): F.FAILED,
    },
)

UNIT: Machine[UnitState] = Machine(
    "unit",
    {
        (None, Event.PLANNED): U.PENDING,
        (U.PENDING, Event.CLAIM): U.WORKING,
        (U.WORKING, Event.CLAIM): U.WORKING,
        (U.WORKING, Event.PAUSE): U.PENDING,
        (U.WORKING, Event.RETRY): U.PENDING,
        (U.WORKING, Event.STAGED): U.DONE,
        (U.DONE, Event.CLAIM): U.PROMOTING,
        (U.PROMOTING, Event.CLAIM): U.PROMOTING,
        (U.PROMOTING, Event.PAUSE): U.DONE,
        (U.PROMOTING, Event.RETRY): U.DONE,
        (U.PROMOTING, Event.PROMOTED): U.PROMOTED,
    },
)

MACHINES: tuple[Machine[Any], ...] = (RUN, FILE, UNIT)


def diagram(machine: Machine[Any]) -> str:
    """The machine as a Mermaid state diagram (docs/states.md)."""
    lines = ["stateDiagram-v2"]
    for source, event, target in machine:
        lines.append(f"    {source.value if source is not None else '[*]'} --> {target.value}: {event.value}")
    finals = sorted({t.value for _, _, t in machine} - {s.value for s, _, _ in machine if s is not None})
    lines += [f"    {final} --> [*]" for final in finals]
    return "\n".join(lines)


class Work(Protocol):
    """A file record or a unit of an archive's members: work one invocation at a time claims."""

    @property
    def state(self) -> enum.StrEnum: ...
    @property
    def next_at(self) -> datetime | None: ...  # waiting: not before (None: at once)
    @property
    def claimed_at(self) -> datetime | None: ...  # held: since


def due(next_at: datetime | None, now: datetime, grace: timedelta = timedelta(0)) -> bool:
    """Whether what waits for `next_at` may start now (None: at once), `grace` later still."""
    return next_at is None or now >= next_at + grace


def overdue(since: datetime | None, now: datetime, limit: timedelta) -> bool:
    """Whether what began at `since` and should have been over within `limit` (STEP_OVERDUE_SECONDS) is not:
    its invocation died, or its message was lost."""
    return since is not None and now > since + limit


def claimable(
    machine: Machine[S], work: Work, waiting: S, now: datetime, limit: timedelta, *, awaited: bool = False
) -> bool:
    """May `work` be claimed from `waiting` now: it is `waiting` and due, or it is held under the claim
    `waiting` leads to and that claim is overdue (a takeover). `awaited`: a message for it is on its way
    (the step that planned it sent one), so the sweep gives that message `limit` to arrive first."""
    if work.state is waiting:
        return due(work.next_at, now, limit if awaited else timedelta(0))
    return work.state is machine.after(waiting, Event.CLAIM) and overdue(work.claimed_at, now, limit)


def run_due(run: Run, now: datetime, limit: timedelta) -> bool:
    """Whether the sweep drives a run on: at next_at when nothing else will (a transient failure waits for
    its retry, a poll parked for a long wait); otherwise a message for it was sent at next_at, and only
    once that is overdue (lost)."""
    if run.failures or run.parked:
        return due(run.next_at, now)
    return overdue(run.next_at, now, limit)
