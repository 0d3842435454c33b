"""A member is verified as it flows: sizes, CRC-32, the deflate stream's end; a short read is truncation."""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator

import pytest

from fusion_extract.chain.transfer.archive import MemberStream, ZipLimits, read_directory
from fusion_extract.chain.transfer.zipdir import END_RECORDS
from fusion_extract.errors import IntegrityError, TransientError, UnsafeInputError
from tests.unit.hostile_zips import (
    LIMITS,
    RawMember,
    Reads,
    local_offset,
    raw_member,
    raw_zip,
    unpack_all,
    zip_bytes,
)

CSV = b"ID,NAME\n1,first\n2,second\n3,third\n"


# --- reading a member ---


def test_member_result_before_its_end_is_refused():
    # Given a member whose stream was left half read
    data = zip_bytes([("a.csv", CSV * 1000)], method=zipfile.ZIP_STORED)
    reads = Reads(data, chunk=1000)
    (entry,) = read_directory(reads, len(data), LIMITS)
    stream = MemberStream(reads, entry)
    next(iter(stream))

    # When its result is asked, Then there is none: only a member read to its end is verified
    with pytest.raises(RuntimeError, match="not read to its end"):
        stream.result()


def test_member_stream_reads_its_entry_with_one_ranged_read():
    # Given an archive of two members
    data = zip_bytes([("a.csv", CSV), ("b.csv", CSV)])
    reads = Reads(data)
    first, second = read_directory(reads, len(data), LIMITS)
    reads.ranges.clear()

    # When the first member is read
    assert b"".join(MemberStream(reads, first)) == CSV

    # Then one range was asked: from its local header to the next one
    assert reads.ranges == [(first.offset, second.offset)]


def test_reader_error_propagates_unchanged():
    # Given a ranged read that fails half way
    data = zip_bytes([("a.csv", CSV * 1000)], method=zipfile.ZIP_STORED)
    (entry,) = read_directory(Reads(data), len(data), LIMITS)

    def dropping(start: int, end: int) -> Iterator[bytes]:
        yield data[start : start + 5000]
        raise TransientError("connection dropped")

    # When the member is read, Then the source's retryable error surfaces
    with pytest.raises(TransientError, match="dropped"):
        b"".join(MemberStream(dropping, entry))


# --- integrity ---


@pytest.mark.parametrize("cut", [40, 5000], ids=["mid header", "mid member"])
def test_member_shorter_than_its_range_is_truncated(cut):
    # Given an object that ends before the member does (a ranged read served short)
    data = zip_bytes([("a.csv", CSV * 1000), ("b.csv", CSV)], method=zipfile.ZIP_STORED)
    (entry, _) = read_directory(Reads(data), len(data), LIMITS)
    short = Reads(data[:cut])

    # When it is read, Then it is truncated
    with pytest.raises(IntegrityError, match="truncated"):
        b"".join(MemberStream(short, entry))


def test_directory_read_served_short_is_truncated():
    data = zip_bytes([("a.csv", CSV)])

    with pytest.raises(IntegrityError, match="truncated"):
        read_directory(Reads(data[:-5]), len(data), LIMITS)


def test_truncated_in_the_central_directory_is_an_integrity_error():
    # Given an object cut inside the central directory
    data = zip_bytes([("a.csv", CSV)])[:-10]

    # When its directory is read, Then the missing end record is found
    with pytest.raises(IntegrityError, match="no end record"):
        read_directory(Reads(data), len(data), LIMITS)


def test_bytes_after_the_end_record_are_an_integrity_error():
    data = zip_bytes([("a.csv", CSV)]) + b"trailing"

    with pytest.raises(IntegrityError, match="bytes after its end"):
        read_directory(Reads(data), len(data), LIMITS)


def test_corrupt_stored_member_fails_its_crc():
    # Given a stored member with one byte changed
    data = zip_bytes([("a.csv", CSV)], method=zipfile.ZIP_STORED).replace(b"second", b"secane")

    # When it is unpacked, Then the CRC check fails at its end
    with pytest.raises(IntegrityError, match=r"'a\.csv' fails its CRC-32 check"):
        unpack_all(data)


def test_corrupt_deflate_data_is_an_integrity_error():
    # Given a deflated member whose first block header is invalid (block type 3 is reserved)
    data = bytearray(zip_bytes([("a.csv", CSV * 100)]))
    data[local_offset(bytes(data), 0) + 30 + len("a.csv")] = 0xFF

    # When it is unpacked, Then it is corrupt, naming the entry
    with pytest.raises(IntegrityError, match=r"'a\.csv' is corrupt"):
        unpack_all(bytes(data))


@pytest.mark.parametrize("boundary", [False, True], ids=["within a chunk", "on a chunk boundary"])
def test_deflate_stream_ending_before_its_compressed_size_is_refused_without_reading_the_rest(boundary):
    # Given 100 KB more compressed data after the deflate stream's end, within the declared compressed size
    member = raw_member("a.csv", CSV, tail=bytes(100_000))
    data = raw_zip([member])
    header = 30 + len("a.csv")
    chunk = header + len(member.data) - 100_000 if boundary else None  # the stream ends with the first chunk
    reads = Reads(data, chunk=chunk)
    (entry,) = read_directory(reads, len(data), LIMITS)
    reads.served = 0

    # When it is read, Then the bytes left over are refused, and no more chunks read
    with pytest.raises(IntegrityError, match="data after its deflate stream's end"):
        b"".join(MemberStream(reads, entry))
    if boundary:
        assert reads.served == chunk


