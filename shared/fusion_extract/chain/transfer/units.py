"""Unpacking an archive in units: runs of consecutive members, each unit one invocation at a time.

Members are read by random access from the staged (already verified) archive, inflated, checked (CRC-32,
size) and uploaded into the staging area, each in one PutObject or in parts as writing.py decides; nothing
is visible until every unit is done (landing promotes them then). Units of one archive run in parallel
invocations. A unit whose invocation's budget is spent stops between members, or inside a member written in
parts at a deflate block boundary: a checkpoint object keeps the inflater's state, the upload's parts
and the bytes not yet in a part, and the next invocation goes on from there. Every invocation makes
progress (a member, or a part of one) before it may stop. A checkpoint is sealed with its SHA-256: one
that does not match is never used, and its member starts over.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain

from fusion_extract.chain.budget import Budget
from fusion_extract.chain.ledger.records import StagedMember, Unit
from fusion_extract.chain.transfer.archive import Entry, MemberPoint, MemberStream, RangeReader
from fusion_extract.chain.transfer.kinds import MemberKind, member_kind
from fusion_extract.chain.transfer.layout import staged_member, unit_checkpoint
from fusion_extract.chain.transfer.manifest import parse_metadata
from fusion_extract.chain.transfer.writing import SURE_RATE, HeldBytes, Part, Shape, held_for, read_whole
from fusion_extract.errors import ConflictError, IntegrityError, NotFoundError
from fusion_extract.ports import ObjectStore
from fusion_extract.resumable import seal, unseal

log = logging.getLogger(__name__)
LEAST_UNIT_PARTS = 4  # a unit of fewer uncompressed bytes than this many parts is not worth an invocation
MEMBER_WORK = 256 * 2**10  # what staging and promoting one member costs beyond its bytes, as bytes of work
# What unpacking costs in wall time, from `make bench` (docs/performance.md, 2026-12-06: ours warm on
# loopback, 8 to 17 s per GiB of output under load; 200 members about 0.5 s more than one against the
# emulator, where Object Storage's PutObject takes tens of ms, UPLOAD_PARALLELISM at once beside the
# inflating): an estimate, on the slow side, only to choose between one invocation and parallel ones.
UNPACK_SECONDS_PER_GIB = 12.0
MEMBER_SECONDS = 0.01
# A unit handed to an invocation of its own starts this much later: a message delivered, an instance
# started ("several seconds" when cold, docs/oci-platform) and its imports; parallel units must win more.
HAND_OFF_SECONDS = 5.0
_HEADER = 4  # bytes of a checkpoint's header length


def split(entries: list[Entry], fanout: int, least: int) -> tuple[Unit, ...]:
    """Consecutive runs of about equal work: at most `fanout`, none under `least` bytes of work unless it
    is the only one. A member's work is its uncompressed size and MEMBER_WORK for its requests, so an
    archive of many tiny members is spread over parallel invocations too."""
    work = [entry.size + MEMBER_WORK for entry in entries]
    total = sum(work)
    count = max(1, min(fanout, len(entries), total // least))
    units: list[Unit] = []
    first = running = 0
    for position, size in enumerate(work):
        running += size
        if len(units) < count - 1 and running >= total * (len(units) + 1) / count:
            units.append(Unit(first, position + 1 - first))
            first = position + 1
    units.append(Unit(first, len(entries) - first))
    return tuple(units)


def plan(
    entries: list[Entry], fanout: int, least: int, remaining: float, fetching: float = 0.0
) -> tuple[Unit, ...]:
    """The units to unpack the archive in: one, in the invocation that fetched it (no hand-off, no new
    instance), when its work fits in the `remaining` seconds and parallel units would not save more than
    they cost to start; else `split`'s (each unit then has a budget of its own). `fetching`: the seconds of
    a fetch still to come, which one unit is unpacked beside (overlap.py) and parallel units wait for."""
    units = split(entries, fanout, least)
    whole = unpack_seconds(entries)
    longest = max(unpack_seconds(entries[unit.first : unit.first + unit.count]) for unit in units)
    if len(units) > 1 and whole <= remaining and whole - longest <= HAND_OFF_SECONDS + fetching:
        return (Unit(0, len(entries)),)
    return units


def unpack_seconds(entries: list[Entry]) -> float:
    """About how long unpacking these members takes (UNPACK_SECONDS_PER_GIB, MEMBER_SECONDS)."""
    size = sum(entry.size for entry in entries)
    return size / 2**30 * UNPACK_SECONDS_PER_GIB + len(entries) * MEMBER_SECONDS


@dataclass(frozen=True)
class Checkpoint:
    """Where a large member's unpacking stopped: its open upload, its parts, and the bytes not yet in one."""

    member: int  # the entry's index
    upload_id: str
    parts: tuple[tuple[int, str], ...]
    point: MemberPoint
    pending: bytes

    def to_bytes(self) -> bytes:
        point = self.point.to_bytes()
        header = json.dumps(
            {
                "v": 2,
                "member": self.member,
                "upload_id": self.upload_id,
                "parts": [list(part) for part in self.parts],
                "point": len(point),
            }
        ).encode()
        return seal(len(header).to_bytes(_HEADER, "big") + header + point + self.pending)

    @classmethod
    def from_bytes(cls, sealed: bytes) -> Checkpoint:
        data = unseal(sealed, "unit checkpoint")
        try:
            size = int.from_bytes(data[:_HEADER], "big")
            header = json.loads(data[_HEADER : _HEADER + size])
            start = _HEADER + size
            end = start + int(header["point"])
            parts = tuple((int(n), str(e)) for n, e in header["parts"])
            if header["v"] != 2 or end > len(data):
                raise ValueError("unknown version or short")
            point = MemberPoint.from_bytes(data[start:end])
            return cls(int(header["member"]), str(header["upload_id"]), parts, point, data[end:])
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"unit checkpoint is unreadable: {exc}") from None


