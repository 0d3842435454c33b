"""Finishing a run once every file of it landed: claim the finish (FINISHING), write _manifest.json, then
_SUCCESS, then mark it LANDED. Only the claimant writes; the sweep resumes a finish whose claimant died."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from fusion_extract.chain.ledger.machine import RUN, Event
from fusion_extract.chain.ledger.records import FileState, Run, RunState, Versioned
from fusion_extract.chain.ledger.store import Ledger
from fusion_extract.chain.outcomes import Outcome, Result, outcome
from fusion_extract.chain.runs import logged
from fusion_extract.chain.runs.alerting import Alerter
from fusion_extract.chain.runs.endings import Endings
from fusion_extract.chain.transfer import finish
from fusion_extract.chain.transfer.layout import Layout
from fusion_extract.clock import Clock
from fusion_extract.errors import ConflictError, FusionExtractError, NotFoundError, TransientError
from fusion_extract.ports import ObjectStore

log = logging.getLogger(__name__)

SAVE_TRIES = 20  # compare-and-swap tries of a change that must not be lost to another write of the run


@dataclass(frozen=True)
class Finisher:
    ledger: Ledger
    store: ObjectStore
    layout: Layout
    clock: Clock
    alerter: Alerter
    endings: Endings

    def finish_if_complete(self, current: Versioned[Run], *, resume: bool = False) -> Outcome | None:
        """When every file of the run landed: claim the finish (FINISHING, landed_at fixed), write
        _manifest.json, then _SUCCESS, then mark LANDED. Only the claimant writes; the sweep resumes a
        finish whose claimant died (`resume`), writing the very same bytes."""
        run = current.value
        if run.state is RunState.FINISHING and resume:
            return self._finish(current)
        if run.state is not RunState.TRANSFERRING or self.ledger.landed_count(run.run_id) < run.file_count:
            return None
        records = [v.value for v in self.ledger.files(run.run_id)]
        if len(records) < run.file_count or any(r.state is not FileState.LANDED for r in records):
            return None
        with logged(run):
            checks = finish.cross_check(self.ledger.planned_files(run), records)
            if checks.problems:
                self.endings.end(
                    current, Event.FAIL, "landed files do not verify: " + "; ".join(checks.problems)
                )
                return outcome(Result.FAILED, run.run_id, problems=checks.problems)
            now = self.clock.now()
            finishing = RUN.after(run.state, Event.ALL_LANDED)
            claim = run.but(state=finishing, landed_at=now, updated_at=now, next_at=now, reason=None)
            try:
                claimed = self.ledger.save_run(current, claim)
            except ConflictError:
                return None  # another invocation is finishing it
            return self._finish(claimed)

    def _finish(self, current: Versioned[Run]) -> Outcome | None:
        run = current.value
        records = [v.value for v in self.ledger.files(run.run_id)]
        notes = finish.cross_check(self.ledger.planned_files(run), records).notes
        with logged(run):
            if not self._finished_writing(run):  # a resumed finish whose writes were all made skips them
                document = finish.manifest(run.but(state=RunState.LANDED), records, self.layout, notes)
                self.store.put_bytes(self.layout.manifest(run), document, content_type="application/json")
                # _SUCCESS last: its presence says the run is complete.
                self.store.put_bytes(self.layout.success(run), b"", content_type="text/plain")
            now = self.clock.now()
            told = ("landed", "manifest_disagrees") if notes else ("landed",)  # alerts sent below
            landed = self._mark_landed(current, now, told)
            if landed is None:
                return None  # a duplicate resumed the finish and completed it
            self.ledger.release_lease(run.extract, run.run_id)
            self.endings.discard_staging(run)
            self._note_landed(run, now)
            totals = finish.totals(records)
            self.alerter.alert("landed", landed.value, None, folder=self.layout.run_folder(run), **totals)
            if notes:
                reason = "Fusion's manifest and its listing disagree on names: " + "; ".join(notes)
                self.alerter.alert("manifest_disagrees", landed.value, reason[:2000])
            log.info("run landed", extra=totals)
            return outcome(Result.LANDED, run.run_id, **totals)

    def _finished_writing(self, run: Run) -> bool:
        """Whether this run's _manifest.json and then _SUCCESS are in its folder already (a _SUCCESS of an
        earlier landing of the same job does not count: its manifest names another run)."""
        if self.store.head(self.layout.success(run)) is None:
            return False
        try:
            written = json.loads(self.store.get_bytes(self.layout.manifest(run))[0])
        except (NotFoundError, ValueError):
            return False
        return isinstance(written, dict) and written.get("run_id") == run.run_id

    def _mark_landed(
        self, current: Versioned[Run], now: datetime, told: tuple[str, ...]
    ) -> Versioned[Run] | None:
        """FINISHING -> LANDED, with the alerts `told` noted, whatever else was saved on the run meanwhile
        (an alert noted, say); None when another finisher marked it first."""
        for _ in range(SAVE_TRIES):
            if not RUN.allows(current.value.state, Event.FINISHED):
                return None  # LANDED by another finisher
            run = current.value
            landed = run.but(state=RUN.after(run.state, Event.FINISHED), updated_at=now)
            try:
                return self.ledger.save_run(current, landed.but(alerts=(*run.alerts, *told)))
            except ConflictError:
                current = self.ledger.load_run(current.value.run_id)
        raise TransientError(
            f"run {current.value.run_id} could not be marked LANDED ({SAVE_TRIES} conflicts)"
        )

    def _note_landed(self, run: Run, now: datetime) -> None:
        try:
            self.ledger.note_landed(run.extract, run.run_id, now)
        except FusionExtractError as exc:  # a hint only: the run landed all the same
            log.warning("latest landing not noted", extra={"problem": str(exc)[:500]})
