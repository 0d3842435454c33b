"""Hostile ZIP archives, one per security rule, and the means to read any archive as the chain does.

Each archive is written by `zipfile` where it allows (it writes '..', absolute and backslash names, symlink
modes and, with a warning, duplicates) and then patched byte by byte where it does not (encryption flags,
compression methods, headers that disagree, entries that share bytes). `hostile_zips()` describes, for each,
the error it must raise and where it is caught:

- "directory": `read_directory` raises, having read only the archive's tail: no member is ever read;
- "member":    the directory passes; the members before the offending one are read through, and the
               offending member's stream raises.

`Reads` serves an archive as the chain's `RangeReader` does (Object Storage ranged GETs), and `unpack_all`
reads a whole archive with it: the directory, then each member to its end.
"""

from __future__ import annotations

import io
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from fusion_extract.chain.ledger.records import Member
from fusion_extract.chain.transfer.archive import Entry, MemberStream, ZipLimits, read_directory
from fusion_extract.errors import FusionExtractError, IntegrityError, UnsafeInputError

LIMITS = ZipLimits(max_entries=20, max_total_bytes=256 * 2**20, max_ratio=200)
BOMB_BYTES = 50 * 2**20  # of zeros: deflate packs them about 1000:1
OK = ("ok.csv", b"ID,NAME\n1,first\n")

EntrySpec = tuple[str | zipfile.ZipInfo, bytes]

ENCRYPTED = 0x0001
STRONG_ENCRYPTION = 0x0040
AES_METHOD = 99
BZIP2_METHOD = 12


@dataclass
class Reads:
    """An archive as a RangeReader: bytes [start, end) in chunks of `chunk` bytes (None: one chunk).

    Records each range asked and counts the bytes served; a range past the end is served short, as a
    shorter object would be.
    """

    data: bytes
    chunk: int | None = 64 * 1024
    ranges: list[tuple[int, int]] = field(default_factory=list)
    served: int = 0

    def __call__(self, start: int, end: int) -> Iterator[bytes]:
        self.ranges.append((start, end))
        return self._serve(start, min(end, len(self.data)))

    def _serve(self, start: int, end: int) -> Iterator[bytes]:
        step = self.chunk or max(end - start, 1)
        for at in range(start, end, step):
            piece = self.data[at : min(end, at + step)]
            self.served += len(piece)
            yield piece


@dataclass
class Unpacked:
    """What an archive unpacked to, as far as it got: its entries, then each member read to its end."""

    reads: Reads = field(default_factory=lambda: Reads(b""))  # every range asked
    entries: list[Entry] | None = None
    members: list[Member] = field(default_factory=list)
    contents: dict[str, bytes] = field(default_factory=dict)
    json: dict[str, bytes | None] = field(default_factory=dict)


def unpack_all(
    data: bytes, limits: ZipLimits = LIMITS, *, chunk: int | None = 64 * 1024, into: Unpacked | None = None
) -> Unpacked:
    """Read a whole archive from bytes as the chain does; `into` shows how far it got when it raises."""
    unpacked = into if into is not None else Unpacked()
    read = unpacked.reads = Reads(data, chunk)
    unpacked.entries = read_directory(read, len(data), limits)
    for entry in unpacked.entries:
        stream = MemberStream(read, entry)
        content = b"".join(stream)
        unpacked.members.append(stream.result())
        unpacked.contents[entry.path] = content
        unpacked.json[entry.path] = stream.json
    return unpacked


def zip_bytes(entries: Iterable[EntrySpec], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """An archive written by zipfile; duplicate names are written as given (zipfile only warns)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name"
        with zipfile.ZipFile(buffer, "w", compression=method) as archive:
            for name, data in entries:
                info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name)
                info.compress_type = method
                with archive.open(info, "w") as member:  # open() also takes an empty name
                    member.write(data)
    return buffer.getvalue()


@dataclass(frozen=True)
class RawMember:
    """A member written as given, whatever it declares: its compressed bytes need not match its claims."""

    name: str
    data: bytes  # as stored in the archive (raw deflate when method is 8)
    size: int
    crc: int
    method: int = zipfile.ZIP_DEFLATED


def raw_member(name: str, content: bytes, *, size: int | None = None, tail: bytes = b"") -> RawMember:
    """`content` deflated (then `tail` appended), declaring `size` (its real size unless given)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = packer.compress(content) + packer.flush()
    return RawMember(name, deflated + tail, len(content) if size is None else size, zlib.crc32(content))


def raw_zip(members: Iterable[RawMember]) -> bytes:
    """An archive whose headers say exactly what `members` declare (zipfile would compute them)."""
    body, directory, count = bytearray(), bytearray(), 0
    for m in members:
        count += 1
        name = m.name.encode()
        fixed = (20, 0, m.method, 0, 0x21, m.crc, len(m.data), m.size, len(name))
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *fixed, 0, 0, 0, 0, 0, len(body)) + name
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", *fixed, 0) + name + m.data
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(body), 0)
    return bytes(body + directory + end)


