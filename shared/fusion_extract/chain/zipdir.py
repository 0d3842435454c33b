"""An archive's central directory, read from its tail bytes once the whole archive has streamed past.

Entry names, flags and attributes are read by the standard library's `zipfile` (a tail is enough for it:
it locates the directory relative to the end record). The placement checks are ours: the end record
must end the archive exactly, and the directory must sit exactly where that record says, on one disk,
so no other ZIP reader can be shown different entries than the stream held.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile

from fusion_extract.errors import IntegrityError, UnsafeInputError

# The longest the tail must be: the directory, the end record with the longest comment, zip64 records.
END_RECORDS = 22 + 0xFFFF + 20 + 56
_EOCD = struct.Struct(
    "<4s4H2LH"
)  # signature, disk, directory disk, entries here, entries, size, offset, comment
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk of the zip64 record, its offset, disks
_ZIP64_EOCD = struct.Struct(
    "<4sQ2H2L4Q"
)  # signature, size, versions, disk, directory disk, counts, size, offset
_ENCRYPTED_FLAGS = 0x0001 | 0x0040  # traditional/AES encryption; strong encryption
_UTF8_FLAG = 0x0800


def check_directory(tail: bytes, archive_size: int, stream_names: list[bytes], limit: int) -> None:
    """The central directory must list exactly the entries streamed, none a symlink or encrypted."""
    _check_placement(tail, archive_size, limit)
    try:
        infos = zipfile.ZipFile(io.BytesIO(tail)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error) as exc:
        raise IntegrityError(f"archive's central directory is corrupt: {exc}") from None
    listed = []
    for info in infos:
        entry = f"archive entry {info.filename!r} refused"
        if stat.S_ISLNK(info.external_attr >> 16):  # checked whatever the host system: refusing costs nothing
            raise UnsafeInputError(f"{entry}: symbolic link")
        if info.flag_bits & _ENCRYPTED_FLAGS:
            raise UnsafeInputError(f"{entry}: encrypted entry")
        listed.append(_raw_name(info))
    if sorted(listed) != sorted(stream_names):
        raise UnsafeInputError(
            "archive refused: its central directory lists other entries than its body holds"
        )


def _check_placement(tail: bytes, archive_size: int, limit: int) -> None:
    base = archive_size - len(tail)  # archive offset of tail[0]
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


def _find_end_record(tail: bytes) -> int:
    """Offset of the end-of-central-directory record whose comment ends exactly at the end of the archive."""
    lowest = max(0, len(tail) - _EOCD.size - 0xFFFF)
    stop = len(tail) - _EOCD.size + 4
    while (found := tail.rfind(b"PK\x05\x06", lowest, stop)) >= 0:
        (comment_size,) = struct.unpack_from("<H", tail, found + 20)
        if found + _EOCD.size + comment_size == len(tail):
            return found
        stop = found + 3
    raise IntegrityError("archive has no end record: truncated, not a ZIP, or bytes after its end")


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    """The name as stored (zipfile decodes it by the UTF-8 flag, UTF-8 or cp437)."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & _UTF8_FLAG else "cp437")
