"""Fetching: a file's bytes copied from Fusion into the staging area, part by part, resumable.

Each part is uploaded as it arrives. The parts done, the offset and the SHA-256 state are kept in the file
record, so when an invocation's budget is spent the next one goes on from that offset (a ranged download)
instead of starting over. Before it stops, the bytes Fusion is already sending are staged too (a download
that can `settle` ends at the next part boundary instead of being cut off), so Fusion serves each byte
once. The saved SHA-256 state is sealed with its own checksum and must have hashed
exactly `offset` bytes: damaged, it is refused (IntegrityError: the attempt fails, the file starts over).
Once every byte is there, the size and the listed SHA-256 are checked and only then is the upload
committed: the staged copy is what the units unpack, and it is known to be the file (its ETag is kept, and
every later read of it is conditional on that ETag).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from fusion_extract.chain.budget import Budget
from fusion_extract.chain.ledger.records import Fetch
from fusion_extract.chain.transfer.archive_source import ArchiveSource
from fusion_extract.chain.transfer.writing import HeldBytes, Part, memory_bound
from fusion_extract.errors import IntegrityError, RangeIgnoredError
from fusion_extract.models import OutputFile, SourceVersion
from fusion_extract.ports import ObjectStore
from fusion_extract.resumable import Sha256, seal, unseal

log = logging.getLogger(__name__)
PARTS_PER_SAVE = 16  # progress is saved at least this often, so a killed invocation loses little


@dataclass
class Fetcher:
    store: ObjectStore
    source: ArchiveSource
    part_size: int
    parallelism: int
    budget: Budget
    save: Callable[[Fetch], None]  # keeps progress in the file record

    def fetch(self, file: OutputFile, target: str, progress: Fetch) -> Fetch:
        """Go on from `progress`: done (`sha256` set), or as far as the budget allowed.

        A server that answers a resume with the whole file gets one whole read, from the start and not
        stopped by the budget (it could not go on anyway); answering that one's resume the same way fails
        the attempt."""
        if progress.done:
            return progress
        try:
            return self._fetch(file, target, progress)
        except RangeIgnoredError as exc:
            if progress.whole:
                raise
            log.warning("the server ignores Range; one whole read instead", extra={"reason": str(exc)})
            self.store.abort_uploads(target)
            fresh = Fetch(progress.attempt, "", whole=True)
            self.save(fresh)
            return self._fetch(file, target, fresh)

    def _fetch(self, file: OutputFile, target: str, progress: Fetch) -> Fetch:
        if progress.offset == 0 and file.size < self.part_size:
            return self._whole(file, target, progress)
        if not progress.upload_id:
            # Saved with the first progress, not before: an invocation that dies sooner leaves nothing to go
            # on from, and the file's next attempt aborts the upload it left open (steps.transfer).
            progress = replace(progress, upload_id=self.store.start_upload(target))
        digest = _resumed(file, progress)
        parts = list(progress.parts)
        offset = progress.offset
        version = SourceVersion(progress.source_etag, progress.source_modified)
        chunks = self.source.open(file, offset, version)
        settling = False  # the budget is spent: what is on its way is staged, then the fetch stops
        # Parts in flight and the one being filled, in buffers filled again once uploaded (writing.py)
        held = HeldBytes(memory_bound(self.part_size, self.parallelism), self.parallelism + 1)
        try:
            with ThreadPoolExecutor(self.parallelism, thread_name_prefix="fetch") as pool:
                flight: list[Future[tuple[int, str]]] = []
                for part in Part(self.part_size, held).cut(chunks):
                    digest.update(part)
                    offset += len(part)
                    number = len(parts) + len(flight) + 1
                    flight.append(pool.submit(self._put, target, progress.upload_id, number, part, held))
                    del part
                    if len(flight) >= self.parallelism:
                        parts.append(flight.pop(0).result())
                    if offset < file.size and not settling and self.budget.spent() and not progress.whole:
                        settling = True
                        settle = getattr(chunks, "settle", None)  # a stream that can end at a part boundary
                        if settle is None or not settle(self.part_size):
                            break
                    if offset < file.size and number - len(progress.parts) >= PARTS_PER_SAVE:
                        parts.extend(f.result() for f in flight)
                        flight.clear()
                        progress = self._saved(progress, offset, parts, digest, version)
                parts.extend(f.result() for f in flight)
        finally:
            close = getattr(chunks, "close", None)  # a generator's connection is released now, not at GC
            if close is not None:
                close()
        if settling and offset < file.size:
            return self._saved(progress, offset, parts, digest, version)
        sha256 = _verify(file, offset, digest.hexdigest())
        info = self.store.commit_upload(target, progress.upload_id, parts, offset)
        return replace(progress, offset=offset, parts=(), hashing="", sha256=sha256, etag=info.etag)

    def _whole(self, file: OutputFile, target: str, progress: Fetch) -> Fetch:
        """A file under one part: one read, one put."""
        data = bytearray()
        for chunk in self.source.open(file, 0, SourceVersion()):
            data += chunk
            if len(data) > file.size:
                break
        digest = Sha256()
        digest.update(data)
        sha256 = _verify(file, len(data), digest.hexdigest())
        info = self.store.upload_stream(target, [bytes(data)])
        return replace(progress, offset=len(data), sha256=sha256, etag=info.etag)

    def _saved(
        self,
        progress: Fetch,
        offset: int,
        parts: list[tuple[int, str]],
        digest: Sha256,
        version: SourceVersion,
    ) -> Fetch:
        """The progress so far, saved in the file record: the next invocation goes on from `offset`."""
        saved = replace(
            progress,
            offset=offset,
            parts=tuple(parts),
            hashing=seal(digest.state()).hex(),
            source_etag=version.etag,
            source_modified=version.last_modified,
        )
        self.save(saved)
        return saved

    def _put(
        self, target: str, upload_id: str, number: int, part: memoryview, held: HeldBytes
    ) -> tuple[int, str]:
        try:
            return number, self.store.upload_part(target, upload_id, number, part)
        finally:
            held.give(part)  # only now: a retry of the part reads it again


def _resumed(file: OutputFile, progress: Fetch) -> Sha256:
    """The SHA-256 of the first `progress.offset` bytes, from the state saved with them, checked first."""
    if not progress.hashing and not progress.offset:
        return Sha256()
    what = f"{file.name}: the saved SHA-256 state"
    digest = Sha256(unseal(bytes.fromhex(progress.hashing), what))
    if digest.length != progress.offset:
        raise IntegrityError(f"{what} hashed {digest.length} bytes, not the {progress.offset} fetched")
    return digest


def _verify(file: OutputFile, size: int, sha256: str) -> str:
    if size != file.size:
        raise IntegrityError(f"{file.name}: {size} bytes, the listing said {file.size}")
    if file.sha256 is not None and sha256 != file.sha256.lower():
        raise IntegrityError(f"{file.name}: SHA-256 {sha256} does not match the listed {file.sha256.lower()}")
    return sha256