def staged_reader(store: ObjectStore, name: str, etag: str | None) -> RangeReader:
    """Ranged reads of the staged archive, each conditional on the ETag its fetch committed: a copy replaced
    since is an IntegrityError (the attempt fails and the file is fetched again), never unpacked. (A fetch
    recorded before ETags were kept has none: its reads are unconditional.)"""

    def read(start: int, end: int) -> Iterator[bytes]:
        try:
            return store.read_range(name, start, end, if_match=etag)
        except ConflictError:
            raise IntegrityError(f"the staged archive {name} changed since it was fetched") from None

    return read


@dataclass
class UnitRun:
    """Unpacks units of one staged archive into `folder` (the file attempt's staging folder)."""

    store: ObjectStore
    archive: str  # the staged archive's object name
    etag: str | None  # its ETag, as its fetch committed it
    folder: str
    entries: list[Entry]  # the unit's members, in order
    part_size: int
    parallelism: int
    budget: Budget
    source: RangeReader | None = None  # where the archive is read: the staged copy unless given
    # The parallel uploads its member bytes held are bounded for (writing.memory_bound; the shapes follow):
    # fewer than `parallelism` beside a fetch, which holds its own parts. Default: `parallelism`.
    memory_for: int | None = None
    alive: Callable[[], None] = lambda: None  # called at each member or part on its way (keeps the claim)
    # The unit's first unpacking, beside the fetch that began its file attempt: nothing of it can have
    # paused before, so there is no checkpoint to look for.
    fresh: bool = False
    held: HeldBytes = field(init=False)  # the member bytes held for upload, in buffers filled again

    def __post_init__(self) -> None:
        self.held = held_for(self.part_size, self.memory_for or self.parallelism, self.parallelism)

    def run(self, index: int, unit: Unit) -> tuple[Unit, bool]:
        """Unpack what remains of unit `index`: (the unit with every member staged so far, done?)."""
        todo = self.entries[len(unit.staged) :]
        if not todo:
            return unit, True
        archive = self.source or staged_reader(self.store, self.archive, self.etag)
        read = _Cursor(archive, todo[0].offset, todo[-1].limit)
        staged: list[Future[StagedMember]] = [_ready(member) for member in unit.staged]
        metadata = unit.metadata
        memory_for = self.memory_for or self.parallelism
        held = self.held
        done = True
        with read, ThreadPoolExecutor(self.parallelism, thread_name_prefix="unpack") as pool:
            progressed = False
            for entry in todo:
                if progressed and self.budget.spent():
                    done = False
                    break
                shape = Shape.of(entry.size, self.part_size, memory_for, self.budget.seconds)
                # Only a member that may stop mid-way has a checkpoint, and only the first one to do: an
                # invocation that paused inside a member left the unit's record pointing at it.
                may_resume = entry is todo[0] and not shape.whole and not self.fresh
                resumed = self._checkpoint(index, entry) if may_resume else None
                if resumed is None and shape.whole:
                    future, content = self._whole(read, entry, pool, held)
                    metadata = metadata or _metadata(entry, content)
                    staged.append(future)
                else:
                    large = self._large(read, index, entry, pool, Part(shape.part, held), resumed)
                    if large is None:
                        done = False
                        break
                    staged.append(_ready(large))
                progressed = True
                self.alive()
            members = tuple(future.result() for future in staged)
        return unit.but(staged=members, metadata=metadata), done

    def member_name(self, path: str) -> str:
        return staged_member(self.folder, path)

    def _whole(
        self, read: RangeReader, entry: Entry, pool: ThreadPoolExecutor, held: HeldBytes
    ) -> tuple[Future[StagedMember], bytes | None]:
        """One member read whole into a buffer of the bound and verified, then put in one request by the
        pool, which gives the buffer back. With it, the member's content when it is a JSON kept whole (for
        its metadata)."""
        buffer = held.take(entry.size)
        try:
            stream = MemberStream(read, entry)
            box = [read_whole(stream, buffer)]
            member = stream.result()  # verified, its content read (a JSON it cannot read is refused)
        except BaseException:
            held.give(buffer)
            raise

        def put() -> StagedMember:
            data = box.pop()
            try:
                info = self.store.put_whole(self.member_name(entry.path), data)
            finally:
                held.give(data)  # only now: a retry of the put reads it again
            return StagedMember(member, info.etag, info.md5)

        return pool.submit(put), stream.json

    def _large(
        self,
        read: RangeReader,
        index: int,
        entry: Entry,
        pool: ThreadPoolExecutor,
        part: Part,
        resumed: Checkpoint | None,
    ) -> StagedMember | None:
        """One member as a multipart upload that may stop and go on later."""
        name = self.member_name(entry.path)
        if resumed is None:
            upload_id, parts, point, pending = self.store.start_upload(name), [], None, b""
        else:
            upload_id, parts = resumed.upload_id, list(resumed.parts)
            point, pending = resumed.point, resumed.pending
        uploaded = [0]
        # A member the budget is sure to finish is never asked to stop, so it takes the fast inflater.
        sure = entry.size - (point.produced if point else 0) <= self.budget.remaining() * SURE_RATE
        stop = None if sure else lambda: uploaded[0] > 0 and self.budget.spent()
        stream = MemberStream(read, entry, point=point, stop=stop)
        flight: list[Future[tuple[int, str]]] = []

        def put(number: int, box: list[memoryview]) -> tuple[int, str]:
            data = box.pop()
            try:
                return number, self.store.upload_part(name, upload_id, number, data)
            finally:
                part.held.give(data)  # only now: a retry of the part reads it again

        tail: memoryview | None = None  # the bytes short of a part when the stream ends or stops
        rest = b""  # those bytes, kept in the checkpoint when it stopped
        try:
            for data in part.cut(chain([pending], stream)):
                if len(data) < part.size:
                    tail = data
                    break
                flight.append(pool.submit(put, len(parts) + len(flight) + 1, [data]))
                del data
                uploaded[0] += 1
                if len(flight) >= self.parallelism:
                    parts.append(flight.pop(0).result())
                self.alive()
            parts.extend(future.result() for future in flight)
            if stream.stopped is None and tail is not None:
                box, tail = [tail], None  # put gives it back, whatever happens
                parts.append(put(len(parts) + 1, box))
            elif tail is not None:
                rest = bytes(tail)
        finally:
            if tail is not None:
                part.held.give(tail)
        if stream.stopped is not None:
            checkpoint = Checkpoint(entry.index, upload_id, tuple(parts), stream.stopped, rest)
            self.store.put_bytes(self._checkpoint_name(index), checkpoint.to_bytes())
            extra = {"unit": index, "member": entry.path, "bytes": stream.stopped.produced}
            log.info("unit paused", extra=extra)
            return None
        member = stream.result()
        info = self.store.commit_upload(name, upload_id, parts, member.size)
        return StagedMember(member, info.etag, info.md5)

    def _checkpoint(self, index: int, entry: Entry) -> Checkpoint | None:
        try:
            data, _ = self.store.get_bytes(self._checkpoint_name(index))
        except NotFoundError:
            return None
        try:
            checkpoint = Checkpoint.from_bytes(data)
        except IntegrityError as exc:
            log.warning("unit checkpoint ignored; the member starts over", extra={"reason": str(exc)})
            return None
        # A checkpoint of another member is an older invocation's: the ledger is ahead of it.
        return checkpoint if checkpoint.member == entry.index else None

    def _checkpoint_name(self, index: int) -> str:
        return unit_checkpoint(self.folder, index)


