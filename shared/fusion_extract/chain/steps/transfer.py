"""transfer: land one output file per invocation, and finish the run when its last file landed.

download (stream) -> SHA-256 and size checked on the fly -> streaming unzip -> each member staged under a
private per-attempt prefix -> only after the WHOLE archive verified are members promoted to the landing
folder. A bad archive leaves nothing visible. A file is claimed in the ledger first, so a duplicate
delivery skips it; a claim left by a crashed invocation goes stale and the sweep hands the file out again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fusion_extract import logging as jsonlog
from fusion_extract.chain import messages
from fusion_extract.chain.archive import Member, ZipLimits, unpack
from fusion_extract.chain.archive_source import BucketArchives
from fusion_extract.chain.deps import Deps
from fusion_extract.chain.finish import finish_if_complete
from fusion_extract.chain.layout import MANIFEST, SUCCESS
from fusion_extract.chain.manifest import parse_manifest
from fusion_extract.chain.messages import TransferRequest
from fusion_extract.chain.records import (
    FileRecord,
    FileState,
    LandedMember,
    PlannedFile,
    Run,
    RunState,
    Versioned,
)
from fusion_extract.chain.runs import backoff, end_run, find_run, logged
from fusion_extract.errors import (
    ConflictError,
    FusionExtractError,
    IntegrityError,
    UnsafeInputError,
)
from fusion_extract.models import OutputFile

log = logging.getLogger(__name__)

Outcome = dict[str, Any]
SMALL_FILE_LIMIT = 4 * 2**20  # a .mf manifest is read into memory up to this size
RESERVED = {MANIFEST, SUCCESS}  # the run folder's own files; `raw/` too


def transfer(message: TransferRequest, deps: Deps) -> Outcome:
    current = find_run(deps, message.run_id, "transfer")
    if current is None:
        return {"outcome": "unknown_run", "run_id": message.run_id}
    run = current.value
    with logged(run):
        if run.state is not RunState.TRANSFERRING:
            return {"outcome": "stale", "run_id": run.run_id, "state": run.state.value}
        planned = {f.name: f for f in run.files}
        unknown = [name for name in message.files if name not in planned]
        if unknown:
            log.warning("files not in the run's plan ignored", extra={"files": unknown})
        names = [name for name in message.files if name in planned]
        outcome = _land_next(deps, run, planned, names)
        finish_if_complete(deps, deps.ledger.load_run(run.run_id))
        return outcome


def _land_next(deps: Deps, run: Run, planned: dict[str, PlannedFile], names: list[str]) -> Outcome:
    """Land the first file of the batch that needs it; hand the rest of the batch on."""
    now = deps.clock.now()
    stale_after = deps.settings.step_overdue_seconds
    for index, name in enumerate(names):
        current = deps.ledger.load_file(run.run_id, name)
        record = current.value
        claimable = (record.state is FileState.PENDING and now >= record.next_at) or (
            record.state is FileState.TRANSFERRING
            and record.claimed_at is not None
            and (now - record.claimed_at).total_seconds() > stale_after
        )
        if not claimable:
            continue
        with jsonlog.bind(file=name):
            outcome = _land_file(deps, run, planned[name], current)
        rest = names[index + 1 :]
        if rest and outcome.get("outcome") != "failed":
            deps.publisher.publish(
                deps.settings.transfer_topic_id, messages.transfer_message(run.run_id, rest)
            )
        return outcome
    return {"outcome": "nothing_to_do", "run_id": run.run_id}


def _land_file(deps: Deps, run: Run, planned: PlannedFile, current: Versioned[FileRecord]) -> Outcome:
    now = deps.clock.now()
    attempt = current.value.attempts + 1
    try:
        current = deps.ledger.save_file(
            current, current.value.but(state=FileState.TRANSFERRING, attempts=attempt, claimed_at=now)
        )
    except ConflictError:
        return {"outcome": "in_progress", "file": planned.name}
    log.info("transfer started", extra={"attempt": attempt, "size": planned.size})
    try:
        landed = _Lander(deps, run, planned, attempt).land()
    except (UnsafeInputError, ConflictError) as exc:
        return _give_up(deps, run, current, f"{planned.name}: {exc}")
    except FusionExtractError as exc:
        if attempt >= deps.settings.file_max_attempts:
            return _give_up(deps, run, current, f"{planned.name}: {exc} (after {attempt} attempts)")
        return _retry_later(deps, run, current, exc)
    elapsed = max((deps.clock.now() - now).total_seconds(), 1e-6)
    deps.ledger.save_file(current, landed.record(current.value))
    deps.ledger.mark_landed(run.run_id, planned.name)
    log.info(
        "file landed",
        extra={
            "members": len(landed.members),
            "bytes": landed.size,
            "mb_per_s": round(landed.size / elapsed / 1e6, 1),
        },
    )
    return {"outcome": "landed", "file": planned.name, "members": len(landed.members), "bytes": landed.size}


def _retry_later(deps: Deps, run: Run, current: Versioned[FileRecord], exc: FusionExtractError) -> Outcome:
    now = deps.clock.now()
    record = current.value
    due = now + backoff(deps.settings.file_retry_seconds, record.attempts)
    deps.ledger.save_file(current, record.but(state=FileState.PENDING, next_at=due, reason=str(exc)))
    log.warning("transfer failed; retry scheduled", extra={"reason": str(exc), "retry_at": due.isoformat()})
    if due <= now:
        deps.publisher.publish(
            deps.settings.transfer_topic_id, messages.transfer_message(run.run_id, [record.name])
        )
    return {"outcome": "retry_scheduled", "file": record.name, "reason": str(exc)}


def _give_up(deps: Deps, run: Run, current: Versioned[FileRecord], reason: str) -> Outcome:
    deps.ledger.save_file(current, current.value.but(state=FileState.FAILED, reason=reason))
    end_run(deps, deps.ledger.load_run(run.run_id), RunState.FAILED, reason)
    return {"outcome": "failed", "file": current.value.name, "reason": reason}


@dataclass
class _Landed:
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
class _Lander:
    deps: Deps
    run: Run
    planned: PlannedFile
    attempt: int

    def land(self) -> _Landed:
        name = self.planned.name
        if name.lower().endswith(".zip"):
            return self._land_archive()
        if name.lower().endswith(".mf"):
            return self._land_manifest()
        return self._land_plain()

    @property
    def _staging(self) -> str:
        return self.deps.layout.staging(self.run, self.planned.name, self.attempt)

    @property
    def _file(self) -> OutputFile:
        assert self.run.job_id is not None
        p = self.planned
        return OutputFile(self.run.job_id, p.name, p.size, p.sha256, None, p.url)

    def _source(self) -> Iterator[bytes]:
        return self.deps.archives.open(self._file)

    def _land_archive(self) -> _Landed:
        deps, layout, store = self.deps, self.deps.layout, self.deps.store
        chunks = self._source()
        raw_staged = f"{self._staging}/raw/{self.planned.name}"
        if deps.settings.keep_raw:
            store.upload_stream(raw_staged, chunks, content_type="application/zip")
            # One download: the staged copy is now an archive in a bucket, unpacked and verified below.
            chunks = BucketArchives(store).open(dataclasses.replace(self._file, url=raw_staged))

        def stage(path: str, member: Iterator[bytes]) -> None:
            if path in RESERVED or path.startswith("raw/"):
                raise UnsafeInputError(
                    f"{self.planned.name}: member {path!r} would take a name the run reserves"
                )
            store.upload_stream(f"{self._staging}/members/{path}", member)

        s = deps.settings
        result = unpack(
            chunks,
            expected_sha256=self.planned.sha256,
            expected_size=self.planned.size,
            limits=ZipLimits(s.zip_max_entries, s.zip_max_bytes, s.zip_max_ratio),
            stage=stage,
        )
        # The whole archive verified: only now does any of it become visible.
        for member in result.members:
            store.promote(f"{self._staging}/members/{member.path}", layout.member(self.run, member.path))
        if deps.settings.keep_raw:
            store.promote(raw_staged, layout.raw(self.run, self.planned.name))
        metadata = dataclasses.asdict(result.metadata) if result.metadata else None
        return _Landed(result.archive_sha256, result.archive_size, list(result.members), metadata=metadata)

    def _land_manifest(self) -> _Landed:
        data = _read_small(self._source(), self.planned.name)
        digest = self._verify(data)
        manifest = parse_manifest(data.decode("utf-8", errors="replace"))
        staged = f"{self._staging}/{self.planned.name}"
        self.deps.store.put_bytes(staged, data, content_type="text/plain")
        self.deps.store.promote(staged, self.deps.layout.member(self.run, self.planned.name))
        return _Landed(digest, len(data), manifest=manifest)

    def _land_plain(self) -> _Landed:
        """An output that is not an archive: landed as it is, verified the same way."""
        hasher, size = hashlib.sha256(), [0]

        def counted() -> Iterator[bytes]:
            for chunk in self._source():
                hasher.update(chunk)
                size[0] += len(chunk)
                yield chunk

        staged = f"{self._staging}/{self.planned.name}"
        self.deps.store.upload_stream(staged, counted())
        self._check(hasher.hexdigest(), size[0])
        self.deps.store.promote(staged, self.deps.layout.member(self.run, self.planned.name))
        member = Member(self.planned.name, size[0], hasher.hexdigest(), None)
        return _Landed(hasher.hexdigest(), size[0], [member])

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


def _read_small(chunks: Iterator[bytes], name: str) -> bytes:
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > SMALL_FILE_LIMIT:
            raise IntegrityError(f"{name} is larger than {SMALL_FILE_LIMIT} bytes; not a manifest")
    return bytes(data)
