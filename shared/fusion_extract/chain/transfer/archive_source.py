"""Where an output archive's bytes come from. Today: the Batch API download. Newer Fusion releases can
write extract output straight into a customer bucket; BucketArchives serves those through the same
fetch -> verify -> unpack -> land path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from fusion_extract.errors import ConflictError, IntegrityError
from fusion_extract.models import OutputFile, SourceVersion
from fusion_extract.ports import FusionApi, ObjectStore


class ArchiveSource(Protocol):
    def open(self, file: OutputFile, start: int = 0, version: SourceVersion | None = None) -> Iterator[bytes]:
        """The archive's bytes from `start`, as a bounded-memory stream, of `version` only (an empty one is
        filled in from the first read): IntegrityError when the archive changed since."""
        ...


@dataclass(frozen=True)
class FusionArchives:
    fusion: FusionApi

    def open(self, file: OutputFile, start: int = 0, version: SourceVersion | None = None) -> Iterator[bytes]:
        return self.fusion.download(file, start, version)


@dataclass(frozen=True)
class BucketArchives:
    """Archives stored as objects: `file.url` holds the object name; its ETag is the version."""

    store: ObjectStore

    def open(self, file: OutputFile, start: int = 0, version: SourceVersion | None = None) -> Iterator[bytes]:
        if start >= file.size:
            return iter(())
        if version is not None and version.etag is None:
            found = self.store.head(file.url)
            version.etag = found.etag if found is not None else None
        try:
            etag = version.etag if version is not None else None
            return self.store.read_range(file.url, start, file.size, if_match=etag)
        except ConflictError:
            raise IntegrityError(f"{file.name} changed since its fetch began") from None
