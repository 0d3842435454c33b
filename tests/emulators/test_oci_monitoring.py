"""Monitoring PostMetricData in the OCI emulator, with the real MonitoringClient."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import oci
import pytest
from oci.monitoring.models import Datapoint, MetricDataDetails, PostMetricDataDetails

from tests.emulators import pool
from tests.emulators.oci import COMPARTMENT, OciEmulator

WHEN = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture
def emu(tmp_path) -> Iterator[OciEmulator]:
    with pool.OCI.lend() as emu:
        yield emu.reset(tmp_path / "oci", "emuns")


@pytest.fixture
def monitoring(emu) -> oci.monitoring.MonitoringClient:
    return oci.monitoring.MonitoringClient(emu.api_key_config(), service_endpoint=emu.endpoint)


def metric(namespace: str = "fusion_extract", name: str = "files_landed") -> MetricDataDetails:
    return MetricDataDetails(
        namespace=namespace,
        compartment_id=COMPARTMENT,
        name=name,
        dimensions={"extract": "gl_balances"},
        datapoints=[Datapoint(timestamp=WHEN, value=3.0)],
    )


def test_post_metric_data_records_metrics(emu, monitoring):
    # When a valid metric is posted
    answer = monitoring.post_metric_data(PostMetricDataDetails(metric_data=[metric()])).data
    # Then none failed and the emulator holds it as posted
    assert (answer.failed_metrics_count, answer.failed_metrics) == (0, [])
    [recorded] = emu.metrics
    assert (recorded["namespace"], recorded["name"], recorded["dimensions"]) == (
        "fusion_extract",
        "files_landed",
        {"extract": "gl_balances"},
    )
    assert recorded["datapoints"][0]["value"] == 3.0


def test_post_metric_data_reserved_namespace_fails_that_metric_only(emu, monitoring):
    # When a batch holds one good metric and one in a reserved namespace
    details = PostMetricDataDetails(metric_data=[metric(), metric(namespace="oci_objectstorage")])
    answer = monitoring.post_metric_data(details).data
    # Then the bad one is reported and only the good one is kept
    assert answer.failed_metrics_count == 1
    assert "reserved prefix" in answer.failed_metrics[0].message
    assert [m["namespace"] for m in emu.metrics] == ["fusion_extract"]


def test_post_metric_data_atomic_batch_with_bad_metric_is_400(emu, monitoring):
    # When an atomic batch holds an invalid metric name
    details = PostMetricDataDetails(metric_data=[metric(), metric(name="9bad")], batch_atomicity="ATOMIC")
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        monitoring.post_metric_data(details)
    # Then the whole batch is refused and nothing is kept
    assert (caught.value.status, caught.value.code) == (400, "InvalidParameter")
    assert emu.metrics == []
