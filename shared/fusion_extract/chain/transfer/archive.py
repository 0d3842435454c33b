"""Unpack one output ZIP by random access, member by member, each member resumable in another process.

The raw archive is staged in the bucket first and read back by byte ranges (`RangeReader`), so unpacking a
member can stop near an invocation's time budget and go on elsewhere from a `MemberPoint`.

THE CONTRACT: `read_directory` (zipdir) checks every rule the central directory can answer before any member
is read: placement, names, duplicates, symlinks, encryption, compression method, entry count, the declared
total and ratios, and that no two entries (nor an entry and the directory) share bytes. A `MemberStream`
checks what only the member's bytes can tell: its local header agrees with the directory, it never yields
more than its declared size, and at its end its size and CRC-32 are the declared ones and its compressed
data ends exactly at its declared length. A member is good only once its stream was read to its end; the
caller makes nothing visible before every member was.
"""

from __future__ import annotations

import struct
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from fusion_extract.chain.ledger.records import Member
from fusion_extract.chain.transfer.items import json_items
from fusion_extract.chain.transfer.kinds import MemberKind, member_kind
from fusion_extract.chain.transfer.zipdir import (
    ENCRYPTED_FLAGS,
    LOCAL_HEADER,
    Entry,
    RangeReader,
    ZipLimits,
    member_path,
    read_directory,
    refusal,
)
from fusion_extract.errors import IntegrityError
from fusion_extract.fast_inflate import IsalInflater, fast_inflater
from fusion_extract.resumable import InflatePoint, Inflater, Sha256, crc32

__all__ = [
    "JSON_COUNT_LIMIT",
    "Entry",
    "MemberPoint",
    "MemberStream",
    "RangeReader",
    "ZipLimits",
    "member_path",
    "read_directory",
]

JSON_COUNT_LIMIT = 4 * 1024 * 1024  # JSON members declared up to this size are kept whole, to count items
DRAIN_LIMIT = 64 * 1024  # what is left of a ranged read after a member is read through, rather than dropped
# Members ISA-L inflates from this size are hashed in a thread beside: 500 MiB in one member, inflated in
# 0.7x the wall for 1.1x the CPU; members of 2.5 MiB took 1.5x the wall (a thread and its hand-offs each).
HASH_BESIDE_FROM = 32 * 1024 * 1024
HASH_AHEAD = 8  # pieces of output (PIECE each: 2 MiB) handed to that thread and not yet hashed, at most
_DESCRIPTOR_FLAG = 0x0008  # crc and sizes follow the data; the local header holds zeros
_ZIP64_SIZE = 0xFFFFFFFF  # the real size is in a zip64 extra field


_POINT = struct.Struct("<BBQLQH")  # version, flags, produced, crc, newlines, sha256 state length
_POINT_VERSION = 1
_CSV, _QUOTED, _ENDS_WITH_NEWLINE, _INFLATE = 1, 2, 4, 8


@dataclass(frozen=True)
class MemberPoint:
    """Where one member's unpacking stopped: enough to go on in another process, and nothing to re-read."""

    produced: int  # uncompressed bytes delivered before the point
    crc: int  # the CRC-32 of those bytes (zlib.crc32)
    sha256: bytes  # Sha256 state after those bytes
    newlines: int | None = None  # CSV row counting (_CsvRows); None when the member is not a .csv
    quoted: bool = False
    ends_with_newline: bool = True
    inflate: InflatePoint | None = None  # None for a stored member (its compressed position is `produced`)

    def __post_init__(self) -> None:
        inflate_off = self.inflate is not None and self.inflate.produced != self.produced
        if self.produced < 0 or not 0 <= self.crc <= 0xFFFFFFFF or (self.newlines or 0) < 0 or inflate_off:
            raise IntegrityError("member point is corrupt: its counts disagree")

    def to_bytes(self) -> bytes:
        csv = self.newlines is not None
        flags = csv * _CSV | self.quoted * _QUOTED | self.ends_with_newline * _ENDS_WITH_NEWLINE
        flags |= (self.inflate is not None) * _INFLATE
        head = _POINT.pack(
            _POINT_VERSION, flags, self.produced, self.crc, self.newlines or 0, len(self.sha256)
        )
        return head + self.sha256 + (self.inflate.to_bytes() if self.inflate is not None else b"")

    @classmethod
    def from_bytes(cls, data: bytes) -> MemberPoint:
        """The point `to_bytes` wrote, or IntegrityError: anything else is refused, not guessed at."""
        if len(data) < _POINT.size:
            raise IntegrityError("member point is corrupt: too short")
        version, flags, produced, crc, newlines, length = _POINT.unpack_from(data)
        state, rest = data[_POINT.size : _POINT.size + length], data[_POINT.size + length :]
        if version != _POINT_VERSION or len(state) != length or bool(flags & _INFLATE) != bool(rest):
            raise IntegrityError("member point is corrupt: unknown version or wrong length")
        point = cls(
            produced,
            crc,
            state,
            newlines if flags & _CSV else None,
            bool(flags & _QUOTED),
            bool(flags & _ENDS_WITH_NEWLINE),
            InflatePoint.from_bytes(rest) if rest else None,
        )
        if point.to_bytes() != data:  # one encoding per point: stray bits are corruption
            raise IntegrityError("member point is corrupt: not in its canonical form")
        Sha256(state)  # refuses a state that is not one
        return point


