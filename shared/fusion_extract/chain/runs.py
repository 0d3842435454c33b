"""The one owner of what every step does to a run besides its own work: find it, end it, alert people,
hand work on (poll, rerun and transfer messages), discard its staging, finish it once its files landed."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fusion_extract import logging as jsonlog
from fusion_extract.chain import alerts, messages
from fusion_extract.chain.ledger.machine import RUN, Event
from fusion_extract.chain.ledger.records import FileState, Run, RunState, Versioned
from fusion_extract.chain.ledger.store import Ledger
from fusion_extract.chain.outcomes import Outcome, Result, outcome
from fusion_extract.chain.policy import Kind, classify, describe
from fusion_extract.chain.transfer import finish
from fusion_extract.chain.transfer.landing import withdraw
from fusion_extract.chain.transfer.layout import Layout
from fusion_extract.clock import Clock
from fusion_extract.errors import ConflictError, FusionExtractError, NotFoundError, TransientError
from fusion_extract.ports import Metrics, NoMetrics, ObjectStore, Publisher

log = logging.getLogger(__name__)

# Notifications accepts 60 messages a minute per topic: past this many files, files travel in batches
# and each transfer invocation hands the rest of its batch on.
FANOUT_MESSAGES = 50
SAVE_TRIES = 20  # compare-and-swap tries of a change that must not be lost to another write of the run


@dataclass(frozen=True)
class Topics:
    poll: str
    transfer: str
    rerun: str
    alerts: str


@dataclass(frozen=True)
class Patience:
    """How long a run may struggle before it fails or a person is told (policy.py)."""

    stall_alert_after: int = 5  # failures or re-drives in a row
    malformed_tries: int = 3
    defer_seconds: float = 60.0  # the first wait after a transient failure; doubles
    longest_wait: float = 3600.0

    def delay(self, failures: int) -> timedelta:
        return min(backoff(self.defer_seconds, failures), timedelta(seconds=self.longest_wait))


_ENDINGS = {
    "landed": "RunsLanded",
    "failed": "RunsFailed",
    "timed_out": "RunsTimedOut",
    "cancelled": "RunsCancelled",
}


def logged(run: Run) -> AbstractContextManager[None]:
    """Every log line inside carries the run's identity."""
    return jsonlog.bind(run_id=run.run_id, extract=run.extract, job_id=run.job_id)


def backoff(base_seconds: float, attempt: int) -> timedelta:
    """Exponential: base, 2*base, 4*base ... for attempt 1, 2, 3 ..."""
    return timedelta(seconds=base_seconds * 2 ** max(attempt - 1, 0))


