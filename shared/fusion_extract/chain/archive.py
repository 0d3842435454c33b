"""Verify and unpack one output ZIP as a stream, with bounded memory and no disk.

`unpack` reads the archive once, as it downloads. It hashes and counts the compressed bytes, inflates each
member with stream-unzip and hands it to a `stage` callback (which uploads it to a staging prefix) while
counting, hashing and counting the rows of the decompressed bytes.

THE CONTRACT: members are staged before the end of the archive is reached, so staging alone proves nothing.
`unpack` returns only when the whole archive verified; any error is raised instead. The caller promotes the
staged members (makes them visible) only after `unpack` returned, and discards them otherwise.

When each rule is enforced:
- as each entry's header is read, before it is staged: its name (empty, absolute, `..`, backslash, drive
  letter, control characters, duplicate after normalisation), the entry count, encryption (stream-unzip
  refuses encrypted entries when no password is given);
- as bytes flow: total uncompressed bytes, compression ratio (so a bomb stops early), CRC and sizes
  (stream-unzip), truncation, and an archive longer than `expected_size`;
- at the end, before returning: archive SHA-256 and size; then, from the central directory (kept in a bounded
  tail buffer, since it comes last): symlinks (their mode lives only there), encryption flags, and that it
  lists exactly the entries the stream held, so no other ZIP reader can see different entries.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NoReturn

import stream_unzip as su

from fusion_extract.chain.manifest import ExtractMetadata, parse_metadata
from fusion_extract.chain.zipdir import END_RECORDS, check_directory
from fusion_extract.errors import ConfigError, FusionExtractError, IntegrityError, UnsafeInputError

Stage = Callable[[str, Iterator[bytes]], object]

SLICE = 64 * 1024  # the archive reaches stream-unzip in pieces this big: it bounds the ratio estimate's error
JSON_COUNT_LIMIT = 4 * 1024 * 1024  # JSON members up to this size are parsed to count their items
_DRIVE = re.compile(r"^[A-Za-z]:")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int
    max_total_bytes: int  # uncompressed, whole archive
    max_ratio: int  # uncompressed : compressed, per member
    max_directory_bytes: int = 4 * 1024 * 1024  # central directory size we are willing to buffer

    def __post_init__(self) -> None:
        bad = [name for name, value in vars(self).items() if not isinstance(value, int) or value <= 0]
        if bad:
            raise ConfigError(f"ZIP limits must be positive whole numbers: {', '.join(bad)}")


@dataclass(frozen=True)
class Member:
    path: str  # safe relative path inside the archive
    size: int
    sha256: str  # hex
    rows: int | None  # .csv: records minus header; .json {"items": [...]}: items; otherwise None


@dataclass(frozen=True)
class UnpackResult:
    archive_sha256: str
    archive_size: int
    members: list[Member]
    metadata: ExtractMetadata | None  # from the first `*_metadata.json` member, when its shape is known


def unpack(
    chunks: Iterable[bytes],
    *,
    expected_sha256: str | None,
    expected_size: int | None,
    limits: ZipLimits,
    stage: Stage,
) -> UnpackResult:
    """Stage every file of the archive, then verify the whole archive; raise if anything is wrong.

    `stage(path, chunks)` is called once per file, in archive order, and should consume `chunks` (what it
    leaves is drained). Errors: IntegrityError (checksum, size, corrupt or truncated archive),
    UnsafeInputError (a security rule, naming the entry and the rule), or whatever the source or `stage`
    raised. Only a normal return means the staged members may be promoted.
    """
    if expected_sha256 is not None and not _SHA256.match(expected_sha256):
        raise IntegrityError(f"expected SHA-256 {expected_sha256!r} is not 64 hex digits")
    if expected_size is not None and expected_size < 0:
        raise IntegrityError(f"expected size {expected_size} is negative")
    tee = _Tee(chunks, expected_size, limits.max_directory_bytes + END_RECORDS)
    reader = _Reader(tee, limits, stage)
    reader.read_all()
    _check_checksum(tee, expected_sha256, expected_size)
    check_directory(tee.tail(), tee.size, reader.raw_names, limits.max_directory_bytes)
    return UnpackResult(tee.sha256, tee.size, reader.members, reader.metadata)


def member_path(name: str) -> str | None:
    """The entry name as a safe relative path (None for a directory entry), or UnsafeInputError."""

    def refuse(rule: str) -> UnsafeInputError:
        return UnsafeInputError(f"archive entry {name!r} refused: {rule}")

    if not name:
        raise refuse("empty name")
    if "\\" in name:
        raise refuse("backslash in name")
    if name.startswith("/"):
        raise refuse("absolute path")
    if _DRIVE.match(name):
        raise refuse("drive letter")
    if _CONTROL.search(name):
        raise refuse("control character in name")
    segments = [segment for segment in name.split("/") if segment not in ("", ".")]
    if ".." in segments:
        raise refuse("'..' segment")
    if name.endswith("/"):
        return None
    if not segments:
        raise refuse("empty name")
    return "/".join(segments)


class _Tee:
    """The archive bytes on their way to stream-unzip: hashed, counted, re-sliced, their tail kept."""

    def __init__(self, chunks: Iterable[bytes], expected_size: int | None, tail_limit: int) -> None:
        self.size = 0  # bytes received
        self.position = 0  # bytes handed to stream-unzip
        self._expected_size = expected_size
        self._hash = hashlib.sha256()
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._tail_limit = tail_limit
        self._pieces = self._slice(chunks)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._pieces)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def tail(self) -> bytes:
        """The last bytes of the archive (at least `tail_limit` of them, or all)."""
        return b"".join(self._tail)

    def _slice(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self._hash.update(chunk)
            self.size += len(chunk)
            if self._expected_size is not None and self.size > self._expected_size:
                raise IntegrityError(f"archive is longer than the expected {self._expected_size} bytes")
            self._keep(chunk)
            for start in range(0, len(chunk), SLICE):
                piece = chunk[start : start + SLICE] if len(chunk) > SLICE else chunk
                self.position += len(piece)
                yield piece

    def _keep(self, chunk: bytes) -> None:
        self._tail.append(chunk)
        self._tail_size += len(chunk)
        while self._tail_size - len(self._tail[0]) >= self._tail_limit:
            self._tail_size -= len(self._tail.popleft())


class _Reader:
    """Walks the entries stream-unzip finds, applies the per-entry rules and stages each file."""

    def __init__(self, tee: _Tee, limits: ZipLimits, stage: Stage) -> None:
        self._tee = tee
        self._limits = limits
        self._stage = stage
        self._paths: set[str] = set()
        self.total = 0  # uncompressed bytes so far, whole archive
        self.raw_names: list[bytes] = []
        self.members: list[Member] = []
        self.metadata: ExtractMetadata | None = None

    def read_all(self) -> None:
        entries = su.stream_unzip(self._tee)
        while True:
            try:
                entry = next(entries, None)
            except Exception as exc:
                _raise(_translate(exc, self._position()), exc)
            if entry is None:
                return
            raw_name, _size, chunks = entry
            self._read_entry(raw_name, chunks)

    def _read_entry(self, raw_name: bytes, chunks: Iterator[bytes]) -> None:
        self.raw_names.append(raw_name)
        name = _decode(raw_name)
        if len(self.raw_names) > self._limits.max_entries:
            raise UnsafeInputError(f"archive has more than {self._limits.max_entries} entries (at {name!r})")
        path = member_path(name)
        member = _MemberStream(path or name, chunks, self)
        if path is None:  # directories are implied by object names; nothing to stage
            member.drain()
            return
        if path in self._paths:
            raise UnsafeInputError(f"archive entry {name!r} refused: duplicate name {path!r}")
        self._paths.add(path)
        try:
            self._stage(path, member.stream())
        except Exception as exc:
            _raise(member.failure or exc, exc)  # if stage wrapped our error, the archive's fault comes first
        member.drain()
        self.members.append(member.result())
        if self.metadata is None and path.endswith("_metadata.json") and member.json is not None:
            self.metadata = parse_metadata(member.json)

    def _position(self) -> str:
        count = len(self.raw_names)
        return f"entry {count + 1}" + (f" (after {_decode(self.raw_names[-1])!r})" if count else "")

    def account(self, path: str, added: int, produced: int, started_at: int) -> None:
        """Enforce the total and ratio limits: `added` new bytes, `produced` by this member so far."""
        self.total += added
        if self.total > self._limits.max_total_bytes:
            raise UnsafeInputError(
                f"archive entry {path!r} refused: archive expands beyond {self._limits.max_total_bytes} bytes"
            )
        # The tee runs at most one SLICE ahead of the inflater, so the member has consumed at most (bytes
        # read since it started + SLICE): exceeding max_ratio against that bound is never a false alarm.
        consumed_at_most = self._tee.position - started_at + SLICE
        if produced > self._limits.max_ratio * consumed_at_most:
            ratio = self._limits.max_ratio
            raise UnsafeInputError(f"archive entry {path!r} refused: expands more than {ratio}:1 (zip bomb)")

    @property
    def position(self) -> int:
        return self._tee.position


class _MemberStream:
    """One member's decompressed bytes, counted, hashed and checked as they flow to `stage`."""

    def __init__(self, path: str, chunks: Iterator[bytes], reader: _Reader) -> None:
        self.path = path
        self.failure: Exception | None = None
        self.json: bytes | None = None
        self._chunks = chunks
        self._reader = reader
        self._started_at = reader.position
        self._size = 0
        self._hash = hashlib.sha256()
        lowered = path.lower()
        self._csv = _CsvRows() if lowered.endswith(".csv") else None
        self._json: bytearray | None = bytearray() if lowered.endswith(".json") else None

    def stream(self) -> Iterator[bytes]:
        while (chunk := self._next()) is not None:
            yield chunk

    def drain(self) -> None:
        while self._next() is not None:
            pass
        if self._json is not None:
            self.json = bytes(self._json)
            self._json = None

    def result(self) -> Member:
        rows = self._csv.rows if self._csv is not None else _json_items(self.json)
        return Member(self.path, self._size, self._hash.hexdigest(), rows)

    def _next(self) -> bytes | None:
        if self.failure is not None:
            raise self.failure
        try:
            chunk = next(self._chunks, None)
            while chunk is not None and not chunk:
                chunk = next(self._chunks, None)
            if chunk is not None:
                self._take(chunk)
            return chunk
        except Exception as exc:
            self.failure = _translate(exc, f"entry {self.path!r}")
            _raise(self.failure, exc)

    def _take(self, chunk: bytes) -> None:
        self._size += len(chunk)
        self._reader.account(self.path, len(chunk), self._size, self._started_at)
        self._hash.update(chunk)
        if self._csv is not None:
            self._csv.feed(chunk)
        if self._json is not None:
            self._json += chunk
            if len(self._json) > JSON_COUNT_LIMIT:
                self._json = None  # too big to count cheaply


