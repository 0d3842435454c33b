"""Monitoring PostMetricData (POST /20180401/metrics): validates each metric like OCI, records the good ones.

Invalid metrics come back in `failedMetrics` (OCI accepts the rest of the batch); a body without
`metricData` is a 400. With batchAtomicity ATOMIC one bad metric rejects the whole batch.

Alarms: `add_alarm(...)` in-process (Terraform's oci_monitoring_alarm), listed by ListAlarms
(GET /20180401/alarms?compartmentId=, required) as AlarmSummary documents.
"""

from __future__ import annotations

import itertools
import re
import threading
from typing import Any

from tests.emulators.oci.http import Request, Response, Route, ServiceError

_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._\-$]*")
_RESERVED = ("oci_", "oracle_")
MAX_METRICS = 50


def metric_problem(metric: Any) -> str | None:
    """Why OCI would refuse this MetricDataDetails, or None."""
    if not isinstance(metric, dict):
        return "a metric must be an object"
    namespace, name = metric.get("namespace"), metric.get("name")
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        return f"invalid namespace {namespace!r}"
    if namespace.startswith(_RESERVED):
        return f"namespace {namespace!r} uses a reserved prefix (oci_, oracle_)"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return f"invalid metric name {name!r}"
    if not isinstance(metric.get("compartmentId"), str):
        return "compartmentId is required"
    dimensions = metric.get("dimensions")
    if not isinstance(dimensions, dict) or not dimensions:
        return "at least one dimension is required"
    points = metric.get("datapoints")
    if not isinstance(points, list) or not points:
        return "at least one datapoint is required"
    if not all(isinstance(p, dict) and "timestamp" in p and "value" in p for p in points):
        return "every datapoint needs a timestamp and a value"
    return None


class Monitoring:
    def __init__(self, compartment: str) -> None:
        self.compartment = compartment
        self.metrics: list[dict[str, Any]] = []
        self.alarms: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.routes: list[Route] = [
            ("POST", re.compile(r"/20180401/metrics"), self._post_metric_data),
            ("GET", re.compile(r"/20180401/alarms"), self._list_alarms),
        ]

    def add_alarm(
        self, display_name: str, query: str, destinations: list[str], *, severity: str = "CRITICAL"
    ) -> str:
        """An enabled alarm on namespace fusion_extract; its OCID."""
        alarm_id = f"ocid1.alarm.oc1.emu.{next(self._ids)}"
        alarm = {
            "id": alarm_id,
            "displayName": display_name,
            "compartmentId": self.compartment,
            "metricCompartmentId": self.compartment,
            "namespace": "fusion_extract",
            "query": query,
            "severity": severity,
            "destinations": list(destinations),
            "isEnabled": True,
            "lifecycleState": "ACTIVE",
        }
        with self._lock:
            self.alarms.append(alarm)
        return alarm_id

    def _list_alarms(self, request: Request, match: re.Match[str]) -> Response:
        compartment = request.query.get("compartmentId")
        if not compartment:
            raise ServiceError(400, "MissingParameter", "compartmentId is required")
        with self._lock:
            items = [alarm for alarm in self.alarms if alarm["compartmentId"] == compartment]
        return Response.json(200, items)

    def _post_metric_data(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json()
        metrics = body.get("metricData") if isinstance(body, dict) else None
        if not isinstance(metrics, list) or not metrics:
            raise ServiceError(400, "InvalidParameter", "metricData must be a non-empty list")
        if len(metrics) > MAX_METRICS:
            raise ServiceError(400, "InvalidParameter", f"at most {MAX_METRICS} metrics per request")
        failed = [
            {"message": problem, "metricData": metric}
            for metric in metrics
            if (problem := metric_problem(metric)) is not None
        ]
        if failed and body.get("batchAtomicity") == "ATOMIC":
            raise ServiceError(400, "InvalidParameter", f"atomic batch refused: {failed[0]['message']}")
        with self._lock:
            self.metrics.extend(m for m in metrics if metric_problem(m) is None)
        return Response.json(200, {"failedMetricsCount": len(failed), "failedMetrics": failed})