@pytest.mark.parametrize("declared", [len(CSV) + 10, len(CSV) - 10], ids=["more", "less"])
def test_member_inflating_to_another_size_than_declared_is_an_integrity_error(declared):
    # Given a member (its CRC-32 right) declaring more, or fewer, bytes than it inflates to
    data = raw_zip([raw_member("a.csv", CSV, size=declared)])

    # When it is unpacked, Then the size is refused, whatever the CRC-32 says
    with pytest.raises(
        IntegrityError,
        match=r"'a\.csv' (inflates to 33 bytes, not 43|expands beyond its declared size of 23)",
    ):
        unpack_all(data)


def test_deflate_stream_going_on_past_its_compressed_size_is_truncated():
    # Given a deflate stream cut short of its end, its compressed size that of the cut
    whole = raw_member("a.csv", CSV * 100)
    data = raw_zip([RawMember("a.csv", whole.data[:-3], whole.size, whole.crc)])

    # When it is unpacked, Then it is truncated
    with pytest.raises(IntegrityError, match="truncated: its deflate stream goes on"):
        unpack_all(data)


def test_stored_member_declaring_two_sizes_is_refused_before_reading():
    # Given a stored member whose declared size differs from its compressed size
    data = raw_zip([RawMember("a.csv", CSV, len(CSV) + 1, zlib.crc32(CSV), zipfile.ZIP_STORED)])

    # When its directory is read, Then it is refused
    with pytest.raises(IntegrityError, match="stored, yet its compressed and full sizes differ"):
        read_directory(Reads(data), len(data), LIMITS)


def test_end_record_counting_other_entries_than_the_directory_holds_is_an_integrity_error():
    # Given an end record that counts one entry more than its directory holds
    data = bytearray(zip_bytes([("a.csv", CSV)]))
    struct.pack_into("<2H", data, len(data) - 22 + 8, 2, 2)

    # When its directory is read, Then it is refused
    with pytest.raises(IntegrityError, match="holds 1 entries, its end 2"):
        read_directory(Reads(bytes(data)), len(data), LIMITS)


@pytest.mark.parametrize("data", [b"", b"not a zip at all"], ids=["empty", "not a zip"])
def test_not_a_zip_is_an_integrity_error(data):
    with pytest.raises(IntegrityError, match="archive has no end record"):
        read_directory(Reads(data), len(data), LIMITS)


# --- where the directory sits ---


def _end_record(data: bytes | bytearray) -> int:
    return len(data) - 22  # these archives carry no comment


@pytest.mark.parametrize(
    ("field", "value"),
    [(4, 1), (6, 1), (8, 0)],
    ids=["this disk is not the first", "directory on another disk", "entries here differ from the total"],
)
def test_archive_spanning_several_disks_is_refused(field, value):
    # Given an otherwise sound archive whose end record speaks of another disk
    data = bytearray(zip_bytes([("a.csv", CSV), ("b.csv", CSV)]))
    struct.pack_into("<H", data, _end_record(data) + field, value)

    # When its directory is read, Then it is refused: a directory on one disk only is read
    with pytest.raises(IntegrityError, match="spans several disks"):
        read_directory(Reads(bytes(data)), len(data), LIMITS)


def test_directory_elsewhere_than_its_end_record_says_is_refused_even_beyond_the_tail():
    # Given an archive longer than the tail that is read, whose end record places the directory at the
    # archive's first byte, far before the tail, though the directory sits just before the end record
    data = bytearray(
        zip_bytes([("a.csv", bytes(2 * END_RECORDS)), ("b.csv", CSV)], method=zipfile.ZIP_STORED)
    )
    struct.pack_into("<L", data, _end_record(data) + 16, 0)
    limits = ZipLimits(max_entries=20, max_total_bytes=2**20, max_ratio=200, max_directory_bytes=1000)

    # When its directory is read, Then the misplacement is named, not taken for a directory too large
    with pytest.raises(IntegrityError, match="not where its end record says"):
        read_directory(Reads(bytes(data)), len(data), limits)


def test_total_size_limit_admits_exactly_the_limit_and_refuses_one_byte_more():
    # Given an archive of two members, 3000 bytes in all
    data = zip_bytes([("a.csv", bytes(1000)), ("b.csv", bytes(2000))], method=zipfile.ZIP_STORED)

    def limits(total: int) -> ZipLimits:
        return ZipLimits(max_entries=20, max_total_bytes=total, max_ratio=200)

    # When its directory is read with a limit of exactly 3000 bytes, Then both members pass
    assert [entry.size for entry in read_directory(Reads(data), len(data), limits(3000))] == [1000, 2000]

    # When it is read with a limit one byte lower, Then the member that crosses it is refused
    with pytest.raises(UnsafeInputError, match=r"'b\.csv' refused: archive expands beyond 2999 bytes"):
        read_directory(Reads(data), len(data), limits(2999))
