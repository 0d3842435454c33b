"""An archive's central directory, from its tail alone: its file entries, once each rule it answers holds.

Entry names, flags, sizes and attributes are read by the standard library's `zipfile` (a tail is enough for
it: it locates the directory relative to the end record). The placement checks are ours: the end record
must end the archive exactly, and the directory must sit exactly where that record says, on one disk, so
the offsets it gives are the archive's own and no other ZIP reader can be shown another directory.

A unit of an archive's members reads only its own run of directory records (`read_slice`): the planner,
which read and checked the whole directory, records where that run lies and a digest of the entries it
gave (`directory_slice`); what the unit reads must give the very same entries, or it is refused.
"""

from __future__ import annotations

import hashlib
import io
import re
import stat
import struct
import zipfile
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise

from fusion_extract.chain.ledger.records import DirectorySlice
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
_RECORD = struct.Struct("<4s24x3H12x")  # a directory record: signature; name, extra, comment lengths
_DIGESTED = struct.Struct("<5QL2H")  # index, offset, compressed, size, limit, crc, method, name length
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
    record: int = 0  # its record in the central directory is [record, record_end) of the archive
    record_end: int = 0  # (both 0: not known)


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
    records = _records(tail, archive_size - len(tail), offset, len(infos))
    del tail
    # Each directory entry is let go once it is an Entry: the two lists are never both whole in memory.
    pending = deque(zip(infos, _bounds(infos, offset), strict=True))
    del infos
    entries: list[Entry] = []
    paths: set[str] = set()
    total = 0
    position = -1
    while pending:
        info, limit = pending.popleft()
        position += 1
        record = (records[position], records[position + 1]) if records else (0, 0)
        entry = _file_entry(info, len(entries), limit, limits, record)
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


def directory_slice(entries: Sequence[Entry]) -> DirectorySlice | None:
    """Where these consecutive entries (a unit's) lie in the central directory, for `read_slice`; None when
    their run of records would not give them alone and unchanged: records not known, another record (a
    folder's) among them, or a member whose bytes end at a local header outside the run."""
    if not entries or any(entry.record_end <= entry.record for entry in entries):
        return None
    if any(a.record_end != b.record for a, b in pairwise(entries)):
        return None
    bound = max(entry.limit for entry in entries)
    if _limits([entry.offset for entry in entries], bound) != [entry.limit for entry in entries]:
        return None
    return DirectorySlice(entries[0].record, entries[-1].record_end, bound, entries_digest(entries))


def read_slice(
    read: RangeReader, archive_size: int, place: DirectorySlice, first: int, count: int, limits: ZipLimits
) -> list[Entry]:
    """Entries `first` to `first + count - 1`, read from their run of the central directory alone. They
    must be the entries the whole directory gave when `place` was recorded (its digest), else
    IntegrityError: a slice misplaced, corrupt or not the plan's is refused before any rule is asked of
    it (the archive broke none: its slice is wrong), and never read as other members. Then each rule an
    entry answers is checked again, as the whole directory's reading checks it."""
    size = place.end - place.start
    if not (0 <= place.start < place.end <= archive_size and size <= limits.max_directory_bytes):
        raise IntegrityError(
            f"a unit's directory slice [{place.start}, {place.end}) lies outside its archive"
        )
    data = b"".join(read(place.start, place.end))
    if len(data) != size:
        raise IntegrityError(f"archive is truncated: {len(data)} of a directory slice's {size} bytes read")
    records = _records(data, place.start, place.start, count)
    if not records:
        raise IntegrityError(f"a unit's directory slice does not hold exactly its plan's {count} records")
    infos = _slice_infos(data, count)
    del data
    offsets = [info.header_offset for info in infos]
    found = zip(range(first, first + count), offsets, _limits(offsets, place.bound), infos, strict=True)
    rows = (
        (i, at, z.compress_size, z.file_size, end, z.CRC, z.compress_type, _raw_name(z))
        for i, at, end, z in found
    )
    if _digest(rows) != place.digest:
        raise IntegrityError(
            "a unit's directory slice does not give the members its archive was planned with"
        )
    entries: list[Entry] = []
    for position, (info, limit) in enumerate(zip(infos, _bounds(infos, place.bound), strict=True)):
        record = (records[position], records[position + 1])
        entry = _file_entry(info, first + position, limit, limits, record)
        if entry is None:  # the digest holds: the plan's members were files
            raise IntegrityError("a unit's directory slice holds a folder where its plan has a member")
        entries.append(entry)
    return entries


def entries_digest(entries: Sequence[Entry]) -> str:
    """SHA-256 of what unpacking takes from these entries: index, name, where and how their bytes lie."""
    return _digest(
        (e.index, e.offset, e.compressed, e.size, e.limit, e.crc, e.method, e.raw_name) for e in entries
    )


def _digest(rows: Iterable[tuple[int, int, int, int, int, int, int, bytes]]) -> str:
    digest = hashlib.sha256()
    for *numbers, raw_name in rows:
        digest.update(_DIGESTED.pack(*numbers, len(raw_name)))
        digest.update(raw_name)
    return digest.hexdigest()


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


def _file_entry(
    info: zipfile.ZipInfo, index: int, limit: int, limits: ZipLimits, record: tuple[int, int] = (0, 0)
) -> Entry | None:
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
    size, crc = info.file_size, info.CRC
    return Entry(index, raw, path, offset, info.compress_size, size, crc, method, limit, *record)


def _limits(offsets: list[int], directory: int) -> list[int]:
    """Each local header's limit, as `_bounds` gives it: the next one in the archive, or `directory`."""
    order = sorted(range(len(offsets)), key=offsets.__getitem__)
    limits = [directory] * len(offsets)
    for position, i in enumerate(order[:-1]):
        limits[i] = offsets[order[position + 1]]
    return limits


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


def _records(data: bytes, base: int, start: int, count: int) -> array[int]:
    """Where each of `count` directory records from archive offset `start` begins, then where the last
    ends (`data` holds the archive from offset `base`), by the walk zipfile makes. Empty unless they are
    all records and end exactly where `data`'s directory ends (its end, or its end records)."""
    bounds, at = array("q", [start]), start - base
    for _ in range(count):
        if len(data) - at < _RECORD.size or data[at : at + 4] != b"PK\x01\x02":
            return array("q")
        _, name, extra, comment = _RECORD.unpack_from(data, at)
        at += _RECORD.size + name + extra + comment
        bounds.append(base + at)
    ends = at == len(data) or data[at : at + 4] in (b"PK\x05\x06", b"PK\x06\x06")
    return bounds if ends else array("q")


def _slice_infos(data: bytes, count: int) -> list[zipfile.ZipInfo]:
    """zipfile's reading of a run of directory records, as it reads a whole directory: given the end
    records of a directory at offset 0 of `count` entries, it keeps their offsets as they are (the
    archive's)."""
    end64 = _ZIP64_EOCD.pack(b"PK\x06\x06", _ZIP64_EOCD.size - 12, 45, 45, 0, 0, count, count, len(data), 0)
    locator = _ZIP64_LOCATOR.pack(b"PK\x06\x07", 0, len(data), 1)
    end = _EOCD.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    try:
        infos = zipfile.ZipFile(io.BytesIO(data + end64 + locator + end)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error, NotImplementedError) as exc:
        raise IntegrityError(f"a unit's directory slice is corrupt: {exc}") from None
    if len(infos) != count:
        raise IntegrityError(f"a unit's directory slice holds {len(infos)} records, its plan {count}")
    return infos


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