class _CsvRows:
    """Counts CSV records as newlines outside double quotes (RFC 4180 quoting), minus the header line."""

    def __init__(self) -> None:
        self._newlines = 0
        self._quoted = False
        self._ends_with_newline = True  # an empty file has no unterminated last line

    def feed(self, chunk: bytes) -> None:
        if b'"' in chunk:
            parts = chunk.split(b'"')
            quoted_text = b"".join(parts[0 if self._quoted else 1 :: 2])  # one C pass, not one per field
            self._newlines += chunk.count(b"\n") - quoted_text.count(b"\n")
            self._quoted ^= len(parts) % 2 == 0  # an odd number of quotes flips the state
        elif not self._quoted:
            self._newlines += chunk.count(b"\n")
        self._ends_with_newline = chunk.endswith(b"\n")

    @property
    def rows(self) -> int:
        lines = self._newlines + (0 if self._ends_with_newline else 1)
        return max(lines - 1, 0)


def _json_items(data: bytes | None) -> int | None:
    if data is None:
        return None
    try:
        document = json.loads(data)
    except ValueError:
        return None
    items = document.get("items") if isinstance(document, dict) else None
    return len(items) if isinstance(items, list) else None


def _decode(raw_name: bytes) -> str:
    # stream-unzip does not pass on the UTF-8 flag; UTF-8 first, then the ZIP default code page.
    try:
        return raw_name.decode("utf-8")
    except UnicodeDecodeError:
        return raw_name.decode("cp437")