def central_offsets(data: bytes) -> list[int]:
    """Offset of each central directory entry (archives without a comment, as zip_bytes writes them)."""
    entries, cd_size, cd_offset = struct.unpack_from("<H2L", data, len(data) - 22 + 10)
    offsets, position = [], cd_offset
    for _ in range(entries):
        offsets.append(position)
        name, extra, comment = struct.unpack_from("<3H", data, position + 28)
        position += 46 + name + extra + comment
    assert position == cd_offset + cd_size
    return offsets


def local_offset(data: bytes, index: int) -> int:
    (header,) = struct.unpack_from("<L", data, central_offsets(data)[index] + 42)
    return int(header)


def patch_entry(
    data: bytes,
    index: int,
    *,
    flags: int = 0,
    method: int | None = None,
    local: bool = True,
    central: bool = True,
    central_name: bytes | None = None,
    compressed_by: int = 0,
    header_offset: int | None = None,
) -> bytes:
    """Change entry `index` in its local header and/or its central directory entry: set flag bits, its
    method, add to its compressed size; rename it or move its header offset in the central directory."""
    patched = bytearray(data)
    entry = central_offsets(data)[index]
    header = local_offset(data, index)
    places = ([header + 6] if local else []) + ([entry + 8] if central else [])  # flags; method follows
    for place in places:
        (old,) = struct.unpack_from("<H", patched, place)
        struct.pack_into("<H", patched, place, old | flags)
        if method is not None:
            struct.pack_into("<H", patched, place + 2, method)
        (compressed,) = struct.unpack_from("<L", patched, place + 12)  # flags + 12: the compressed size
        struct.pack_into("<L", patched, place + 12, compressed + compressed_by)
    if central_name is not None:
        (size,) = struct.unpack_from("<H", data, entry + 28)
        assert len(central_name) == size, "a renamed entry keeps its name length"
        patched[entry + 46 : entry + 46 + size] = central_name
    if header_offset is not None:
        struct.pack_into("<L", patched, entry + 42, header_offset)
    return bytes(patched)


def symlink(name: str, target: str) -> EntrySpec:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def aes_entry(name: str, data: bytes) -> EntrySpec:
    """An entry carrying the WinZip AES extra field (vendor AE-2, AES-256, real method stored)."""
    info = zipfile.ZipInfo(name)
    info.extra = struct.pack("<HHH2sBH", 0x9901, 7, 2, b"AE", 3, 0)
    return info, data


def with_extra(name: str, data: bytes, size: int) -> EntrySpec:
    """An entry whose headers carry an unknown extra field of `size` bytes (ids 0xCA00+ are nobody's)."""
    info = zipfile.ZipInfo(name)
    info.extra = struct.pack("<HH", 0xCAFE, size - 4) + bytes(size - 4)
    return info, data


@dataclass(frozen=True)
class HostileZip:
    name: str  # what the archive tries
    data: bytes
    error: type[FusionExtractError]
    message: str  # the rule, as a fragment of the error message
    caught: Literal["directory", "member"]
    completed: tuple[str, ...] = ()  # "member": the members read through before the offending one
    limits: ZipLimits = field(default=LIMITS)


def _named(name: str, rule: str) -> HostileZip:
    return HostileZip(name, zip_bytes([OK, (name, b"x\n")]), UnsafeInputError, rule, "directory")


