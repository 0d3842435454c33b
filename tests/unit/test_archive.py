"""read_directory and MemberStream: an output ZIP read by ranges, its directory first, then each member."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import struct
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusion_extract.chain.ledger.records import Member
from fusion_extract.chain.transfer.archive import (
    JSON_COUNT_LIMIT,
    ZipLimits,
    _CsvRows,
    member_path,
    read_directory,
)
from fusion_extract.chain.transfer.manifest import ExtractMetadata, parse_metadata
from fusion_extract.chain.transfer.zipdir import END_RECORDS
from fusion_extract.errors import ConfigError
from tests.unit.hostile_zips import (
    LIMITS,
    Reads,
    unpack_all,
    zip_bytes,
)

CSV = b"ID,NAME\n1,first\n2,second\n3,third\n"
JSON = json.dumps({"items": [{"id": 1}, {"id": 2}]}).encode()
METADATA = json.dumps(
    {
        "extract": "Sales",
        "view": "carriersExtract",
        "format": "csv",
        "files": [{"name": "carriersExtract.csv", "rows": 3}],
        "totalRows": 3,
    }
).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Unseekable:
    """A write-only sink: zipfile then streams with data descriptors, as a streamed download looks."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def streamed_zip_bytes(entries: list[tuple[str, bytes]]) -> bytes:
    sink = _Unseekable()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            with archive.open(name, "w", force_zip64=True) as member:
                member.write(data)
    return bytes(sink.data)


