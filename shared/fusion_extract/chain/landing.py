"""Landing one output file: download (a stream) -> SHA-256 and size checked on the fly -> streaming unzip ->
each member staged under a private per-attempt prefix -> only after the WHOLE archive verified are members
promoted to the landing folder. A bad archive leaves nothing visible. Fusion's `.mf` manifest and outputs
that are not archives are landed as they are, verified the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fusion_extract.chain.archive import Member, ZipLimits, unpack
from fusion_extract.chain.archive_source import ArchiveSource, BucketArchives
from fusion_extract.chain.layout import MANIFEST, SUCCESS, Layout
from fusion_extract.chain.manifest import parse_manifest
from fusion_extract.chain.records import FileRecord, FileState, LandedMember, PlannedFile, Run
from fusion_extract.chain.staging import Stager
from fusion_extract.config import Settings
from fusion_extract.errors import IntegrityError, SupersededError, UnsafeInputError
from fusion_extract.models import OutputFile
from fusion_extract.ports import ObjectStore

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 15.0  # a download's progress is logged at most this often
SMALL_FILE_LIMIT = 4 * 2**20  # a .mf manifest is read into memory up to this size
RESERVED = {MANIFEST, SUCCESS}  # the run folder's own files; `raw/` too


@dataclass
class Landed:
    sha256: str
    size: int
    members: list[Member] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    manifest: dict[str, str] | None = None

    def record(self, record: FileRecord) -> FileRecord:
        return record.but(
            state=FileState.LANDED,
            sha256=self.sha256,
            size=self.size,
            members=tuple(LandedMember(m.path, m.size, m.sha256, m.rows) for m in self.members),
            metadata=self.metadata,
            manifest=self.manifest,
            reason=None,
        )


@dataclass
class Lander:
    """Lands one planned file of a run, for one transfer attempt."""

    settings: Settings
    layout: Layout
    store: ObjectStore
    archives: ArchiveSource
    run: Run
    planned: PlannedFile
    attempt: int
    still_wanted: Callable[[], bool] = lambda: True  # asked once, just before anything becomes visible

    def land(self) -> Landed:
        name = self.planned.name
        if name.lower().endswith(".zip"):
            return self._land_archive()
        if name.lower().endswith(".mf"):
            return self._land_manifest()
        return self._land_plain()

    @property
    def _staging(self) -> str:
        return self.layout.staging(self.run, self.planned.name, self.attempt)

    @property
    def _file(self) -> OutputFile:
        assert self.run.job_id is not None
        p = self.planned
        return OutputFile(self.run.job_id, p.name, p.size, p.sha256, None, p.url, listed_name=p.listed_name)

    def _source(self) -> Iterator[bytes]:
        return progress(self.archives.open(self._file), self.planned.name, self.planned.size)

    def _land_archive(self) -> Landed:
        layout, store = self.layout, self.store
        chunks = self._source()
        raw_staged = f"{self._staging}/raw/{self.planned.name}"
        if self.settings.keep_raw:
            store.upload_stream(raw_staged, chunks, content_type="application/zip")
            # One download: the staged copy is now an archive in a bucket, unpacked and verified below.
            chunks = BucketArchives(store).open(dataclasses.replace(self._file, url=raw_staged))

        def stage(path: str, member: Iterator[bytes]) -> None:
            if path in RESERVED or path.startswith("raw/"):
                raise UnsafeInputError(
                    f"{self.planned.name}: member {path!r} would take a name the run reserves"
                )
            stager.stage(f"{self._staging}/members/{path}", member)

        s = self.settings
        with Stager(store, s.upload_part_mb * 2**20, s.upload_parallelism) as stager:
            result = unpack(
                chunks,
                expected_sha256=self.planned.sha256,
                expected_size=self.planned.size,
                limits=ZipLimits(s.zip_max_entries, s.zip_max_bytes, s.zip_max_ratio),
                stage=stage,
            )
            # The whole archive verified: only now does any of it become visible.
            self._check_wanted()
            moves = [
                (f"{self._staging}/members/{m.path}", layout.member(self.run, m.path)) for m in result.members
            ]
            stager.promote(moves)
        if self.settings.keep_raw:
            store.promote(raw_staged, layout.raw(self.run, self.planned.name))
        metadata = dataclasses.asdict(result.metadata) if result.metadata else None
        return Landed(result.archive_sha256, result.archive_size, list(result.members), metadata=metadata)

    def _land_manifest(self) -> Landed:
        data = _read_small(self._source(), self.planned.name)
        digest = self._verify(data)
        manifest = parse_manifest(data.decode("utf-8", errors="replace"))
        staged = f"{self._staging}/{self.planned.name}"
        self.store.put_bytes(staged, data, content_type="text/plain")
        self._check_wanted()
        self.store.promote(staged, self.layout.member(self.run, self.planned.name))
        return Landed(digest, len(data), manifest=manifest)

    def _land_plain(self) -> Landed:
        """An output that is not an archive: landed as it is, verified the same way."""
        hasher, size = hashlib.sha256(), [0]

        def counted() -> Iterator[bytes]:
            for chunk in self._source():
                hasher.update(chunk)
                size[0] += len(chunk)
                yield chunk

        staged = f"{self._staging}/{self.planned.name}"
        self.store.upload_stream(staged, counted())
        self._check(hasher.hexdigest(), size[0])
        self._check_wanted()
        self.store.promote(staged, self.layout.member(self.run, self.planned.name))
        member = Member(self.planned.name, size[0], hasher.hexdigest(), None)
        return Landed(hasher.hexdigest(), size[0], [member])

    def _check_wanted(self) -> None:
        if not self.still_wanted():
            raise SupersededError(f"{self.planned.name}: the run ended meanwhile; nothing of it is landed")

    def _verify(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self._check(digest, len(data))
        return digest

    def _check(self, digest: str, size: int) -> None:
        if self.planned.sha256 is not None and digest != self.planned.sha256:
            raise IntegrityError(
                f"{self.planned.name}: SHA-256 {digest} does not match the listed {self.planned.sha256}"
            )
        if size != self.planned.size:
            raise IntegrityError(f"{self.planned.name}: {size} bytes, the listing said {self.planned.size}")


def progress(
    chunks: Iterator[bytes],
    name: str,
    total: int | None,
    *,
    every: float = PROGRESS_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[bytes]:
    """The chunks as they come, logging `transfer progress` (bytes, percent, MB/s) every `every` seconds."""
    started = last = monotonic()
    done = 0
    for chunk in chunks:
        done += len(chunk)
        now = monotonic()
        if now - last >= every:
            last = now
            extra: dict[str, Any] = {
                "file": name,
                "bytes": done,
                "mb_per_s": round(done / 1e6 / (now - started), 2),
            }
            if total:
                extra["percent"] = round(100 * done / total, 1)
            log.info("transfer progress", extra=extra)
        yield chunk


def _read_small(chunks: Iterator[bytes], name: str) -> bytes:
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > SMALL_FILE_LIMIT:
            raise IntegrityError(f"{name} is larger than {SMALL_FILE_LIMIT} bytes; not a manifest")
    return bytes(data)