class Runs:
    def __init__(
        self,
        ledger: Ledger,
        store: ObjectStore,
        layout: Layout,
        publisher: Publisher,
        topics: Topics,
        clock: Clock,
        patience: Patience | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.layout = layout
        self.publisher = publisher
        self.topics = topics
        self.clock = clock
        self.patience = patience or Patience()
        self.metrics = metrics or NoMetrics()

    def find(self, run_id: str, step: str) -> Versioned[Run] | None:
        """The run a message names, or None (logged): a message may outlive the ledger it points into."""
        try:
            return self.ledger.load_run(run_id)
        except NotFoundError:
            log.warning(f"{step} for an unknown run ignored", extra={"run_id": run_id})
            return None

    def alert(self, event: str, run: Run, reason: str | None = None, **extra: Any) -> None:
        """Tell people (alerts topic) about a run: landed, failed, timed_out, cancelled, needs_human,
        unknown_status, stuck, overdue."""
        relanding = {"reland": True} if run.reland else {}  # its advice: re-land the job, not a rerun
        self.notify(
            event, run_id=run.run_id, extract=run.extract, mode=run.mode, job_id=run.job_id, reason=reason,
            **relanding, **extra,
        )  # fmt: skip
        self._count(event, run, extra)

    def notify(self, event: str, **fields: Any) -> None:
        """Publish one alert (also for what is not a run: an unreadable ledger document), titled for people
        (`FAILED Sales <run id>`), its body readable text ending in the alert's JSON (chain/alerts.py)."""
        alert = messages.encode("alert", event=event, **fields)
        self.publisher.publish_text(self.topics.alerts, alerts.title(alert), alerts.body(alert))
        log.info("alert sent", extra={"event": event, "reason": fields.get("reason")})

    def started(self, run: Run) -> None:
        """A run began (submit): counted for Monitoring."""
        self.metrics.record("RunsStarted", 1, extract=run.extract, mode=run.mode)

    def _note_landed(self, run: Run, now: datetime) -> None:
        try:
            self.ledger.note_landed(run.extract, run.run_id, now)
        except FusionExtractError as exc:  # a hint only: the run landed all the same
            log.warning("latest landing not noted", extra={"problem": str(exc)[:500]})

    def _count(self, event: str, run: Run, extra: dict[str, Any]) -> None:
        """The metrics a run's ending is worth (oci/metrics.py names them)."""
        name = _ENDINGS.get(event)
        if name is None:
            return
        self.metrics.record(name, 1, extract=run.extract, mode=run.mode)
        if event != "landed":
            return
        for key, metric in (("bytes", "BytesLanded"), ("files", "FilesLanded"), ("rows", "RowsLanded")):
            if isinstance(extra.get(key), int):
                self.metrics.record(metric, extra[key], extract=run.extract)
        took = (self.clock.now() - run.created_at).total_seconds()
        self.metrics.record("RunDurationSeconds", took, extract=run.extract, mode=run.mode)
        self.metrics.record("HoursSinceLanded", 0, extract=run.extract)

    def alert_once(self, current: Versioned[Run], event: str, reason: str) -> Versioned[Run]:
        """Alert about this run unless this kind of alert went out already; the run as saved."""
        run = current.value
        if event in run.alerts:
            return current
        self.alert(event, run, reason)
        try:
            return self.ledger.save_run(current, run.but(alerts=(*run.alerts, event)))
        except ConflictError:
            return self.ledger.load_run(run.run_id)

    def setback(self, run_id: str, exc: BaseException, step: str) -> Outcome:
        """Apply the failure policy to an error that stopped a step's work on a run (policy.py)."""
        reason = f"{step}: {describe(exc)}"
        try:
            current = self.ledger.load_run(run_id)
        except FusionExtractError:
            raise exc from None  # the run cannot even be read: the invocation fails as it is
        run, kind = current.value, classify(exc)
        if run.state.final:
            return outcome(Result.STALE, run_id, state=run.state.value)
        failures = run.failures + 1
        # A finish under way may have written _SUCCESS already: it only ever goes on (or a person is told).
        ends = run.state is not RunState.FINISHING
        if ends and (
            kind is Kind.PERMANENT or (kind is Kind.MALFORMED and failures >= self.patience.malformed_tries)
        ):
            self.end(current, Event.FAIL, reason)
            return outcome(Result.FAILED, run_id, reason=reason)
        now = self.clock.now()
        retry_at = now + self.patience.delay(failures)
        waiting = run.but(failures=failures, problem=reason, next_at=retry_at, updated_at=now)
        try:
            current = self.ledger.save_run(current, waiting)
        except ConflictError:
            return outcome(Result.STALE, run_id)  # another step moved the run on meanwhile
        log.warning("step failed; the sweep tries again", extra={"reason": reason, "failures": failures})
        if failures >= self.patience.stall_alert_after:
            self.alert_once(current, "stuck", f"{failures} failures in a row; the latest: {reason}")
        return outcome(Result.DEFERRED, run_id, reason=reason, retry_at=retry_at.isoformat())

    def cancel(self, current: Versioned[Run], by: str) -> Outcome:
        """End a run CANCELLED: its lease is released and every late message for it does nothing."""
        run = current.value
        if not RUN.allows(run.state, Event.CANCEL):  # final, or FINISHING: its _SUCCESS may be there
            return outcome(Result.NOTHING_TO_DO, run.run_id, state=run.state.value)
        if self.end(current, Event.CANCEL, f"cancelled by {by}") is None:
            return outcome(Result.IN_PROGRESS, run.run_id)
        return outcome(Result.CANCELLED, run.run_id, extract=run.extract, job_id=run.job_id)

    def end(self, current: Versioned[Run], event: Event, reason: str) -> Versioned[Run] | None:
        """End a run by `event` (fail, time out, cancel): take back what it made visible, release its
        lease, alert. None if another invocation was first, or the machine has no such move from its state
        (final states have none: a run is ended once, and told of once; FINISHING only goes on)."""
        if not RUN.allows(current.value.state, event):
            log.info(
                "run not ended: no such move", extra={"state": current.value.state.value, "event": event}
            )
            return None
        state = RUN.after(current.value.state, event)
        now = self.clock.now()
        try:
            saved = self.ledger.save_run(
                current, current.value.but(state=state, reason=reason, updated_at=now)
            )
        except ConflictError:
            log.info("run changed meanwhile; leaving it to the newer step")
            return None
        withdraw(self.store, self.layout, saved.value)
        self.ledger.release_lease(saved.value.extract, saved.value.run_id)
        self.discard_staging(saved.value)
        self.alert(state.value.lower(), saved.value, reason)
        logger = log.info if state is RunState.CANCELLED else log.error
        logger("run ended", extra={"state": state.value, "reason": reason})
        return saved

    def discard_staging(self, run: Run) -> None:
        """Staged copies are private to a run and never visible; once the run is over they go."""
        for leftover in list(self.store.list(self.layout.run_staging(run))):
            self.store.delete(leftover.name)
        self.store.abort_uploads(self.layout.run_staging(run))

    def publish_poll(self, run_id: str, seq: int) -> None:
        self.publisher.publish(self.topics.poll, messages.poll_message(run_id, seq))

    def publish_rerun(self, run_id: str, attempt: int) -> None:
        self.publisher.publish(self.topics.rerun, messages.rerun_message(run_id, attempt))

    def publish_transfers(self, run_id: str, names: Sequence[str]) -> None:
        """One message per file; past FANOUT_MESSAGES files, FANOUT_MESSAGES batches of files, each within
        a message's limits. Files that fit in none stay PENDING: the sweep hands them out when due."""
        batches, left = messages.transfer_batches(run_id, list(names), FANOUT_MESSAGES)
        for batch in batches:
            self.publisher.publish(self.topics.transfer, batch)
        if left:
            log.info("files left for the sweep to hand out", extra={"files": len(left)})

    def publish_units(self, run_id: str, name: str, units: Sequence[int]) -> None:
        """One message per unit of an archive's members: each may run in an invocation of its own."""
        for unit in units:
            self.publisher.publish(self.topics.transfer, messages.unit_message(run_id, name, unit))

    def hand_on(self, run_id: str, names: Sequence[str]) -> None:
        """The rest of a batch, in one message, for the next transfer invocation."""
        self.publisher.publish(self.topics.transfer, messages.transfer_message(run_id, list(names)))

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
            checks = finish.cross_check(run, self.ledger.planned_files(run), records)
            if checks.problems:
                self.end(current, Event.FAIL, "landed files do not verify: " + "; ".join(checks.problems))
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
        notes = finish.cross_check(run, self.ledger.planned_files(run), records).notes
        with logged(run):
            if not self._finished_writing(run):  # a resumed finish whose writes were all made skips them
                document = finish.manifest(run.but(state=RunState.LANDED), records, self.layout, notes)
                self.store.put_bytes(self.layout.manifest(run), document, content_type="application/json")
                # _SUCCESS last: its presence says the run is complete.
                self.store.put_bytes(self.layout.success(run), b"", content_type="text/plain")
            now = self.clock.now()
            landed = self._mark_landed(current, now)
            if landed is None:
                return None  # a duplicate resumed the finish and completed it
            self.ledger.release_lease(run.extract, run.run_id)
            self.discard_staging(run)
            self._note_landed(run, now)
            totals = finish.totals(records)
            self.alert("landed", landed.value, None, folder=self.layout.run_folder(run), **totals)
            if notes:
                reason = "Fusion's manifest and its listing disagree on names: " + "; ".join(notes)
                self.alert("manifest_disagrees", landed.value, reason[:2000])
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

    def _mark_landed(self, current: Versioned[Run], now: datetime) -> Versioned[Run] | None:
        """FINISHING -> LANDED, whatever else was saved on the run meanwhile (an alert noted, say); None
        when another finisher marked it first."""
        for _ in range(SAVE_TRIES):
            if not RUN.allows(current.value.state, Event.FINISHED):
                return None  # LANDED by another finisher
            landed = RUN.after(current.value.state, Event.FINISHED)
            try:
                return self.ledger.save_run(current, current.value.but(state=landed, updated_at=now))
            except ConflictError:
                current = self.ledger.load_run(current.value.run_id)
        raise TransientError(
            f"run {current.value.run_id} could not be marked LANDED ({SAVE_TRIES} conflicts)"
        )