class _Cursor:
    """Ranged reads of one object, served in order from one open stream when they follow one another (the
    members of a unit do): one request per unit, not one per member. A read that goes back opens its own."""

    def __init__(self, read: RangeReader, start: int, end: int) -> None:
        self._read = read
        self._position = start
        self._end = end
        self._chunks: Iterator[bytes] | None = None
        self._held = memoryview(b"")  # sliced without copying; each piece is copied once, as it goes

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *_: object) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def __call__(self, start: int, end: int) -> Iterator[bytes]:
        if not self._position <= start < end <= self._end:
            return self._read(start, end)
        return self._serve(start, end)

    def _serve(self, start: int, end: int) -> Iterator[bytes]:
        while self._position < end:
            if not self._held:
                if self._chunks is None:
                    self._chunks = self._read(self._position, self._end)
                self._held = memoryview(next(self._chunks, b""))
                if not self._held:
                    return  # the reader finds the bytes missing and says so
            if self._position < start:  # a gap between members (a data descriptor): skipped
                drop = min(len(self._held), start - self._position)
                self._held, self._position = self._held[drop:], self._position + drop
                continue
            take = min(len(self._held), end - self._position)
            piece, self._held = bytes(self._held[:take]), self._held[take:]
            self._position += take
            yield piece


def is_metadata(path: str) -> bool:
    """Fusion's metadata member (row counts per file): an archive holds one at most (Landing.entries)."""
    return member_kind(path) is MemberKind.METADATA


def _metadata(entry: Entry, data: bytes | None) -> dict[str, object] | None:
    if data is None or not is_metadata(entry.path):
        return None
    parsed = parse_metadata(data)
    return dataclasses.asdict(parsed) if parsed else None


def _ready(member: StagedMember) -> Future[StagedMember]:
    future: Future[StagedMember] = Future()
    future.set_result(member)
    return future
