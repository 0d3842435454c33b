"""What the steps need, as one argument. The composition root (fusion_extract.runtime) builds it lazily;
tests build it from the same adapters pointed at the emulators."""

from __future__ import annotations

import random
from typing import Protocol

from fusion_extract.catalog import Catalog
from fusion_extract.chain.ledger.store import Ledger
from fusion_extract.chain.policy import Patience
from fusion_extract.chain.readiness import Readiness
from fusion_extract.chain.runs.alerting import Alerter
from fusion_extract.chain.runs.endings import Endings
from fusion_extract.chain.runs.finishing import Finisher
from fusion_extract.chain.runs.handoff import HandOff
from fusion_extract.chain.transfer.archive_source import ArchiveSource
from fusion_extract.chain.transfer.layout import Layout
from fusion_extract.clock import Clock, IdFactory
from fusion_extract.config import Settings
from fusion_extract.ports import FusionApi, Metrics, ObjectStore, Publisher


class Deps(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def new_id(self) -> IdFactory: ...
    @property
    def random(self) -> random.Random: ...
    @property
    def catalog(self) -> Catalog: ...
    @property
    def layout(self) -> Layout: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def store(self) -> ObjectStore: ...
    @property
    def publisher(self) -> Publisher: ...
    @property
    def fusion(self) -> FusionApi: ...
    @property
    def archives(self) -> ArchiveSource: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def patience(self) -> Patience: ...
    @property
    def alerter(self) -> Alerter: ...
    @property
    def handoff(self) -> HandOff: ...
    @property
    def endings(self) -> Endings: ...
    @property
    def finisher(self) -> Finisher: ...
    @property
    def readiness(self) -> Readiness: ...
