"""unpack: a streamed output ZIP is staged member by member, and verified as a whole before it returns."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import struct
import zipfile
from collections.abc import Iterable, Iterator

import pytest

from fusion_extract.chain.archive import JSON_COUNT_LIMIT, Member, ZipLimits, member_path, unpack
from fusion_extract.chain.manifest import ExtractMetadata, row_disagreements
from fusion_extract.errors import ConfigError, IntegrityError, TransientError, UnsafeInputError
from tests.unit.hostile_zips import BOMB_BYTES, LIMITS, RecordingStage, zip_bytes

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


def chunked(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def run(data: bytes | Iterable[bytes], stage=None, limits: ZipLimits = LIMITS, **expected):
    chunks = chunked(data) if isinstance(data, bytes) else data
    expected = {"expected_sha256": None, "expected_size": None, **expected}
    return unpack(chunks, limits=limits, stage=stage or RecordingStage(), **expected)


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
def test_unpack_csv_and_json_members_stages_each_and_describes_it(method):
    # Given an archive with a CSV and a JSON member
    data = zip_bytes([("VIEW.csv", CSV), ("VIEW.json", JSON)], method=method)
    stage = RecordingStage()

    # When it is unpacked
    result = run(data, stage)

    # Then each member is staged whole, in order, and described by size, hash and rows
    assert stage.completed == {"VIEW.csv": CSV, "VIEW.json": JSON}
    assert stage.started == ["VIEW.csv", "VIEW.json"]
    assert result.members == [
        Member("VIEW.csv", len(CSV), sha256(CSV), 3),
        Member("VIEW.json", len(JSON), sha256(JSON), 2),
    ]
    assert (result.archive_sha256, result.archive_size) == (sha256(data), len(data))


def test_unpack_when_checksum_and_size_match_returns_them():
    # Given the archive's listed checksum and size
    data = zip_bytes([("VIEW.csv", CSV)])

    # When it is unpacked against them (the listed hex may be upper case)
    result = run(data, expected_sha256=sha256(data).upper(), expected_size=len(data))

    # Then it verifies
    assert result.archive_sha256 == sha256(data)
    assert result.archive_size == len(data)


def test_unpack_metadata_member_is_staged_and_parsed():
    # Given a final chunk carrying the view's metadata member
    data = zip_bytes([("carriersExtract.csv", CSV), ("carriersExtract_metadata.json", METADATA)])
    stage = RecordingStage()

    # When it is unpacked
    result = run(data, stage)

    # Then the metadata is staged like any member, parsed, and agrees with the rows counted
    assert stage.completed["carriersExtract_metadata.json"] == METADATA
    assert result.metadata == ExtractMetadata(
        extract="Sales", view="carriersExtract", format="csv", files={"carriersExtract.csv": 3}, total_rows=3
    )
    assert row_disagreements(result.metadata, result.members) == []


def test_unpack_zero_member_archive_stages_nothing():
    # Given an archive without members (an incremental extract with nothing new)
    data = zip_bytes([])

    # When it is unpacked
    stage = RecordingStage()
    result = run(data, stage, expected_sha256=sha256(data), expected_size=len(data))

    # Then nothing is staged and the archive still verifies
    assert stage.started == []
    assert result.members == []
    assert result.metadata is None


def test_unpack_directory_entries_are_skipped_and_paths_normalised():
    # Given explicit directory entries and a member named with '.' and '//' segments
    data = zip_bytes([("data/", b""), ("./data//VIEW.csv", CSV)])
    stage = RecordingStage()

    # When it is unpacked
    result = run(data, stage)

    # Then only the file is staged, under its normalised path
    assert stage.started == ["data/VIEW.csv"]
    assert [member.path for member in result.members] == ["data/VIEW.csv"]


def test_unpack_streamed_zip64_archive_with_data_descriptors_reads_back():
    # Given an archive written as a stream (data descriptors, zip64 sizes) and ending in zip64 end records
    data = with_zip64_end(streamed_zip_bytes([("a.csv", CSV), ("b.csv", CSV * 2)]))
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["a.csv", "b.csv"]  # still a valid ZIP

    # When it is unpacked
    stage = RecordingStage()
    result = run(data, stage)

    # Then both members arrive intact
    assert stage.completed == {"a.csv": CSV, "b.csv": CSV * 2}
    assert [member.rows for member in result.members] == [3, 7]


def test_unpack_names_not_utf8_are_read_as_cp437():
    # Given a member name written in the ZIP default code page (no UTF-8 flag)
    data = zip_bytes([("cafX.csv", CSV)])
    cp437 = data.replace(b"cafX.csv", "caf\u00e9.csv".encode("cp437"))  # b"\x82": not valid UTF-8
    stage = RecordingStage()

    # When it is unpacked
    run(cp437, stage)

    # Then the name is decoded as cp437
    assert stage.started == ["caf\u00e9.csv"]


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
def test_unpack_csv_rows_count_records_minus_header(content, rows):
    # Given a CSV member
    data = zip_bytes([("VIEW.csv", content)])

    # When it is unpacked
    result = run(data)

    # Then its rows are its records minus the header
    assert result.members[0].rows == rows


def test_unpack_csv_rows_with_quoted_newlines_across_chunks_match_the_csv_module():
    # Given a CSV far larger than one decompressed chunk, with quoted fields spanning lines
    lines = [b"ID,NOTE\n"] + [b'%d,"note %d\nsecond line, with ""quotes"""\n' % (n, n) for n in range(20_000)]
    content = b"".join(lines)
    expected = sum(1 for _ in csv.reader(io.StringIO(content.decode()))) - 1
    data = zip_bytes([("VIEW.csv", content)], method=zipfile.ZIP_STORED)

    # When it is unpacked from one-byte-odd chunks
    result = run(chunked(data, 4099))

    # Then the count agrees with a real CSV parser
    assert result.members[0].rows == expected == 20_000


