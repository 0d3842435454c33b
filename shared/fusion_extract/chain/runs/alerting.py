"""Telling people (the alerts topic) and Monitoring how a run is doing; what they read is chain/alerts.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fusion_extract.chain import alerts, messages
from fusion_extract.chain.ledger.records import Run, Versioned
from fusion_extract.chain.ledger.store import Ledger
from fusion_extract.clock import Clock
from fusion_extract.errors import ConflictError
from fusion_extract.ports import Metrics, Publisher

log = logging.getLogger(__name__)

_ENDINGS = {
    "landed": "RunsLanded",
    "failed": "RunsFailed",
    "timed_out": "RunsTimedOut",
    "cancelled": "RunsCancelled",
}


@dataclass(frozen=True)
class Alerter:
    ledger: Ledger
    publisher: Publisher
    topic: str  # the alerts topic
    clock: Clock
    metrics: Metrics

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
        self.publisher.publish_text(self.topic, alerts.title(alert), alerts.body(alert))
        log.info("alert sent", extra={"event": event, "reason": fields.get("reason")})

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

    def started(self, run: Run) -> None:
        """A run began (submit): counted for Monitoring."""
        self.metrics.record("RunsStarted", 1, extract=run.extract, mode=run.mode)

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
