"""How a run ends: failed, timed out or cancelled, once (final states absorb every later move), taking back
what it made visible; or, after a setback the failure policy forgives, put off until the sweep retries it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fusion_extract.chain.ledger.machine import RUN, Event
from fusion_extract.chain.ledger.records import Run, RunState, Versioned
from fusion_extract.chain.ledger.store import Ledger
from fusion_extract.chain.outcomes import Outcome, Result, outcome
from fusion_extract.chain.policy import Kind, Patience, classify, describe
from fusion_extract.chain.runs.alerting import Alerter
from fusion_extract.chain.transfer.landing import withdraw
from fusion_extract.chain.transfer.layout import Layout
from fusion_extract.clock import Clock
from fusion_extract.errors import ConflictError, FusionExtractError
from fusion_extract.ports import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endings:
    ledger: Ledger
    store: ObjectStore
    layout: Layout
    clock: Clock
    alerter: Alerter
    patience: Patience

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
            self.alerter.alert_once(current, "stuck", f"{failures} failures in a row; the latest: {reason}")
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
        told = (*current.value.alerts, state.value.lower())  # the alert below, in the run's history
        try:
            saved = self.ledger.save_run(
                current, current.value.but(state=state, reason=reason, updated_at=now, alerts=told)
            )
        except ConflictError:
            log.info("run changed meanwhile; leaving it to the newer step")
            return None
        withdraw(self.store, self.layout, saved.value)
        self.ledger.release_lease(saved.value.extract, saved.value.run_id)
        self.discard_staging(saved.value)
        self.alerter.alert(state.value.lower(), saved.value, reason)
        logger = log.info if state is RunState.CANCELLED else log.error
        logger("run ended", extra={"state": state.value, "reason": reason})
        return saved

    def discard_staging(self, run: Run) -> None:
        """Staged copies are private to a run and never visible; once the run is over they go."""
        for leftover in list(self.store.list(self.layout.run_staging(run))):
            self.store.delete(leftover.name)
        self.store.abort_uploads(self.layout.run_staging(run))
