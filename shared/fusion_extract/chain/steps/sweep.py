"""The sweep (poll function, `{"kind": "sweep"}` on a schedule): re-drive every active run whose next step
is overdue (a lost message, a crashed invocation) or due (a rerun after its backoff, a retry after a
transient failure); end runs past their deadline without asking Fusion anything; tell a person about a
run it had to re-drive STALL_ALERT_AFTER times without progress, and about any ledger document that
cannot be read (moved aside, so it never stops the sweep for the other runs); and watch each catalog
extract: how long since it landed, and whether it is late against its service level (late.py).

It reads only the index of active runs, so its cost follows the runs in flight, not the history.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from fusion_extract.chain.deps import Deps
from fusion_extract.chain.ledger.machine import FILE, UNIT, Event, claimable, due, overdue, run_due
from fusion_extract.chain.ledger.quarantine import set_aside
from fusion_extract.chain.ledger.records import (
    FileRecord,
    FileState,
    Run,
    RunState,
    Unit,
    UnitState,
    Versioned,
)
from fusion_extract.chain.ledger.store import Unreadable
from fusion_extract.chain.outcomes import Outcome, Result, outcome
from fusion_extract.chain.runs import logged
from fusion_extract.chain.steps.deadline import past_deadline, time_out
from fusion_extract.chain.steps.late import watch_extracts
from fusion_extract.chain.steps.transfer import STAGED
from fusion_extract.errors import ConflictError, FusionExtractError

log = logging.getLogger(__name__)


def sweep(deps: Deps) -> Outcome:
    state = _Sweep(deps, deps.clock.now(), timedelta(seconds=deps.settings.step_overdue_seconds))
    redriven: dict[str, str] = {}
    for found in deps.ledger.active_runs():
        if isinstance(found, Unreadable):
            redriven[found.name] = state.quarantine(found)
            continue
        with logged(found.value):
            try:
                action = state.run(found)
            except Exception as exc:  # one run's trouble must not stop the sweep for the others
                action = deps.endings.setback(found.value.run_id, exc, "sweep").result.value
            if action:
                redriven[found.value.run_id] = action
                log.info("sweep re-drove run", extra={"action": action})
    try:
        entries = list(deps.catalog)
    except FusionExtractError as exc:  # no figure is posted: the sweep-silent alarm tells a person
        log.error("extract catalog unreadable: no HoursSinceLanded posted", extra={"problem": str(exc)[:500]})
        entries = []
    late = watch_extracts(deps, entries, state.now)
    if late:
        return outcome(Result.SWEPT, redriven=redriven, late=late)
    return outcome(Result.SWEPT, redriven=redriven)


@dataclass
class _Sweep:
    deps: Deps
    now: datetime
    overdue: timedelta

    def run(self, current: Versioned[Run]) -> str | None:
        run = current.value
        # FINISHING has no deadline: its _SUCCESS may be written already, so it only ever goes on.
        if run.state is not RunState.FINISHING and past_deadline(run, self.now):
            return time_out(self.deps, current).result.value
        late = run_due(run, self.now, self.overdue)
        if run.state is RunState.RUNNING and late:
            return self._repoll(current)
        if run.state is RunState.SUBMITTING and late:
            self.deps.handoff.publish_rerun(run.run_id, run.attempt)  # resume the submit that died
            return self._redriven(current, "rerun")
        if run.state is RunState.RERUN_PENDING and due(run.next_at, self.now):
            self.deps.handoff.publish_rerun(run.run_id, run.attempt + 1)
            return self._redriven(current, "rerun")
        if run.state is RunState.TRANSFERRING:
            return self._retransfer(current)
        if run.state is RunState.FINISHING and late:
            self.deps.finisher.finish_if_complete(current, resume=True)  # its finisher died midway
            return "finish"
        return None

    def quarantine(self, found: Unreadable) -> str:
        settings = self.deps.settings
        return set_aside(
            self.deps.ledger, self.deps.alerter.notify, found, settings.bucket, settings.namespace
        )

    def _repoll(self, current: Versioned[Run]) -> str | None:
        run = current.value
        following = run.but(poll_seq=run.poll_seq + 1, next_at=self.now, parked=False)
        try:
            current = self.deps.ledger.save_run(current, following)
        except ConflictError:
            return None
        self.deps.handoff.publish_poll(run.run_id, following.poll_seq)
        return "poll" if run.parked else self._redriven(current, "poll")

    def _retransfer(self, current: Versioned[Run]) -> str | None:
        run = current.value
        records = [v.value for v in self.deps.ledger.files(run.run_id)]
        # A poll that died between the run's plan and its files' records: the plan is read only then.
        plan = self.deps.ledger.planned_files(run) if len(records) < run.file_count else []
        recorded = {r.name for r in records}
        missing = sorted((p for p in plan if p.name not in recorded), key=lambda p: p.name)
        for planned in missing:
            pending = FILE.after(None, Event.PLANNED)
            record = FileRecord(run.run_id, planned.name, pending, next_at=self.now, planned=planned)
            with contextlib.suppress(ConflictError):
                self.deps.ledger.create_file(record)
            records.append(record)
        landed = sum(1 for r in records if r.state is FileState.LANDED)
        if landed > run.progress:  # files landed since the last sweep: the run is moving
            try:
                current = self.deps.ledger.save_run(current, run.but(progress=landed, redrives=0))
            except ConflictError:
                return None
        if records and landed == len(records) == run.file_count:
            if not overdue(run.next_at, self.now, self.overdue):
                return None
            for record in records:  # a transfer that died between its record and its marker
                self.deps.ledger.mark_landed(run.run_id, record.name)
            self.deps.finisher.finish_if_complete(current)
            return "finish"
        due = [
            *(p.name for p in missing),
            *(r.name for r in records if r.name in recorded and self._file_due(r)),
        ]
        units = {r.name: self._units_due(r) for r in records if r.state is FileState.UNPACKING}
        units = {name: indexes for name, indexes in units.items() if indexes}
        if not due and not units:
            return None
        self.deps.handoff.publish_transfers(run.run_id, due)
        for name, indexes in units.items():
            self.deps.handoff.publish_units(run.run_id, name, indexes)
        count = len(due) + sum(len(indexes) for indexes in units.values())
        return self._redriven(current, f"transfer x{count}")

    def _redriven(self, current: Versioned[Run], action: str) -> str:
        """Count a re-drive without progress; the STALL_ALERT_AFTER-th tells a person, once."""
        run = current.value
        redrives = run.redrives + 1
        try:
            current = self.deps.ledger.save_run(current, run.but(redrives=redrives))
        except ConflictError:
            return action  # the run moved meanwhile: that is progress
        if redrives >= self.deps.patience.stall_alert_after:
            reason = f"the sweep re-drove it {redrives} times without progress (state {run.state.value})"
            self.deps.alerter.alert_once(current, "overdue", reason)
        return action

    def _units_due(self, record: FileRecord) -> list[int]:
        """Units whose message was lost, whose invocation died, or whose retry is due (to unpack, or once
        every unit is staged, to promote); all of them promoted but the file not landed (its lander
        died): the first, which lands it."""
        units = record.units
        if all(unit.state is UnitState.PROMOTED for unit in units):
            moments = [moment for unit in units for moment in (unit.claimed_at, unit.next_at) if moment]
            return [0] if moments and overdue(max(moments), self.now, self.overdue) else []
        staged = all(unit.state in STAGED for unit in units)
        waiting = UnitState.DONE if staged else UnitState.PENDING
        return [index for index, unit in enumerate(units) if self._unit_due(unit, waiting)]

    def _unit_due(self, unit: Unit, waiting: UnitState) -> bool:
        # A unit never put off had a message sent with it when it was planned or paused.
        return claimable(UNIT, unit, waiting, self.now, self.overdue, awaited=unit.retries == 0)

    def _file_due(self, record: FileRecord) -> bool:
        # A file never tried had a message sent with it when it was planned.
        awaited = record.attempts == 0 and record.retries == 0
        return claimable(FILE, record, FileState.PENDING, self.now, self.overdue, awaited=awaited)
