"""An archive's central directory, from its tail alone: its file entries, once each rule it answers holds.

Entry names, flags, sizes and attributes are read by the standard library's `zipfile` (a tail is enough for
it: it locates the directory relative to the end record). The placement checks are ours: the end record
must end the archive exactly, and the directory must sit exactly where that record says, on one disk, so
the offsets it gives are the archive's own and no other ZIP reader can be shown another directory.
"""

from __future__ import annotations

import io
import re
import stat
import struct
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fusion_extract.errors import ConfigError, IntegrityError, UnsafeInputError

RangeReader = Callable[[int, int], Iterator[bytes]]  # the archive's bytes [start, end), as chunks

# The longest the tail must be: the directory, the end record with the longest comment, zip64 records.
END_RECORDS = 22 + 0xFFFF + 20 + 56
RATIO_ALLOWANCE = 64 * 1024  # compressed bytes granted to every member before its ratio counts
LOCAL_HEADER = struct.Struct(
    "<4s5H3L2H"
)  # signature, version, flags, method, time, date, crc, compressed, size, name and extra lengths
ENCRYPTED_FLAGS = 0x0001 | 0x0040  # traditional/AES encryption; strong encryption
_EOCD = struct.Struct(
    "<4s4H2LH"
)  # signature, disk, directory disk, entries here, entries, size, offset, comment
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk of the zip64 record, its offset, disks
_ZIP64_EOCD = struct.Struct(
    "<4sQ2H2L4Q"
)  # signature, size, versions, disk, directory disk, counts, size, offset
_UTF8_FLAG = 0x0800
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_DRIVE = re.compile(r"^[A-Za-z]:")
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


@dataclass(frozen=True, slots=True)  # slots: a directory may hold tens of thousands
class Entry:
    """One file member, as the central directory declares it."""

    index: int  # position among the archive's file entries (directories skipped), in directory order
    raw_name: bytes
    path: str  # safe relative path (member_path)
    offset: int  # of its local header, in the archive
    compressed: int
    size: int  # uncompressed, as declared
    crc: int
    method: int  # zipfile.ZIP_STORED or zipfile.ZIP_DEFLATED
    limit: int  # its bytes end by here: the next local header in the archive, or the central directory


def read_directory(read: RangeReader, archive_size: int, limits: ZipLimits) -> list[Entry]:
    """The archive's file entries, once every rule the central directory can answer holds.

    Reads only the archive's tail: nothing of a member is read before the whole directory passed. Errors:
    IntegrityError (not a ZIP, truncated, corrupt or misplaced directory), UnsafeInputError (a security
    rule, naming the entry and the rule).
    """
    length = min(archive_size, limits.max_directory_bytes + END_RECORDS)
    tail = b"".join(read(archive_size - length, archive_size)) if length else b""
    if len(tail) != length:
        raise IntegrityError(f"archive is truncated: {len(tail)} of its last {length} bytes read")
    offset, infos = _central_directory(tail, archive_size, limits.max_directory_bytes)
    if len(infos) > limits.max_entries:
        raise UnsafeInputError(f"archive has more than {limits.max_entries} entries")
    # Each directory entry is let go once it is an Entry: the two lists are never both whole in memory.
    pending = deque(zip(infos, _bounds(infos, offset), strict=True))
    del infos
    entries: list[Entry] = []
    paths: set[str] = set()
    total = 0
    while pending:
        info, limit = pending.popleft()
        entry = _file_entry(info, len(entries), limit, limits)
        if entry is None:  # a directory: object names imply it
            continue
        if entry.path in paths:
            raise refusal(entry.raw_name, f"duplicate name {entry.path!r}")
        paths.add(entry.path)
        total += entry.size
        if total > limits.max_total_bytes:
            raise refusal(entry.raw_name, f"archive expands beyond {limits.max_total_bytes} bytes")
        entries.append(entry)
    return entries


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


def decode_name(raw_name: bytes) -> str:
    # Many writers store UTF-8 names without the UTF-8 flag: UTF-8 first, then the ZIP default code page.
    try:
        return raw_name.decode("utf-8")
    except UnicodeDecodeError:
        return raw_name.decode("cp437")


def refusal(raw_name: bytes, rule: str) -> UnsafeInputError:
    return UnsafeInputError(f"archive entry {decode_name(raw_name)!r} refused: {rule}")