class _HashBeside:
    """A member's SHA-256 taken in a thread beside the one that inflates it: OpenSSL (through ctypes) and
    ISA-L both let the interpreter's lock go, so hashing takes the other core instead of a fifth of the
    inflating thread's time. Pieces are hashed in order, at most HASH_AHEAD behind; `done` waits for them."""

    def __init__(self, sha256: Sha256) -> None:
        self._sha256 = sha256
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sha256")
        self._pending: deque[Future[None]] = deque()

    def update(self, piece: bytes) -> None:
        if len(self._pending) >= HASH_AHEAD:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._sha256.update, piece))

    def done(self) -> Sha256:
        """The hash, once every piece handed over is in it."""
        while self._pending:
            self._pending.popleft().result()
        self._pool.shutdown()
        return self._sha256

    def abandon(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class MemberStream:
    """One member's uncompressed bytes, verified as they flow; stoppable and resumable from a MemberPoint.

    Iterate it once. When `stop()` answers True at a resumable boundary (deflate: a block boundary; stored:
    between chunks), iteration ends early and `stopped` holds the point to resume from, in a new MemberStream
    with the same entry. `stop` is never asked for a JSON member kept whole (`json`): it is small.

    Without `stop` (a member the caller is sure to finish) and from the member's start, a deflated member
    is inflated by the fastest inflater, which cannot stop (fast_inflate); else by the resumable one.
    `inflater` names the one used ("isal", "resumable"), once iteration began; None for a stored member.
    `hashed_beside`: the SHA-256 of a member ISA-L inflates, from HASH_BESIDE_FROM bytes, is taken in a
    thread beside (`_HashBeside`); a member that may stop keeps its hash in this thread (its state is saved).
    """

    def __init__(
        self,
        read: RangeReader,
        entry: Entry,
        *,
        point: MemberPoint | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.entry = entry
        self.stopped: MemberPoint | None = None
        self.inflater: str | None = None
        self.json: bytes | None = None  # the whole member, when a .json of at most JSON_COUNT_LIMIT bytes
        self._read = read
        self._point = point
        self._started = self._done = False
        _check_point(point, entry)
        self._produced = point.produced if point else 0
        self._crc = point.crc if point else 0
        self._crc32: Callable[[bytes, int], int] | None = crc32()  # None: the inflater computes it
        self._hash = Sha256(point.sha256 if point else None)
        self._beside: _HashBeside | None = None
        self._digest = ""  # the SHA-256 of the whole member, once read to its end
        kind = member_kind(entry.path)
        self._csv = _csv_rows(point) if kind is MemberKind.CSV else None
        keep = (
            kind in (MemberKind.JSON, MemberKind.METADATA)
            and entry.size <= JSON_COUNT_LIMIT
            and point is None
        )
        self._json: bytearray | None = bytearray() if keep else None
        self._stop = stop if self._json is None else None

    def __iter__(self) -> Iterator[bytes]:
        if self._started:
            raise RuntimeError(f"archive entry {self.entry.path!r} is being read already")
        self._started = True
        source, position = self._open()
        try:
            left = self.entry.compressed - position
            data = source.pieces(left)
            yield from (
                self._stored(data) if self.entry.method == zipfile.ZIP_STORED else self._deflated(data, left)
            )
        except BaseException:
            source.abort()
            if self._beside is not None:
                self._beside.abandon()
            raise
        source.close()
        if self.stopped is None:
            self._finish()

    @property
    def hashed_beside(self) -> bool:
        return self._beside is not None

    def _open(self) -> tuple[_Source, int]:
        """The ranged read of the data from where this stream starts, once the local header checked out."""
        entry, point = self.entry, self._point
        where = f"at entry {entry.path!r}"
        header_end = entry.offset + LOCAL_HEADER.size + len(entry.raw_name)
        source = _Source(self._read, entry.offset, entry.limit if point is None else header_end, where)
        try:
            extra = _local_header(source, entry)
            start = header_end + extra
            if start + entry.compressed > entry.limit:
                raise refusal(entry.raw_name, "overlapping entries")
            if point is None:  # one ranged read for both: the header, then the data
                source.skip(extra)
                return source, 0
        except BaseException:
            source.abort()
            raise
        source.close()
        position = point.inflate.consumed if point.inflate is not None else point.produced
        return _Source(self._read, start + position, entry.limit, where), position

    def result(self) -> Member:
        """The member as landed: only once its stream was read to its end."""
        if not self._done:
            raise RuntimeError(f"archive entry {self.entry.path!r} was not read to its end")
        rows = self._csv.rows if self._csv is not None else _json_items(self.json, self.entry.path)
        return Member(self.entry.path, self.entry.size, self._digest, rows)

    def _stored(self, data: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in data:
            self._take(chunk)
            yield chunk
            if self._produced < self.entry.size and self._stop is not None and self._stop():
                self.stopped = self._mark(None)
                return

    def _deflated(self, data: Iterator[bytes], left: int) -> Iterator[bytes]:
        """Inflate the `left` compressed bytes of `data`; the deflate stream must end exactly with them."""
        path = self.entry.path
        with self._inflater() as inflater:
            self.inflater = inflater.kind
            if inflater.kind == "isal" and self.entry.size >= HASH_BESIDE_FROM:
                self._beside = _HashBeside(self._hash)  # its pieces are bytes of their own: safe to keep
            if inflater.crc is not None:
                self._crc32 = None  # the inflater computes the CRC-32 of what it writes
            for chunk in data:
                left -= len(chunk)
                pieces = inflater.feed(chunk, self._stop)
                while (out := _next_piece(pieces, path)) is not None:
                    self._take(out)
                    yield out
                if inflater.stopped is not None:
                    self.stopped = self._mark(inflater.stopped)
                    return
                if inflater.finished:
                    break  # what is left is not read: it is refused below
            if not inflater.finished:
                raise IntegrityError(f"archive entry {path!r} is truncated: its deflate stream goes on")
            if inflater.unused or left:
                raise IntegrityError(f"archive entry {path!r}: data after its deflate stream's end")
            if inflater.crc is not None:
                self._crc = inflater.crc

    def _inflater(self) -> Inflater | IsalInflater:
        """The resumable inflater for a member that may stop or goes on from a point; else the fastest."""
        point = self._point
        if self._stop is None and point is None:
            return fast_inflater()
        return Inflater(point.inflate if point is not None else None)

    def _take(self, chunk: bytes) -> None:
        if self._produced + len(chunk) > self.entry.size:
            path, size = self.entry.path, self.entry.size
            raise IntegrityError(f"archive entry {path!r} expands beyond its declared size of {size} bytes")
        self._produced += len(chunk)
        if self._crc32 is not None:
            self._crc = self._crc32(chunk, self._crc)
        if self._beside is not None:
            self._beside.update(chunk)
        else:
            self._hash.update(chunk)
        if self._csv is not None:
            self._csv.feed(chunk)
        if self._json is not None:
            self._json += chunk

    def _mark(self, inflate: InflatePoint | None) -> MemberPoint:
        done, csv = (self._produced, self._crc, self._hash.state()), self._csv
        if csv is None:
            return MemberPoint(*done, inflate=inflate)
        return MemberPoint(*done, csv.newlines, csv.quoted, csv.ends_with_newline, inflate)

    def _finish(self) -> None:
        entry = self.entry
        self._digest = (self._beside.done() if self._beside is not None else self._hash).hexdigest()
        if self._produced != entry.size:
            produced, size = self._produced, entry.size
            raise IntegrityError(
                f"archive entry {entry.path!r} inflates to {produced} bytes, not {size} declared"
            )
        if self._crc != entry.crc:
            raise IntegrityError(f"archive entry {entry.path!r} fails its CRC-32 check")
        self.json = bytes(self._json) if self._json is not None else None
        self._done = True


def _next_piece(pieces: Iterator[bytes], path: str) -> bytes | None:
    try:
        return next(pieces, None)
    except IntegrityError as exc:  # the inflater's: corrupt deflate data
        raise IntegrityError(f"archive entry {path!r} is corrupt: {exc}") from None


def _check_point(point: MemberPoint | None, entry: Entry) -> None:
    if point is None:
        return
    deflated = entry.method == zipfile.ZIP_DEFLATED
    inflate = point.inflate
    fits = (
        point.produced < entry.size
        and (inflate is not None) == deflated
        and (inflate is None or inflate.consumed <= entry.compressed)
        and (point.newlines is not None) == (member_kind(entry.path) is MemberKind.CSV)
    )
    if not fits:
        raise IntegrityError(f"member point does not fit archive entry {entry.path!r}")


def _local_header(source: _Source, entry: Entry) -> int:
    """Read and check the entry's local header up to its name; the length of the extra field that follows."""
    fields = LOCAL_HEADER.unpack(source.take(LOCAL_HEADER.size))
    signature, _, flags, method, _, _, crc, compressed, size, name_length, extra_length = fields
    if signature != b"PK\x03\x04":
        raise IntegrityError(f"archive entry {entry.path!r} has no local header at offset {entry.offset}")
    disagree = "its local header disagrees with the central directory"
    if name_length != len(entry.raw_name) or source.take(name_length) != entry.raw_name:
        raise refusal(entry.raw_name, f"{disagree} (another name)")
    if flags & ENCRYPTED_FLAGS:
        raise refusal(entry.raw_name, "encrypted entry")
    if method != entry.method:
        raise refusal(entry.raw_name, f"{disagree} (compression method {method})")
    if not flags & _DESCRIPTOR_FLAG:  # else its CRC and sizes follow the data, and zeros stand here
        sizes = ((compressed, entry.compressed), (size, entry.size))
        if crc != entry.crc or any(local not in (declared, _ZIP64_SIZE) for local, declared in sizes):
            raise refusal(entry.raw_name, f"{disagree} (CRC-32 or sizes)")
    return int(extra_length)


class _Source:
    """One ranged read consumed in order: exact takes for headers, then the data as it comes."""

    def __init__(self, read: RangeReader, start: int, end: int, where: str) -> None:
        self._chunks = read(start, end)
        self._due = end - start  # bytes not yet received
        self._buffer = b""
        self._where = where

    def take(self, size: int) -> bytes:
        return b"".join(self.pieces(size))

    def skip(self, size: int) -> None:
        for _ in self.pieces(size):
            pass

    def pieces(self, size: int) -> Iterator[bytes]:
        """The next `size` bytes, in the chunks they came in; IntegrityError when they run out first."""
        while size > 0:
            if not self._buffer:
                self._buffer = self._receive()
            piece, self._buffer = self._buffer[:size], self._buffer[size:]
            size -= len(piece)
            yield piece

    def close(self) -> None:
        """Done: a short remainder is read through (so the connection is reused), a long one dropped."""
        if self._due <= DRAIN_LIMIT:
            for _ in self._chunks:
                pass
        self.abort()

    def abort(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def _receive(self) -> bytes:
        chunk = b""
        while not chunk:
            received = next(self._chunks, None)
            if received is None:
                raise IntegrityError(f"archive is truncated ({self._where})")
            chunk = received
        self._due -= len(chunk)
        if self._due < 0:
            raise IntegrityError(f"archive read returned more bytes than asked ({self._where})")
        return chunk


_NEITHER_QUOTE_NOR_NEWLINE = bytes(byte for byte in range(256) if byte not in b'"\n')


class _CsvRows:
    """Counts CSV records as newlines outside double quotes (RFC 4180 quoting), minus the header line."""

    def __init__(self, newlines: int = 0, quoted: bool = False, ends_with_newline: bool = True) -> None:
        self.newlines = newlines
        self.quoted = quoted
        self.ends_with_newline = ends_with_newline  # an empty file has no unterminated last line

    def feed(self, chunk: bytes) -> None:
        if b'"' in chunk:
            # Only quotes and newlines matter, and two quotes in a row put no newline on another side: what
            # is left is about a byte per line, split and counted at newline speed (C passes, no per field).
            marks = chunk.translate(None, _NEITHER_QUOTE_NOR_NEWLINE).replace(b'""', b"")
            parts = marks.split(b'"')
            quoted_text = b"".join(parts[0 if self.quoted else 1 :: 2])
            self.newlines += marks.count(b"\n") - quoted_text.count(b"\n")
            self.quoted ^= len(parts) % 2 == 0  # an odd number of quotes flips the state
        elif not self.quoted:
            self.newlines += chunk.count(b"\n")
        if chunk:
            self.ends_with_newline = chunk.endswith(b"\n")

    @property
    def rows(self) -> int:
        lines = self.newlines + (0 if self.ends_with_newline else 1)
        return max(lines - 1, 0)


def _csv_rows(point: MemberPoint | None) -> _CsvRows:
    if point is None or point.newlines is None:
        return _CsvRows()
    return _CsvRows(point.newlines, point.quoted, point.ends_with_newline)


def _json_items(data: bytes | None, path: str) -> int | None:
    return None if data is None else json_items(data, path)