@pytest.mark.parametrize(
    ("content", "rows"),
    [(JSON, 2), (b'{"items": {}}', None), (b"[1, 2]", None), (b"{not json", None)],
    ids=["items", "items not a list", "not an object", "not json"],
)
def test_unpack_json_rows_count_items_or_none(content, rows):
    data = zip_bytes([("VIEW.json", content)])

    result = run(data)

    assert result.members[0].rows == rows


def test_unpack_json_member_too_big_to_count_cheaply_has_no_rows():
    # Given a JSON member larger than the counting limit
    content = json.dumps({"items": ["x" * 1000] * (JSON_COUNT_LIMIT // 1000 + 1)}).encode()
    data = zip_bytes([("VIEW.json", content)])

    # When it is unpacked
    result = run(data)

    # Then it is staged and hashed, but its rows are unknown
    assert result.members[0].size == len(content)
    assert result.members[0].rows is None


def test_unpack_member_that_compresses_well_but_is_small_is_not_a_bomb():
    # Given a 2 MB member of zeros (about 1000:1, but below max_ratio x the 64 KiB read allowance)
    data = zip_bytes([("zeros.csv", bytes(2 * 2**20))])

    # When it is unpacked
    result = run(data)

    # Then it is accepted
    assert result.members[0].size == 2 * 2**20


def test_unpack_large_member_arriving_in_one_big_chunk_is_not_mistaken_for_a_bomb():
    # Given a 16 MB stored member (1:1) downloaded as a single chunk, so it is read ahead all at once
    data = zip_bytes([("big.bin", bytes(16 * 2**20))], method=zipfile.ZIP_STORED)

    # When it is unpacked
    result = run([data])

    # Then the ratio estimate does not count it as expanding from nothing
    assert result.members[0].size == 16 * 2**20


# --- the stage callback ---


def test_unpack_when_stage_reads_nothing_drains_and_still_verifies():
    # Given a stage that ignores its chunks
    data = zip_bytes([("a.csv", CSV), ("b.csv", CSV)])

    # When it is unpacked
    result = run(data, lambda path, chunks: None)

    # Then every member was still read through, hashed and counted
    assert [(m.path, m.size, m.sha256) for m in result.members] == [
        ("a.csv", len(CSV), sha256(CSV)),
        ("b.csv", len(CSV), sha256(CSV)),
    ]


CORRUPT = zip_bytes([("a.csv", CSV), ("b.csv", CSV)], method=zipfile.ZIP_STORED).replace(
    b"second", b"secane", 1
)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (zip_bytes([("bomb.csv", bytes(BOMB_BYTES))]), UnsafeInputError, "zip bomb"),
        (CORRUPT, IntegrityError, "CRC-32"),
    ],
    ids=["bomb", "crc"],
)
def test_unpack_when_stage_swallows_the_error_still_raises(data, error, message):
    # Given a stage that catches every error while reading
    def careless(path: str, chunks: Iterator[bytes]) -> None:
        try:
            for _ in chunks:
                pass
        except Exception:
            pass

    # When it is unpacked, then the archive's error still ends it
    with pytest.raises(error, match=message):
        run(data, careless)


def test_unpack_when_stage_wraps_the_refusal_raises_the_refusal():
    # Given a stage that wraps errors in its own
    data = zip_bytes([("bomb.csv", bytes(BOMB_BYTES))])

    def wrapping(path: str, chunks: Iterator[bytes]) -> None:
        try:
            for _ in chunks:
                pass
        except Exception as exc:
            raise RuntimeError("upload aborted") from exc

    # When it is unpacked, then the archive's fault is what surfaces
    with pytest.raises(UnsafeInputError, match="zip bomb"):
        run(data, wrapping)


def test_unpack_when_stage_fails_its_error_propagates_unchanged():
    # Given a stage whose upload fails
    data = zip_bytes([("a.csv", CSV)])

    def failing(path: str, chunks: Iterator[bytes]) -> None:
        raise TransientError("object storage busy", status=503)

    # When it is unpacked, then that (retryable) error surfaces
    with pytest.raises(TransientError, match="busy"):
        run(data, failing)


def test_unpack_when_download_drops_its_error_propagates_unchanged():
    # Given a download that fails half way
    data = zip_bytes([("a.csv", CSV * 1000)], method=zipfile.ZIP_STORED)

    def dropping() -> Iterator[bytes]:
        yield data[:5000]
        raise TransientError("connection dropped")

    # When it is unpacked, then the source's retryable error surfaces and nothing completes staging
    stage = RecordingStage()
    with pytest.raises(TransientError, match="dropped"):
        run(dropping(), stage)
    assert stage.completed == {}


# --- integrity ---


def test_unpack_checksum_mismatch_names_expected_and_actual():
    # Given an archive and a listed checksum of something else
    data = zip_bytes([("a.csv", CSV)])
    listed = sha256(b"another file")

    # When it is unpacked, then it fails at the end naming both digests
    with pytest.raises(IntegrityError, match=f"expected {listed}, got {sha256(data)}"):
        run(data, expected_sha256=listed)


def test_unpack_shorter_than_listed_names_expected_and_actual():
    data = zip_bytes([("a.csv", CSV)])

    with pytest.raises(IntegrityError, match=f"expected {len(data) + 1} bytes, got {len(data)}"):
        run(data, expected_size=len(data) + 1)


def test_unpack_longer_than_listed_stops_as_soon_as_exceeded():
    # Given a listing that claims a smaller file than what arrives
    data = zip_bytes([("a.csv", CSV * 1000)], method=zipfile.ZIP_STORED)
    stage = RecordingStage()

    # When it is unpacked, then it stops at the excess, before the member completes staging
    with pytest.raises(IntegrityError, match=f"longer than the expected {len(data) // 2} bytes"):
        run(data, stage, expected_size=len(data) // 2)
    assert stage.started == ["a.csv"]
    assert stage.completed == {}


@pytest.mark.parametrize("cut", [0.5, 0.1], ids=["mid member", "mid header"])
def test_unpack_truncated_in_the_members_is_an_integrity_error(cut):
    # Given a download cut short inside the members
    data = zip_bytes([("a.csv", CSV * 1000), ("b.csv", CSV)], method=zipfile.ZIP_STORED)
    stage = RecordingStage()

    # When it is unpacked, then it is truncated, and the cut member never completes staging
    with pytest.raises(IntegrityError, match="truncated"):
        run(data[: int(len(data) * cut)], stage)
    assert "a.csv" not in stage.completed


def test_unpack_truncated_in_the_central_directory_is_an_integrity_error():
    # Given a download cut inside the central directory (every member already read)
    data = zip_bytes([("a.csv", CSV)])

    # When it is unpacked, then the missing end record is found before returning
    with pytest.raises(IntegrityError, match="no end record"):
        run(data[:-10])


def test_unpack_bytes_after_the_end_record_are_an_integrity_error():
    data = zip_bytes([("a.csv", CSV)])

    with pytest.raises(IntegrityError, match="bytes after its end"):
        run(data + b"trailing")


def test_unpack_corrupt_member_fails_its_crc():
    # Given a stored member with one byte changed
    data = zip_bytes([("a.csv", CSV)], method=zipfile.ZIP_STORED)
    corrupt = data.replace(b"second", b"secane")
    stage = RecordingStage()

    # When it is unpacked, then the CRC check fails and the member never completes staging
    with pytest.raises(IntegrityError, match=r"'a\.csv' fails its CRC-32 check"):
        run(corrupt, stage)
    assert stage.completed == {}


@pytest.mark.parametrize("data", [b"", b"not a zip at all"], ids=["empty", "not a zip"])
def test_unpack_not_a_zip_is_an_integrity_error(data):
    with pytest.raises(IntegrityError, match="archive is"):
        run(data)


# --- arguments ---


def test_zip_limits_not_positive_are_a_config_error():
    with pytest.raises(ConfigError, match="max_entries, max_ratio"):
        ZipLimits(max_entries=0, max_total_bytes=1, max_ratio=-1)


def test_unpack_expected_checksum_not_hex_is_refused_before_reading():
    # Given a source
    source = iter([b"PK"])

    # When the listed checksum is malformed, then it is refused up front, the source left unread
    with pytest.raises(IntegrityError, match="not 64 hex digits"):
        unpack(source, expected_sha256="sha-256=abc", expected_size=None, limits=LIMITS, stage=print)
    assert next(source) == b"PK"


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
