"""What a run's history holds, and how it is noted: from what each save changes, in the very write that
makes the change. No step can forget an event, and no event costs a write of its own.

    a run's document   changed   its state moved (from, to), with the reason it was given
                       job       a Fusion job taken on (job_ids grew): its request id, the attempt
                       attempt   a step failed (failures grew): the problem, and when it is tried again
                       redrive   the sweep re-drove it without progress (redrives grew)
                       alert     an alert went out (alerts grew; each kind once): its event and title
                       rerun     created as a rerun of a run (rerun_of), or rerun by a new run (reruns grew)
    a file's document  claim     an invocation took the file (attempts grew: each claim counts one) or a
                                 unit of its members (to unpack or promote it, or taken over)
                       attempt   the file's transfer failed (it went back to PENDING keeping its attempt,
                                 or counted a retry, or FAILED) or a unit's did (its retries grew)

Each entry carries the time of the write (the state change: the run's `updated_at`, when the step says
it moved) and the call id of the invocation (fdk's, bound to its log lines). A document keeps its latest
HISTORY_KEPT entries and counts those it dropped; `show` merges a run's entries with its files'.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from fusion_extract.chain.alerts import title
from fusion_extract.chain.ledger.records import (
    Entry,
    Fact,
    FileRecord,
    FileState,
    Run,
    UnitState,
    What,
    changed,
)
from fusion_extract.clock import isoformat

CLAIMED = (UnitState.WORKING, UnitState.PROMOTING)  # a unit at work: to unpack, or to promote
LONGEST = 500  # characters kept of a problem or reason: the document stays small whatever an error said


def noted_run(before: Run | None, after: Run, at: datetime, call_id: str | None) -> Run:
    """`after` with what changed since `before` (None: a new run) added to the history `before` had (the
    ledger's alone to write: a step's copy of it, however old, is never saved over a newer one)."""
    kept = after.history if before is None else before.history
    return after.but(history=kept.add(*_run_entries(before, after, at, call_id)))


def noted_file(before: FileRecord | None, after: FileRecord, at: datetime, call_id: str | None) -> FileRecord:
    """`after` with its claims and failed attempts since `before` (None: a new file) added to its history."""
    if before is None:
        return after
    return after.but(history=before.history.add(*_file_entries(before, after, at, call_id)))


def _run_entries(before: Run | None, run: Run, at: datetime, call_id: str | None) -> Iterator[Entry]:
    def entry(what: What, **facts: Fact | None) -> Entry:
        return Entry(at, what, call_id, facts=_known(facts))

    source = None if before is None else before.state
    if before is None or source is not run.state:
        reason = run.reason if before is None or run.reason != before.reason else None
        yield changed(run.updated_at, run.state, source, call_id, **_known({"reason": _short(reason)}))
    if before is None and run.rerun_of:
        yield entry(What.RERUN, rerun_of=run.rerun_of)
    old = before or Run(run.run_id, run.extract, run.mode, run.state, at, at, at)  # new: none of it yet
    for job_id in _added(old.job_ids, run.job_ids):
        yield entry(What.JOB, job_id=job_id, attempt=run.attempt, reland=1 if run.reland else None)
    if run.failures > old.failures:
        yield entry(
            What.ATTEMPT, failures=run.failures, problem=_short(run.problem), retry_at=isoformat(run.next_at)
        )
    if run.redrives > old.redrives:
        yield entry(What.REDRIVE, redrives=run.redrives)
    for event in _added(old.alerts, run.alerts):
        about = {"event": event, "extract": run.extract, "run_id": run.run_id}
        yield entry(What.ALERT, event=event, title=title(about))  # the e-mail's subject
    for rerun in _added(old.reruns, run.reruns):
        yield entry(What.RERUN, rerun_by=rerun)


def _file_entries(
    before: FileRecord, record: FileRecord, at: datetime, call_id: str | None
) -> Iterator[Entry]:
    def entry(what: What, **facts: Fact | None) -> Entry:
        return Entry(at, what, call_id, facts=_known({"file": record.name, **facts}))

    if record.attempts > before.attempts:
        yield entry(What.CLAIM, attempt=record.attempts)
    # A transient failure counts a retry; any other goes back to PENDING keeping its attempt (a pause
    # gives it back), or ends the file FAILED.
    back = record.state is FileState.PENDING and before.state is not FileState.PENDING
    went_back = back and record.attempts >= before.attempts
    gave_up = record.state is FileState.FAILED and before.state is not FileState.FAILED
    if record.retries > before.retries or went_back or gave_up:
        if record.state is FileState.FAILED:
            yield entry(What.ATTEMPT, problem=_short(record.reason), given_up=1)
        else:
            yield entry(What.ATTEMPT, problem=_short(record.reason), retry_at=isoformat(record.next_at))
    units = {unit.first: unit for unit in before.units}
    for index, unit in enumerate(record.units):
        was = units.get(unit.first)
        if was is None or was.count != unit.count:
            continue  # a unit planned anew (the file started over): nothing of it claimed yet
        if unit.state in CLAIMED and unit.claims > was.claims:
            yield entry(What.CLAIM, unit=index, work=unit.state.value)
        if unit.retries > was.retries:
            retry_at = None if unit.next_at is None else isoformat(unit.next_at)
            yield entry(What.ATTEMPT, unit=index, retries=unit.retries, retry_at=retry_at)


def _added(before: tuple[str, ...], after: tuple[str, ...]) -> list[str]:
    """What `after` holds that `before` did not (they only ever grow, at their end)."""
    return list(after[len(before) :]) if after[: len(before)] == before else []


def _known(facts: dict[str, Fact | None]) -> dict[str, Fact]:
    return {key: value for key, value in facts.items() if value is not None}


def _short(text: str | None) -> str | None:
    return None if text is None else text[:LONGEST]
