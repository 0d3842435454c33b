"""Where an output archive's bytes come from. Today: the Batch API download. Newer Fusion releases can
write extract output straight into a customer bucket; BucketArchives serves those through the same
fetch -> verify -> unpack -> land path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from fusion_extract.models import OutputFile
from fusion_extract.ports import FusionApi, ObjectStore


class ArchiveSource(Protocol):
    def open(self, file: OutputFile, start: int = 0) -> Iterator[bytes]:
        """The archive's bytes from `start`, as a bounded-memory stream."""
        ...


@dataclass(frozen=True)
class FusionArchives:
    fusion: FusionApi

    def open(self, file: OutputFile, start: int = 0) -> Iterator[bytes]:
        return self.fusion.download(file, start)


@dataclass(frozen=True)
class BucketArchives:
    """Archives stored as objects: `file.url` holds the object name."""

    store: ObjectStore

    def open(self, file: OutputFile, start: int = 0) -> Iterator[bytes]:
        return self.store.read_range(file.url, start, file.size) if start < file.size else iter(())
