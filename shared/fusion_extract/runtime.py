"""The composition root: the one place that builds clients and adapters, lazily, never at import time.

A function container builds one Runtime on its first invocation and reuses it while it stays warm;
each dependency is built on first use, so a step pays only for what it touches.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from functools import cached_property

from fusion_extract.catalog import Catalog, read_catalog
from fusion_extract.chain.ledger.store import Ledger
from fusion_extract.chain.policy import Patience
from fusion_extract.chain.readiness import Readiness
from fusion_extract.chain.runs.alerting import Alerter
from fusion_extract.chain.runs.endings import Endings
from fusion_extract.chain.runs.finishing import Finisher
from fusion_extract.chain.runs.handoff import HandOff, Topics
from fusion_extract.chain.transfer.archive_source import ArchiveSource, FusionArchives
from fusion_extract.chain.transfer.layout import Layout
from fusion_extract.clock import Clock, IdFactory, SystemClock, new_id
from fusion_extract.config import Settings
from fusion_extract.errors import ConfigError
from fusion_extract.heap import map_large_buffers
from fusion_extract.oci.clients import OciClients
from fusion_extract.oci.notify import OciPublisher
from fusion_extract.oci.objects import OciObjectStore
from fusion_extract.oci.vault import VaultCredentials
from fusion_extract.ports import CredentialSource, FusionApi, Metrics, NoMetrics, ObjectStore, Publisher
from fusion_extract.resumable import self_test

# This container's native libraries: checked once, whatever configuration later invocations bring.
CONTAINER = Readiness(self_test)


class Runtime:
    """Implements chain.deps.Deps for real: adapters over the OCI SDK and the Fusion client."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        ids: IdFactory = new_id,
        rng: random.Random | None = None,
        readiness: Readiness = CONTAINER,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.new_id = ids
        self.random = rng or random.Random()
        self.readiness = readiness

    @cached_property
    def oci(self) -> OciClients:
        return OciClients(self.settings, self.clock)

    @cached_property
    def catalog(self) -> Catalog:
        """Read once per container: a new catalog is a new object name, so new configuration (catalog.py)."""
        s = self.settings
        return read_catalog(self.store, s.catalog_object, s.bucket)

    @cached_property
    def layout(self) -> Layout:
        return Layout.from_settings(self.settings, lambda: self.catalog.templates())

    @cached_property
    def store(self) -> ObjectStore:
        s = self.settings
        return OciObjectStore(
            self.oci.object_storage,
            self.oci.namespace,
            s.bucket,
            part_size=s.upload_part_mb * 2**20,
            parallelism=s.upload_parallelism,
        )

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.store, self.settings.state_prefix, clock=self.clock)

    @cached_property
    def patience(self) -> Patience:
        s = self.settings
        return Patience(s.stall_alert_after, s.malformed_tries, s.defer_seconds)

    @cached_property
    def alerter(self) -> Alerter:
        return Alerter(self.ledger, self.publisher, self.settings.alerts_topic_id, self.clock, self.metrics)

    @cached_property
    def handoff(self) -> HandOff:
        s = self.settings
        topics = Topics(s.poll_topic_id, s.transfer_topic_id, s.rerun_topic_id)
        return HandOff(self.publisher, topics)

    @cached_property
    def endings(self) -> Endings:
        return Endings(self.ledger, self.store, self.layout, self.clock, self.alerter, self.patience)

    @cached_property
    def finisher(self) -> Finisher:
        return Finisher(self.ledger, self.store, self.layout, self.clock, self.alerter, self.endings)

    @cached_property
    def metrics(self) -> Metrics:
        """Custom metrics when METRICS_COMPARTMENT_ID is set; else nothing is posted."""
        compartment = self.settings.metrics_compartment_id
        if compartment is None:
            return NoMetrics()
        from fusion_extract.oci.metrics import OciMetrics  # here: without metrics, no Monitoring SDK

        return OciMetrics(lambda: self.oci.monitoring, compartment, self.clock)

    @cached_property
    def publisher(self) -> Publisher:
        return OciPublisher(lambda: self.oci.notifications)  # built on the first publish

    @cached_property
    def credentials(self) -> CredentialSource:
        s = self.settings
        return VaultCredentials(
            self.oci.secrets, s.credentials_secret_id, self.clock, s.secret_ttl_seconds, grant=s.fusion_grant
        )

    # What only the preflight asks for (chain.steps.preflight.Grants): each call exercises its grant now.

    def read_credentials(self) -> None:
        """Read the credentials secret now, past the cache, and check its fields."""
        s = self.settings
        VaultCredentials(
            self.oci.secrets, s.credentials_secret_id, self.clock, 0, grant=s.fusion_grant
        ).credentials()

    def post_metric(self, name: str, value: float, **dimensions: str) -> None:
        """Post one datapoint now (METRICS_COMPARTMENT_ID set), raising what went wrong."""
        compartment = self.settings.metrics_compartment_id
        if compartment is None:
            raise ConfigError("METRICS_COMPARTMENT_ID is not set: no metric is posted")
        from fusion_extract.oci.metrics import OciMetrics

        OciMetrics(lambda: self.oci.monitoring, compartment, self.clock).post_now(name, value, **dimensions)

    @cached_property
    def fusion(self) -> FusionApi:
        # Imported here: an invocation that only unpacks (units) never loads requests and the Fusion client.
        from fusion_extract.fusion.batch import build_batch_client

        return build_batch_client(self.settings, self.credentials, self.clock)

    @cached_property
    def archives(self) -> ArchiveSource:
        return FusionArchives(self.fusion)


_runtimes: dict[frozenset[tuple[str, str]], Runtime] = {}


def runtime_for(env: Mapping[str, str]) -> Runtime:
    """The warm container's Runtime for this configuration (config is validated once, here)."""
    key = frozenset(env.items())
    if key not in _runtimes:
        _runtimes.clear()
        _runtimes[key] = Runtime(Settings.from_mapping(env))
        map_large_buffers()  # the container's memory bound holds in RSS, not only in bytes held (heap.py)
    return _runtimes[key]
