"""Streamed ZIP archives and the output files that serve them.

`zip_stream` has zipfile write into an unseekable sink, so sizes go into data descriptors and the
archive leaves in pieces as it is compressed: memory stays flat whatever the archive's size.
An OutputFile learns its size and SHA-256 by one streaming pass (cached), and serves a byte range by
generating the archive again and skipping to the offset: deterministic bytes make that exact.
"""

from __future__ import annotations

import hashlib
import stat
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

FLUSH_BYTES = 256 * 1024
ZIP64_FROM = 2**31  # members that may grow past this get ZIP64 headers from the start
DateTime = tuple[int, int, int, int, int, int]


@dataclass(frozen=True)
class Member:
    """One archive entry. The flags exist to build hostile archives."""

    name: str
    blocks: Callable[[], Iterable[bytes]]
    size_hint: int = 0  # upper bound of the uncompressed size, when large
    symlink: bool = False
    encrypted_flag: bool = False  # claims encryption (bit 0) though the data is plain


class _EntryInfo(zipfile.ZipInfo):
    """A ZipInfo with a fixed timestamp, a deflate level, and for hostile archives a false encryption flag."""

    def __init__(self, member: Member, date_time: DateTime, level: int) -> None:
        super().__init__(member.name, date_time)
        self.compress_type = zipfile.ZIP_DEFLATED
        self._compresslevel = level  # what ZipFile.open reads from a given ZipInfo (Python 3.11)
        kind = stat.S_IFLNK | 0o777 if member.symlink else stat.S_IFREG | 0o644
        self.external_attr = kind << 16
        self.claims_encryption = member.encrypted_flag

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        # zipfile resets flag_bits before writing; both headers take their flags from here.
        encoded, flags = super()._encodeFilenameFlags()  # type: ignore[misc]
        return encoded, (flags | 0x01) if self.claims_encryption else flags


def zip_stream(members: Iterable[Member], date_time: DateTime, level: int = 6) -> Iterator[bytes]:
    """The archive's bytes, deflated at `level`, in pieces of about FLUSH_BYTES."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w") as archive:
        for member in members:
            info = _EntryInfo(member, date_time, level)
            archive.NameToInfo.pop(member.name, None)  # duplicate names are wanted here: no warning
            with archive.open(info, "w", force_zip64=member.size_hint >= ZIP64_FROM) as entry:
                for block in member.blocks():
                    entry.write(block)
                    if sink.pending >= FLUSH_BYTES:
                        yield sink.drain()
    if sink.pending:
        yield sink.drain()


class _Sink:
    """A write-only file without tell/seek: zipfile then streams with data descriptors."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.pending = 0

    def write(self, data: bytes, /) -> int:
        self._parts.append(bytes(data))
        self.pending += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.pending = 0
        return data


@dataclass(frozen=True)
class Digest:
    size: int
    sha256: str  # lower-case hex


class OutputFile:
    """A job's output file whose bytes are produced on demand, the same every time."""

    def __init__(self, name: str, content_type: str, produce: Callable[[], Iterable[bytes]]) -> None:
        self.name = name
        self.content_type = content_type
        self._produce = produce
        self._digest: Digest | None = None
        self._lock = threading.Lock()

    def digest(self) -> Digest:
        """Size and SHA-256, from one streaming pass the first time they are asked for."""
        with self._lock:
            if self._digest is None:
                hasher, size = hashlib.sha256(), 0
                for piece in self._produce():
                    hasher.update(piece)
                    size += len(piece)
                self._digest = Digest(size, hasher.hexdigest())
            return self._digest

    def read(self, start: int, stop: int) -> Iterator[bytes]:
        """Bytes [start, stop): produced again from the beginning, the part before `start` skipped."""
        position = 0
        for piece in self._produce():
            end = position + len(piece)
            if end > start:
                yield piece[max(start - position, 0) : stop - position]
            if end >= stop:
                return
            position = end
