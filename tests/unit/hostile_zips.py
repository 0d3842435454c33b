"""Hostile ZIP archives, one per security rule, for the archive tests and the security suite.

Each is written by `zipfile` where it allows (it writes '..', absolute and backslash names, symlink modes
and, with a warning, duplicates) and then patched byte by byte where it does not (encryption flags, a central
directory that disagrees with the local headers). `HOSTILE` describes, for each archive, the error `unpack`
must raise and when it catches it:

- "entry":  at the entry's header, before staging it: the bad entry never reaches `stage`;
- "stream": while the entry's bytes flow: its staging starts but never completes;
- "end":    at the end, from the central directory: staging completes, but `unpack` raises, so nothing is
            promoted.
"""

from __future__ import annotations

import io
import stat
import struct
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from fusion_extract.chain.archive import ZipLimits
from fusion_extract.errors import FusionExtractError, UnsafeInputError

LIMITS = ZipLimits(max_entries=20, max_total_bytes=256 * 2**20, max_ratio=200)
BOMB_BYTES = 50 * 2**20  # of zeros: deflate packs them about 1000:1
OK = ("ok.csv", b"ID,NAME\n1,first\n")

Entry = tuple[str | zipfile.ZipInfo, bytes]

ENCRYPTED = 0x0001
STRONG_ENCRYPTION = 0x0040
AES_METHOD = 99


@dataclass
class RecordingStage:
    """A stage callback that keeps what it is given: `started` in call order, `completed` once fully read."""

    started: list[str] = field(default_factory=list)
    completed: dict[str, bytes] = field(default_factory=dict)

    def __call__(self, path: str, chunks: Iterator[bytes]) -> None:
        self.started.append(path)
        self.completed[path] = b"".join(chunks)


def zip_bytes(entries: Iterable[Entry], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
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


def patch_entry(
    data: bytes,
    index: int,
    *,
    flags: int = 0,
    method: int | None = None,
    local: bool = True,
    central: bool = True,
    central_name: bytes | None = None,
) -> bytes:
    """Set flag bits / the method of entry `index` in its local header and/or its central directory entry."""
    patched = bytearray(data)
    entry = central_offsets(data)[index]
    (header,) = struct.unpack_from("<L", data, entry + 42)
    places = ([header + 6] if local else []) + ([entry + 8] if central else [])  # flags; method follows
    for place in places:
        (old,) = struct.unpack_from("<H", patched, place)
        struct.pack_into("<H", patched, place, old | flags)
        if method is not None:
            struct.pack_into("<H", patched, place + 2, method)
    if central_name is not None:
        (size,) = struct.unpack_from("<H", data, entry + 28)
        assert len(central_name) == size, "a renamed entry keeps its name length"
        patched[entry + 46 : entry + 46 + size] = central_name
    return bytes(patched)


def symlink(name: str, target: str) -> Entry:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def aes_entry(name: str, data: bytes) -> Entry:
    """An entry carrying the WinZip AES extra field (vendor AE-2, AES-256, real method stored)."""
    info = zipfile.ZipInfo(name)
    info.extra = struct.pack("<HHH2sBH", 0x9901, 7, 2, b"AE", 3, 0)
    return info, data


@dataclass(frozen=True)
class HostileZip:
    name: str  # what the archive tries
    data: bytes
    error: type[FusionExtractError]
    message: str  # the rule, as a fragment of the error message
    caught: Literal["entry", "stream", "end"]
    staged: tuple[str, ...]  # the stage() calls unpack makes before refusing, in order
    limits: ZipLimits = field(default=LIMITS)


def _named(name: str, rule: str) -> HostileZip:
    return HostileZip(name, zip_bytes([OK, (name, b"x\n")]), UnsafeInputError, rule, "entry", (OK[0],))


def hostile_zips() -> list[HostileZip]:
    """Every hostile archive (built on call: about 0.2 s, most of it the bomb)."""
    ok = (OK[0],)
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
            "entry",
            (*ok, "a.csv"),
        ),
        HostileZip(
            "duplicate after normalisation",
            zip_bytes([("data/a.csv", b"1\n"), ("./data//a.csv", b"2\n")]),
            UnsafeInputError,
            "duplicate name 'data/a.csv'",
            "entry",
            ("data/a.csv",),
        ),
        HostileZip(
            "zipcrypto encrypted entry",
            patch_entry(zip_bytes([OK, ("secret.csv", b"x\n")]), 1, flags=ENCRYPTED),
            UnsafeInputError,
            "entry 2 (after 'ok.csv') refused: encrypted",
            "entry",
            ok,
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
            "entry",
            ok,
        ),
        HostileZip(
            "strongly encrypted entry",
            patch_entry(zip_bytes([OK, ("secret.csv", b"x\n")]), 1, flags=STRONG_ENCRYPTION),
            UnsafeInputError,
            "refused: encrypted",
            "entry",
            ok,
        ),
        HostileZip(
            "encrypted flag in the central directory only",
            patch_entry(zip_bytes([OK, ("secret.csv", b"x\n")]), 1, flags=ENCRYPTED, local=False),
            UnsafeInputError,
            "'secret.csv' refused: encrypted",
            "end",
            (*ok, "secret.csv"),
        ),
        HostileZip(
            "symlink",
            zip_bytes([OK, symlink("passwd", "/etc/passwd")]),
            UnsafeInputError,
            "'passwd' refused: symbolic link",
            "end",
            (*ok, "passwd"),
        ),
        HostileZip(
            "central directory names another entry",
            patch_entry(zip_bytes([OK, ("a.csv", b"1\n")]), 1, central_name=b"b.csv"),
            UnsafeInputError,
            "central directory lists other entries",
            "end",
            (*ok, "a.csv"),
        ),
        HostileZip(
            "central directory too large",
            zip_bytes([(f"file-{n:02}.csv", b"1\n") for n in range(5)]),
            UnsafeInputError,
            "central directory larger than 100 bytes",
            "end",
            tuple(f"file-{n:02}.csv" for n in range(5)),
            limits=ZipLimits(max_entries=20, max_total_bytes=2**20, max_ratio=200, max_directory_bytes=100),
        ),
        HostileZip(
            "too many entries",
            zip_bytes([(f"file-{n:02}.csv", b"1\n") for n in range(LIMITS.max_entries + 1)]),
            UnsafeInputError,
            f"more than {LIMITS.max_entries} entries",
            "entry",
            tuple(f"file-{n:02}.csv" for n in range(LIMITS.max_entries)),
        ),
        HostileZip(
            "too many bytes in total",
            zip_bytes(
                [(name, b"x" * 400_000) for name in ("a.bin", "b.bin", "c.bin")], method=zipfile.ZIP_STORED
            ),
            UnsafeInputError,
            "expands beyond 1000000 bytes",
            "stream",
            ("a.bin", "b.bin", "c.bin"),
            limits=ZipLimits(max_entries=20, max_total_bytes=1_000_000, max_ratio=200),
        ),
        HostileZip(
            "zip bomb",
            zip_bytes([OK, ("bomb.csv", bytes(BOMB_BYTES))]),
            UnsafeInputError,
            "'bomb.csv' refused: expands more than 200:1",
            "stream",
            (*ok, "bomb.csv"),
        ),
    ]
