"""A unit reads only its own run of the central directory: the planner, which read the whole directory,
records where the unit's records lie and a digest of the entries they gave; what the unit reads must give
those entries exactly, or it is refused as corrupt input (never read as other members)."""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import zipfile

import pytest

from fusion_extract.chain.ledger.codec import file_from_doc, file_to_doc
from fusion_extract.chain.ledger.records import DirectorySlice, FileRecord, FileState, Unit
from fusion_extract.chain.ledger.store import encode
from fusion_extract.chain.transfer.zipdir import (
    ZipLimits,
    directory_slice,
    read_directory,
    read_slice,
)
from fusion_extract.errors import IntegrityError
from tests.clocks import EPOCH
from tests.unit.hostile_zips import Reads, central_offsets, zip_bytes

LIMITS = ZipLimits(max_entries=1000, max_total_bytes=2**30, max_ratio=200)
CSV = b"ID,AMOUNT\n1,2.50\n"


def archive(members: int) -> bytes:
    return zip_bytes([(f"TINY_{index}.csv", CSV + b"%d\n" % index) for index in range(members)])


def test_each_unit_reads_its_run_of_the_directory_alone_and_gets_the_entries_the_whole_one_gave():
    # Given an archive of 40 members whose whole directory was read, split into four units of 10
    data = archive(40)
    entries = read_directory(Reads(data), len(data), LIMITS)
    directory = central_offsets(data)[0]

    for first in range(0, 40, 10):
        place = directory_slice(entries[first : first + 10])
        assert place is not None
        reads = Reads(data)

        # When the unit reads its members
        mine = read_slice(reads, len(data), place, first, 10, LIMITS)

        # Then it got the very entries the whole directory gave, from one read of its own records: a
        # quarter of the directory, nothing of the other units' or of the end records
        assert mine == entries[first : first + 10]
        assert reads.ranges == [(place.start, place.end)]
        assert directory <= place.start < place.end < len(data)
        assert reads.served < (len(data) - directory) / 3