def _file_entry(info: zipfile.ZipInfo, index: int, limit: int, limits: ZipLimits) -> Entry | None:
    """The entry as a file member (None for a directory), or the rule it breaks."""
    raw = _raw_name(info)
    path = member_path(decode_name(raw))
    if stat.S_ISLNK(info.external_attr >> 16):  # checked whatever the host system: refusing costs nothing
        raise refusal(raw, "symbolic link")
    if info.flag_bits & ENCRYPTED_FLAGS:
        raise refusal(raw, "encrypted entry")
    if path is None:
        return None
    if info.compress_type not in _METHODS:
        raise refusal(raw, f"compression method {info.compress_type} (only stored and deflate are read)")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise IntegrityError(f"archive entry {path!r} is stored, yet its compressed and full sizes differ")
    # The allowance spares small members that compress well; a bomb is refused before it is read.
    if info.file_size > limits.max_ratio * (info.compress_size + RATIO_ALLOWANCE):
        raise refusal(raw, f"expands more than {limits.max_ratio}:1 (zip bomb)")
    method, offset = info.compress_type, info.header_offset
    return Entry(index, raw, path, offset, info.compress_size, info.file_size, info.CRC, method, limit)


def _bounds(infos: list[zipfile.ZipInfo], directory: int) -> list[int]:
    """Each entry's limit (the next local header, or the directory); refuses entries that share bytes.

    A local header's extra field is not known from the directory: its fixed part and name make the lower
    bound used here, and the member's stream checks the exact end once it has read the header.
    """
    order = sorted(range(len(infos)), key=lambda i: infos[i].header_offset)
    bounds = [directory] * len(infos)
    for position, i in enumerate(order):
        info = infos[i]
        following = infos[order[position + 1]] if position + 1 < len(order) else None
        bounds[i] = following.header_offset if following is not None else directory
        end = info.header_offset + LOCAL_HEADER.size + len(_raw_name(info)) + info.compress_size
        if end > bounds[i]:
            other = repr(following.orig_filename) if following is not None else "the central directory"
            raise refusal(_raw_name(info), f"overlapping entries (with {other})")
    return bounds


def _central_directory(tail: bytes, archive_size: int, limit: int) -> tuple[int, list[zipfile.ZipInfo]]:
    """The directory's offset and entries (their header_offset made absolute); it must lie within `tail`."""
    base = archive_size - len(tail)  # archive offset of tail[0]
    offset, entries = _check_placement(tail, archive_size, limit)
    try:
        archive = zipfile.ZipFile(io.BytesIO(tail))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error, NotImplementedError) as exc:
        raise IntegrityError(f"archive's central directory is corrupt: {exc}") from None
    # zipfile takes the tail for an archive `base` bytes shorter than ours: its offsets are ours minus base.
    if archive.start_dir != offset - base:
        raise IntegrityError("archive's central directory is not where its end record says")
    infos = archive.infolist()
    if len(infos) != entries:
        raise IntegrityError(f"archive's central directory holds {len(infos)} entries, its end {entries}")
    for info in infos:
        info.header_offset += base
    return offset, infos


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    """The name as stored (zipfile decodes it by the UTF-8 flag, UTF-8 or cp437)."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & _UTF8_FLAG else "cp437")


def _check_placement(tail: bytes, archive_size: int, limit: int) -> tuple[int, int]:
    """The directory's offset and entry count, once its place is proven."""
    base = archive_size - len(tail)
    end = _find_end_record(tail)
    _, disk, cd_disk, disk_entries, entries, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, end)
    locator = end - _ZIP64_LOCATOR.size
    if locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        _, _, record_offset, _ = _ZIP64_LOCATOR.unpack_from(tail, locator)
        end = record_offset - base
        if not 0 <= end <= locator - _ZIP64_EOCD.size or tail[end : end + 4] != b"PK\x06\x06":
            raise IntegrityError("archive's zip64 end record is missing or misplaced")
        _, _, _, _, disk, cd_disk, disk_entries, entries, cd_size, cd_offset = _ZIP64_EOCD.unpack_from(
            tail, end
        )
    if disk or cd_disk or disk_entries != entries:
        raise IntegrityError("archive spans several disks, which is not supported")
    if cd_offset + cd_size != base + end:
        raise IntegrityError("archive's central directory is not where its end record says")
    if cd_size > limit or cd_offset < base:
        raise UnsafeInputError(f"archive refused: central directory larger than {limit} bytes")
    return cd_offset, entries


def _find_end_record(tail: bytes) -> int:
    """Offset of the end-of-central-directory record whose comment ends exactly at the end of the archive."""
    lowest = max(0, len(tail) - _EOCD.size - 0xFFFF)
    stop = len(tail) - _EOCD.size + 4
    while stop >= 4 and (found := tail.rfind(b"PK\x05\x06", lowest, stop)) >= 0:
        (comment_size,) = struct.unpack_from("<H", tail, found + 20)
        if found + _EOCD.size + comment_size == len(tail):
            return found
        stop = found + 3
    raise IntegrityError("archive has no end record: truncated, not a ZIP, or bytes after its end")