def zip64_bytes(entries: list[tuple[str, bytes]]) -> bytes:
    """zip64 sizes in every header, written to a seekable file (no data descriptors)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            with archive.open(name, "w", force_zip64=True) as member:
                member.write(data)
    return buffer.getvalue()


def with_zip64_end(data: bytes) -> bytes:
    """The same archive ending with zip64 end records, its classic end record pointing to them."""
    end = len(data) - 22
    _, _, _, on_disk, total, cd_size, cd_offset, _ = struct.unpack_from("<4s4H2LH", data, end)
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, on_disk, total, cd_size, cd_offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    classic = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:end] + record + locator + classic


# --- well-formed archives ---


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
def test_csv_and_json_members_are_read_whole_and_described(method):
    # Given an archive with a CSV and a JSON member
    data = zip_bytes([("VIEW.csv", CSV), ("VIEW.json", JSON)], method=method)

    # When it is unpacked
    unpacked = unpack_all(data)

    # Then each member is read whole, in order, and described by size, hash and rows
    assert unpacked.contents == {"VIEW.csv": CSV, "VIEW.json": JSON}
    assert unpacked.members == [
        Member("VIEW.csv", len(CSV), sha256(CSV), 3),
        Member("VIEW.json", len(JSON), sha256(JSON), 2),
    ]


def test_directory_describes_each_file_entry_as_declared():
    # Given an archive with a directory entry and two files
    data = zip_bytes([("data/", b""), ("data/a.csv", CSV), ("b.csv", CSV * 2)])
    infos = {info.filename: info for info in zipfile.ZipFile(io.BytesIO(data)).infolist()}

    # When its directory is read
    entries = read_directory(Reads(data), len(data), LIMITS)

    # Then the files are listed in order, numbered among files, as zipfile reads them
    assert [(e.index, e.path, e.raw_name) for e in entries] == [
        (0, "data/a.csv", b"data/a.csv"),
        (1, "b.csv", b"b.csv"),
    ]
    for entry in entries:
        info = infos[entry.path]
        declared = (info.header_offset, info.compress_size, info.file_size, info.CRC, info.compress_type)
        assert (entry.offset, entry.compressed, entry.size, entry.crc, entry.method) == declared
    assert entries[0].limit == entries[1].offset


def test_metadata_member_is_kept_whole_for_parsing():
    # Given the view's metadata member, small enough to keep whole
    data = zip_bytes([("carriersExtract.csv", CSV), ("carriersExtract_metadata.json", METADATA)])

    # When it is unpacked
    unpacked = unpack_all(data)

    # Then its bytes are at hand, and parse
    assert unpacked.json == {"carriersExtract.csv": None, "carriersExtract_metadata.json": METADATA}
    assert parse_metadata(METADATA) == ExtractMetadata(
        extract="Sales", view="carriersExtract", format="csv", files={"carriersExtract.csv": 3}, total_rows=3
    )


def test_zero_member_archive_has_no_entries():
    # Given an archive without members (an incremental extract with nothing new)
    data = zip_bytes([])

    # When its directory is read, Then there is nothing to unpack
    assert read_directory(Reads(data), len(data), LIMITS) == []


def test_directory_entries_are_skipped_and_paths_normalised():
    # Given explicit directory entries and a member named with '.' and '//' segments
    data = zip_bytes([("data/", b""), ("./data//VIEW.csv", CSV)])

    # When it is unpacked
    unpacked = unpack_all(data)

    # Then only the file is read, under its normalised path
    assert [member.path for member in unpacked.members] == ["data/VIEW.csv"]


def test_streamed_zip64_archive_with_data_descriptors_reads_back():
    # Given an archive written as a stream (data descriptors, zip64 sizes) and ending in zip64 end records
    data = with_zip64_end(streamed_zip_bytes([("a.csv", CSV), ("b.csv", CSV * 2)]))
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["a.csv", "b.csv"]  # still a valid ZIP

    # When it is unpacked
    unpacked = unpack_all(data, chunk=7)

    # Then both members arrive intact
    assert unpacked.contents == {"a.csv": CSV, "b.csv": CSV * 2}
    assert [member.rows for member in unpacked.members] == [3, 7]


def test_zip64_sizes_in_the_local_headers_read_back():
    # Given zip64 sizes in every header (0xFFFFFFFF in the 32-bit fields, the zip64 extra field holds them)
    data = with_zip64_end(zip64_bytes([("a.csv", CSV), ("b.csv", CSV * 2)]))
    header = zipfile.ZipFile(io.BytesIO(data)).infolist()[1].header_offset
    assert struct.unpack_from("<2L", data, header + 18) == (0xFFFFFFFF, 0xFFFFFFFF)

    # When it is unpacked, Then both members arrive intact
    assert unpack_all(data).contents == {"a.csv": CSV, "b.csv": CSV * 2}


def test_archive_longer_than_the_tail_reads_its_members_at_their_absolute_offsets():
    # Given an archive far longer than the tail buffer: a large first member, then small ones
    big = bytes(range(256)) * 1200  # 300 KiB, stored: the tail starts inside it
    data = zip_bytes([("big.bin", big), ("a.csv", CSV), ("b.csv", CSV * 2)], method=zipfile.ZIP_STORED)
    limits = ZipLimits(max_entries=20, max_total_bytes=2**20, max_ratio=200, max_directory_bytes=1024)
    tail = limits.max_directory_bytes + END_RECORDS
    assert len(data) > tail + 200_000

    # When its directory is read
    reads = Reads(data)
    entries = read_directory(reads, len(data), limits)

    # Then only the tail was read, and each entry's offset is the archive's own (as zipfile reads it whole)
    assert reads.ranges == [(len(data) - tail, len(data))]
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert [entry.offset for entry in entries] == [info.header_offset for info in infos]
    assert entries[1].offset > len(data) - tail > entries[0].offset == 0
    # And every member reads back from there
    assert unpack_all(data, limits).contents == {"big.bin": big, "a.csv": CSV, "b.csv": CSV * 2}


def test_names_not_utf8_are_read_as_cp437():
    # Given a member name written in the ZIP default code page (no UTF-8 flag)
    data = zip_bytes([("cafX.csv", CSV)]).replace(b"cafX.csv", "caf\u00e9.csv".encode("cp437"))

    # When it is unpacked, Then the name is decoded as cp437
    assert [member.path for member in unpack_all(data).members] == ["caf\u00e9.csv"]


@pytest.mark.parametrize(
    ("content", "rows"),
    [
        (b"", 0),
        (b"ID,NAME\n", 0),
        (b"ID,NAME\n1,a\n2,b", 2),
        (b"ID,NAME\r\n1,a\r\n2,b\r\n", 2),
        (b'ID,NOTE\n1,"two\nlines"\n2,"quote "" and\nnewline"\n', 2),
    ],
    ids=["empty", "header only", "no final newline", "crlf", "quoted newlines"],
)
def test_csv_rows_count_records_minus_header(content, rows):
    data = zip_bytes([("VIEW.csv", content)])

    assert unpack_all(data).members[0].rows == rows


def test_csv_rows_with_quoted_newlines_across_chunks_match_the_csv_module():
    # Given a CSV far larger than one chunk, with quoted fields spanning lines
    lines = [b"ID,NOTE\n"] + [b'%d,"note %d\nsecond line, with ""quotes"""\n' % (n, n) for n in range(20_000)]
    content = b"".join(lines)
    expected = sum(1 for _ in csv.reader(io.StringIO(content.decode()))) - 1
    data = zip_bytes([("VIEW.csv", content)], method=zipfile.ZIP_STORED)

    # When it is unpacked from one-byte-odd chunks
    unpacked = unpack_all(data, chunk=4099)

    # Then the count agrees with a real CSV parser
    assert unpacked.members[0].rows == expected == 20_000