def corrupt(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0x01
    return bytes(changed)


def planned(data: bytes, first: int, count: int) -> DirectorySlice:
    entries = read_directory(Reads(data), len(data), LIMITS)
    place = directory_slice(entries[first : first + count])
    assert place is not None
    return place


@pytest.mark.parametrize(
    "field_at",
    [16, 20, 42, 46],  # a record's CRC-32, its compressed size, its local header's offset, its name
    ids=["crc", "compressed size", "local header offset", "name"],
)
def test_a_slice_whose_bytes_changed_since_the_plan_is_refused(field_at):
    # Given the second unit's slice of an archive, and its bytes changed in one field of its first record
    data = archive(20)
    place = planned(data, 10, 10)
    changed = corrupt(data, place.start + field_at)

    # When the unit reads it, Then it is refused: those are not the members its archive was planned with
    with pytest.raises(IntegrityError, match="directory slice"):
        read_slice(Reads(changed), len(changed), place, 10, 10, LIMITS)


@pytest.mark.parametrize(
    "change",
    [
        {"first": 11},  # the unit's first member moved on by one, its slice not
        {"count": 9},  # a member fewer than its records
        {"count": 11},  # a member more than its records
    ],
)
def test_a_unit_whose_members_are_not_its_slices_is_refused(change):
    # Given the second unit's slice of 10 members, and the unit's members changed in its record
    data = archive(20)
    place = planned(data, 10, 10)
    unit = {"first": 10, "count": 10, **change}

    # When the unit reads it, Then it is refused, never read as other members
    with pytest.raises(IntegrityError, match="directory slice"):
        read_slice(Reads(data), len(data), place, unit["first"], unit["count"], LIMITS)


def test_a_slice_moved_by_whole_records_onto_other_members_is_refused():
    # Given the slice of members 10-14, and a slice of members 11-15 under the same digest (a ledger
    # record changed in its offsets alone): records that parse, of other members
    data = archive(20)
    place = planned(data, 10, 5)
    other = planned(data, 11, 5)
    moved = dataclasses.replace(place, start=other.start, end=other.end)

    # When the unit of members 10-14 reads it, Then it is refused
    with pytest.raises(IntegrityError, match="does not give the members"):
        read_slice(Reads(data), len(data), moved, 10, 5, LIMITS)


@pytest.mark.parametrize(
    "change",
    [
        {"start": 1},  # inside a record
        {"end": -1},  # a record cut short
        {"bound": 1},  # its last member's bytes allowed further than the archive says
        {"digest": "0" * 64},
    ],
)
def test_a_slice_changed_in_any_of_its_fields_is_refused(change):
    # Given the slice of members 10-19, one of its fields changed
    data = archive(20)
    place = planned(data, 10, 10)
    changed = dataclasses.replace(
        place, **{k: getattr(place, k) + v if k != "digest" else v for k, v in change.items()}
    )

    # When the unit reads it, Then it is refused as corrupt input
    with pytest.raises(IntegrityError, match="directory slice"):
        read_slice(Reads(data), len(data), changed, 10, 10, LIMITS)


@pytest.mark.parametrize(
    "place",
    [
        DirectorySlice(0, 10**9, 0, "0" * 64),  # past the archive's end
        DirectorySlice(-5, 10, 0, "0" * 64),
    ],
)
def test_a_slice_outside_its_archive_is_refused_before_anything_is_read(place):
    data = archive(4)
    reads = Reads(data)

    with pytest.raises(IntegrityError, match="outside its archive"):
        read_slice(reads, len(data), place, 0, 4, LIMITS)
    assert reads.ranges == []


def test_a_slice_longer_than_the_directory_limit_is_refused_before_anything_is_read():
    data = archive(20)
    place = planned(data, 0, 20)
    reads = Reads(data)

    with pytest.raises(IntegrityError, match="outside its archive"):
        read_slice(reads, len(data), place, 0, 20, dataclasses.replace(LIMITS, max_directory_bytes=100))
    assert reads.ranges == []


def reordered(data: bytes, order: list[int]) -> bytes:
    """The archive with its directory's records in another order (their members' bytes where they were)."""
    starts = central_offsets(data)
    records = [
        data[start : start + 46 + sum(struct.unpack_from("<3H", data, start + 28))] for start in starts
    ]
    end = starts[-1] + len(records[-1])
    return data[: starts[0]] + b"".join(records[i] for i in order) + data[end:]


def test_members_with_a_folder_record_among_them_have_no_slice():
    # Given an archive whose directory holds a folder's record between two members' (its local header
    # after both members': the members' bytes lie side by side)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as made:
        made.writestr("a.csv", CSV)
        made.writestr("b.csv", CSV)
        made.writestr(zipfile.ZipInfo("folder/"), b"")
    data = reordered(buffer.getvalue(), [0, 2, 1])
    entries = read_directory(Reads(data), len(data), LIMITS)
    assert [entry.path for entry in entries] == ["a.csv", "b.csv"]

    # Then a unit of both members reads the whole directory (its run would hold a third record); each
    # member alone has its run, and reads it right
    assert directory_slice(entries) is None
    for index, entry in enumerate(entries):
        place = directory_slice([entry])
        assert place is not None
        assert read_slice(Reads(data), len(data), place, index, 1, LIMITS) == [entry]


def test_members_whose_bytes_end_at_another_units_member_have_no_slice():
    # Given an archive whose directory lists its members in another order than their bytes (c, a, b)
    data = reordered(archive(3), [2, 0, 1])
    entries = read_directory(Reads(data), len(data), LIMITS)
    assert [entry.path for entry in entries] == ["TINY_2.csv", "TINY_0.csv", "TINY_1.csv"]

    # Then a unit of the first two (c, a) has no slice: a's bytes end where b's begin, outside its run,
    # and a slice would let them run on to c; a unit of the last two (a, b) has one, and reads them right
    assert directory_slice(entries[:2]) is None
    place = directory_slice(entries[1:])
    assert place is not None
    assert read_slice(Reads(data), len(data), place, 1, 2, LIMITS) == entries[1:]


def test_entries_made_by_hand_have_no_slice():
    data = archive(2)
    entries = read_directory(Reads(data), len(data), LIMITS)

    assert directory_slice([dataclasses.replace(entry, record=0, record_end=0) for entry in entries]) is None
    assert directory_slice([]) is None


def test_a_units_slice_is_kept_by_the_ledger_and_a_malformed_one_refused_when_read():
    # Given a file record whose unit has a slice
    place = DirectorySlice(100, 200, 90, "ab" * 32)
    record = FileRecord("r1", "a.zip", FileState.UNPACKING, EPOCH, units=(Unit(0, 5, directory=place),))

    # Then its document gives it back as it was
    assert file_from_doc(json.loads(encode(file_to_doc(record)))).units[0].directory == place

    # And a slice that ends where it starts is refused as the record is read
    doc = file_to_doc(record)
    doc["units"][0]["directory"]["end"] = 100
    with pytest.raises(IntegrityError, match="directory slice must end after it starts"):
        file_from_doc(doc)
