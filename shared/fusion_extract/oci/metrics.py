"""ports.Metrics over OCI Monitoring custom metrics (PostMetricData on the telemetry-ingestion endpoint).

Datapoints are kept in memory while a step runs and posted once at its end (`flush`), at most 50 metrics
a request, in namespace `fusion_extract`, each with the dimensions it was recorded with (always at least
`deployment`). Posting never fails a step: any error, and any metric Monitoring refuses, is logged once as a
warning and the datapoints are dropped (a step is not retried for a metric).

Metric names (docs/operating.md): RunsStarted, RunsLanded, RunsFailed, RunsTimedOut, RunsCancelled,
BytesLanded, FilesLanded, RowsLanded, RunDurationSeconds, HoursSinceLanded, HoursLate.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from oci.monitoring.models import Datapoint, MetricDataDetails, PostMetricDataDetails

from fusion_extract.clock import Clock
from fusion_extract.errors import UpstreamError
from fusion_extract.oci.calls import translated

NAMESPACE = "fusion_extract"
BATCH = 50  # metrics per PostMetricData request (the service's limit)
log = logging.getLogger(__name__)


class OciMetrics:
    def __init__(
        self,
        client: Callable[[], Any],
        compartment_id: str,
        clock: Clock,
        *,
        deployment: str = "fusion-extract",
    ) -> None:
        self._client = client  # built on first flush: a step that records nothing never builds it
        self.compartment_id = compartment_id
        self.clock = clock
        self.deployment = deployment
        self._pending: list[tuple[str, float, datetime, dict[str, str]]] = []
        self._lock = threading.Lock()

    def record(self, name: str, value: float, **dimensions: str) -> None:
        with self._lock:
            self._pending.append((name, float(value), self.clock.now(), dimensions))

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            self._post(pending)
        except Exception as exc:  # metrics must never fail a step
            log.warning(
                "metrics not posted",
                extra={"metrics": len(pending), "problem": f"{type(exc).__name__}: {exc}"[:500]},
            )

    def post_now(self, name: str, value: float, **dimensions: str) -> None:
        """Post one datapoint at once and raise what went wrong (the preflight's check of the grant)."""
        with translated(f"post metric {name} in namespace {NAMESPACE}"):
            refused = self._post([(name, float(value), self.clock.now(), dimensions)])
        if refused:
            raise UpstreamError(f"Monitoring refused metric {name}: {'; '.join(refused)}")

    def _post(self, pending: list[tuple[str, float, datetime, dict[str, str]]]) -> list[str]:
        """Post in batches; what Monitoring refused (logged once)."""
        details = [
            MetricDataDetails(
                namespace=NAMESPACE,
                compartment_id=self.compartment_id,
                name=name,
                dimensions={"deployment": self.deployment, **dimensions},
                datapoints=[Datapoint(timestamp=at, value=value, count=1)],
            )
            for name, value, at, dimensions in pending
        ]
        client = self._client()
        refused: list[str] = []
        for start in range(0, len(details), BATCH):
            batch = details[start : start + BATCH]
            answer = client.post_metric_data(PostMetricDataDetails(metric_data=batch)).data
            if answer.failed_metrics_count:
                problems = [str(m.message) for m in answer.failed_metrics or []]
                log.warning(
                    "metrics refused",
                    extra={"refused": answer.failed_metrics_count, "problems": problems[:5]},
                )
                refused += problems or [f"{answer.failed_metrics_count} refused"]
        return refused