def _translate(exc: Exception, where: str) -> Exception:
    """stream-unzip's errors as ours; anything else (ours, the source's) unchanged."""
    if isinstance(exc, FusionExtractError) or not isinstance(exc, su.UnzipError):
        return exc
    encrypted = isinstance(exc, su.MissingPasswordError | su.PasswordError) or (
        isinstance(exc, su.UnsupportedFlagsError) and bool(exc.args[0][6])
    )
    if encrypted:
        return UnsafeInputError(f"archive {where} refused: encrypted entry")
    if isinstance(exc, su.TruncatedDataError):
        return IntegrityError(f"archive is truncated ({where})")
    if isinstance(exc, su.CRC32IntegrityError):
        return IntegrityError(f"archive {where} fails its CRC-32 check")
    return IntegrityError(f"archive is corrupt at {where}: {type(exc).__name__}")


def _raise(error: Exception, cause: Exception) -> NoReturn:
    if error is cause:
        raise error
    raise error from cause


def _check_checksum(tee: _Tee, expected_sha256: str | None, expected_size: int | None) -> None:
    if expected_size is not None and tee.size != expected_size:
        raise IntegrityError(f"archive size mismatch: expected {expected_size} bytes, got {tee.size}")
    if expected_sha256 is not None and tee.sha256 != expected_sha256.lower():
        raise IntegrityError(
            f"archive SHA-256 mismatch: expected {expected_sha256.lower()}, got {tee.sha256}"
        )