def hostile_zips() -> list[HostileZip]:
    """Every hostile archive (built on call: about 0.2 s, most of it the bombs)."""
    ok = (OK[0],)
    two = zip_bytes([OK, ("secret.csv", b"x\n")])
    return [
        _named("/etc/cron.d/evil", "absolute path"),
        _named("../evil.csv", "'..' segment"),
        _named("data/../../evil.csv", "'..' segment"),
        _named("..\\evil.csv", "backslash"),
        _named("data\\evil.csv", "backslash"),
        _named("C:/evil.csv", "drive letter"),
        _named("C:evil.csv", "drive letter"),
        _named("", "empty name"),
        _named(".", "empty name"),
        _named("evil\n.csv", "control character"),
        HostileZip(
            "duplicate name",
            zip_bytes([OK, ("a.csv", b"1\n"), ("a.csv", b"2\n")]),
            UnsafeInputError,
            "duplicate name",
            "directory",
        ),
        HostileZip(
            "duplicate after normalisation",
            zip_bytes([("data/a.csv", b"1\n"), ("./data//a.csv", b"2\n")]),
            UnsafeInputError,
            "duplicate name 'data/a.csv'",
            "directory",
        ),
        HostileZip(
            "zipcrypto encrypted entry",
            patch_entry(two, 1, flags=ENCRYPTED),
            UnsafeInputError,
            "'secret.csv' refused: encrypted",
            "directory",
        ),
        HostileZip(
            "aes encrypted entry",
            patch_entry(
                zip_bytes([OK, aes_entry("secret.csv", b"x\n")], method=zipfile.ZIP_STORED),
                1,
                flags=ENCRYPTED,
                method=AES_METHOD,
            ),
            UnsafeInputError,
            "refused: encrypted",
            "directory",
        ),
        HostileZip(
            "strongly encrypted entry",
            patch_entry(two, 1, flags=STRONG_ENCRYPTION),
            UnsafeInputError,
            "refused: encrypted",
            "directory",
        ),
        HostileZip(
            "encrypted flag in the central directory only",
            patch_entry(two, 1, flags=ENCRYPTED, local=False),
            UnsafeInputError,
            "'secret.csv' refused: encrypted",
            "directory",
        ),
        HostileZip(
            "encrypted flag in the local header only",
            patch_entry(two, 1, flags=ENCRYPTED, central=False),
            UnsafeInputError,
            "'secret.csv' refused: encrypted",
            "member",
            ok,
        ),
        HostileZip(
            "symlink",
            zip_bytes([OK, symlink("passwd", "/etc/passwd")]),
            UnsafeInputError,
            "'passwd' refused: symbolic link",
            "directory",
        ),
        HostileZip(
            "compression method other than stored or deflate",
            patch_entry(two, 1, method=BZIP2_METHOD),
            UnsafeInputError,
            "'secret.csv' refused: compression method 12",
            "directory",
        ),
        HostileZip(
            "local header names another entry",
            patch_entry(zip_bytes([OK, ("a.csv", b"1\n")]), 1, central_name=b"b.csv"),
            UnsafeInputError,
            "'b.csv' refused: its local header disagrees with the central directory (another name)",
            "member",
            ok,
        ),
        HostileZip(
            "local header declares another compression method",
            patch_entry(two, 1, method=zipfile.ZIP_STORED, central=False),
            UnsafeInputError,
            "'secret.csv' refused: its local header disagrees with the central directory (compression",
            "member",
            ok,
        ),
        HostileZip(
            "local header declares other sizes",
            patch_entry(two, 1, compressed_by=1, central=False),
            UnsafeInputError,
            "'secret.csv' refused: its local header disagrees with the central directory (CRC-32 or sizes)",
            "member",
            ok,
        ),
        HostileZip(
            "two entries at one offset",
            patch_entry(two, 1, header_offset=0),
            UnsafeInputError,
            "refused: overlapping entries",
            "directory",
        ),
        HostileZip(
            "entry reaching into the central directory",
            patch_entry(two, 1, compressed_by=64),
            UnsafeInputError,
            "'secret.csv' refused: overlapping entries (with the central directory)",
            "directory",
        ),
        HostileZip(
            "entry reaching into the next past its local extra field",
            patch_entry(
                zip_bytes([OK, with_extra("x.csv", b"1\n", 40), ("y.csv", b"2\n")]), 1, compressed_by=20
            ),
            UnsafeInputError,
            "'x.csv' refused: overlapping entries",
            "member",
            ok,
        ),
        HostileZip(
            "central directory too large",
            zip_bytes([(f"file-{n:02}.csv", b"1\n") for n in range(5)]),
            UnsafeInputError,
            "central directory larger than 100 bytes",
            "directory",
            limits=ZipLimits(max_entries=20, max_total_bytes=2**20, max_ratio=200, max_directory_bytes=100),
        ),
        HostileZip(
            "too many entries",
            zip_bytes([(f"file-{n:02}.csv", b"1\n") for n in range(LIMITS.max_entries + 1)]),
            UnsafeInputError,
            f"more than {LIMITS.max_entries} entries",
            "directory",
        ),
        HostileZip(
            "too many bytes in total",
            zip_bytes(
                [(name, b"x" * 400_000) for name in ("a.bin", "b.bin", "c.bin")], method=zipfile.ZIP_STORED
            ),
            UnsafeInputError,
            "'c.bin' refused: archive expands beyond 1000000 bytes",
            "directory",
            limits=ZipLimits(max_entries=20, max_total_bytes=1_000_000, max_ratio=200),
        ),
        HostileZip(
            "zip bomb",
            zip_bytes([OK, ("bomb.csv", bytes(BOMB_BYTES))]),
            UnsafeInputError,
            "'bomb.csv' refused: expands more than 200:1",
            "directory",
        ),
        HostileZip(
            "zip bomb declaring a small size",
            raw_zip([raw_member(*OK), raw_member("bomb.csv", bytes(BOMB_BYTES), size=1024)]),
            IntegrityError,
            "'bomb.csv' expands beyond its declared size of 1024 bytes",
            "member",
            ok,
        ),
    ]