def _rows_one_byte_at_a_time(content: bytes) -> int:
    """The rule, spelled out: a newline outside double quotes ends a record; the header is not one."""
    newlines, quoted = 0, False
    for byte in content:
        quoted ^= byte == ord('"')
        newlines += byte == ord("\n") and not quoted
    unterminated = bool(content) and not content.endswith(b"\n")
    return max(newlines + unterminated - 1, 0)


@settings(max_examples=300, deadline=None)
@given(
    content=st.lists(st.sampled_from([b'"', b'""', b"\n", b",", b"a", b"\r\n", b"abc,def"]), max_size=80),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_csv_row_count_is_exact_for_any_quoting_and_any_chunking(content, cuts):
    # Given any mix of quotes (paired or not), newlines and text, cut into chunks anywhere
    text = b"".join(content)
    bounds = sorted({0, len(text), *(cut % (len(text) + 1) for cut in cuts)})

    # When the rows are counted chunk by chunk
    counter = _CsvRows()
    for start, end in itertools.pairwise(bounds):
        counter.feed(text[start:end])

    # Then the count is the byte-by-byte rule's
    assert counter.rows == _rows_one_byte_at_a_time(text)


@pytest.mark.parametrize(
    ("content", "rows"),
    [(JSON, 2), (b'{"items": {}}', None), (b"[1, 2]", None), (b"{not json", None)],
    ids=["items", "items not a list", "not an object", "not json"],
)
def test_json_rows_count_items_or_none(content, rows):
    data = zip_bytes([("VIEW.json", content)])

    assert unpack_all(data).members[0].rows == rows


def test_json_member_too_big_to_count_cheaply_has_no_rows():
    # Given a JSON member declaring more than the counting limit
    content = json.dumps({"items": ["x" * 1000] * (JSON_COUNT_LIMIT // 1000 + 1)}).encode()
    data = zip_bytes([("VIEW.json", content)])

    # When it is unpacked
    unpacked = unpack_all(data)

    # Then it is read and hashed, but not kept, and its rows are unknown
    assert unpacked.members[0] == Member("VIEW.json", len(content), sha256(content), None)
    assert unpacked.json["VIEW.json"] is None


def test_member_that_compresses_well_but_is_small_is_not_a_bomb():
    # Given a 2 MB member of zeros (about 1000:1, but below max_ratio x the 64 KiB allowance)
    data = zip_bytes([("zeros.csv", bytes(2 * 2**20))])

    # When it is unpacked, Then it is accepted
    assert unpack_all(data).members[0].size == 2 * 2**20


# --- arguments ---


def test_zip_limits_not_positive_are_a_config_error():
    with pytest.raises(ConfigError, match="max_entries, max_ratio"):
        ZipLimits(max_entries=0, max_total_bytes=1, max_ratio=-1)


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("a.csv", "a.csv"),
        ("./a/./b.csv", "a/b.csv"),
        ("a//b.csv", "a/b.csv"),
        ("dir/", None),
        ("at 10:30.csv", "at 10:30.csv"),
    ],
)
def test_member_path_safe_names_are_normalised(name, path):
    assert member_path(name) == path
