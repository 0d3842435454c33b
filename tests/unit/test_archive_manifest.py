"""The `.mf` manifest and the metadata member: parsed strictly and tolerantly, and cross-checked."""

from __future__ import annotations

import json

import pytest

from fusion_extract.chain.archive import Member
from fusion_extract.chain.finish import cross_check
from fusion_extract.chain.manifest import ExtractMetadata, parse_manifest, parse_metadata, row_disagreements
from fusion_extract.chain.records import FileRecord, FileState, LandedMember
from fusion_extract.errors import IntegrityError
from tests.clocks import EPOCH

SHA_A = "a" * 64
SHA_B = "0123456789ABCDEF" * 4


def metadata(files: dict[str, int], total: int | None = None) -> ExtractMetadata:
    return ExtractMetadata("Sales", "carriers", "csv", files, total)


def member(path: str, rows: int | None) -> Member:
    return Member(path, 10, "f" * 64, rows)


# --- manifest ---


def test_parse_manifest_lines_map_zip_names_to_lower_case_sha256():
    # Given a manifest with CRLF endings and blank lines
    text = (
        f"\r\n44055_S_Sales_carriers_1.zip;1001;{SHA_A}\r\n\r\n44055_S_Sales_carriers_2.zip;1002;{SHA_B}\r\n"
    )

    # When it is parsed
    checksums = parse_manifest(text)

    # Then each ZIP maps to its checksum
    assert checksums == {
        "44055_S_Sales_carriers_1.zip": SHA_A,
        "44055_S_Sales_carriers_2.zip": SHA_B.lower(),
    }


@pytest.mark.parametrize(
    "bad",
    [
        "only.zip;1001",
        f"a.zip;1;{SHA_A};extra",
        f";1001;{SHA_A}",
        "a.zip;1001;not-a-digest",
        f"a.zip;1001;{SHA_A[:-1]}",
    ],
    ids=["two fields", "four fields", "no name", "not hex", "too short"],
)
def test_parse_manifest_bad_line_names_its_number(bad):
    text = f"good.zip;1000;{SHA_A}\n\n{bad}\n"

    with pytest.raises(IntegrityError, match="manifest line 3 "):
        parse_manifest(text)


def test_parse_manifest_same_zip_twice_is_an_integrity_error():
    text = f"a.zip;1;{SHA_A}\na.zip;2;{SHA_B}\n"

    with pytest.raises(IntegrityError, match=r"line 2 lists 'a\.zip' a second time"):
        parse_manifest(text)


def test_parse_manifest_empty_text_lists_nothing():
    assert parse_manifest("\n \n") == {}


# --- metadata ---


def test_parse_metadata_known_shape_gives_files_and_total():
    document = {
        "extract": "Sales",
        "view": "carriers",
        "format": "csv",
        "files": [{"name": "carriers_1.csv", "rows": 2}, {"name": "carriers_2.csv", "rows": 0}],
        "totalRows": 2,
    }

    parsed = parse_metadata(json.dumps(document).encode())

    assert parsed == metadata({"carriers_1.csv": 2, "carriers_2.csv": 0}, total=2)


def test_parse_metadata_optional_fields_absent_are_none():
    parsed = parse_metadata('{"files": []}')

    assert parsed == ExtractMetadata(None, None, None, {}, None)


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '{"view": "carriers"}',
        '{"files": {}}',
        '{"files": [{"name": "a.csv"}]}',
        '{"files": [{"name": "a.csv", "rows": "2"}]}',
        '{"files": [{"name": "a.csv", "rows": true}]}',
        '{"files": [{"name": "a.csv", "rows": -1}]}',
        '{"files": [], "totalRows": 1.5}',
    ],
    ids=[
        "not json",
        "not an object",
        "no files",
        "files not a list",
        "no rows",
        "rows a string",
        "rows a bool",
        "rows negative",
        "total not whole",
    ],
)
def test_parse_metadata_unknown_shape_is_none(text):
    assert parse_metadata(text) is None


# --- cross-check ---


def test_row_disagreements_when_rows_agree_is_empty():
    # Given metadata and the members of every ZIP of the run, one matched by base name
    meta = metadata({"carriers_1.csv": 2, "carriers_2.csv": 5}, total=7)
    members = [
        member("carriers_1.csv", 2),
        member("out/carriers_2.csv", 5),
        member("carriers_metadata.json", None),
    ]

    # Then nothing disagrees (the metadata member itself is not data)
    assert row_disagreements(meta, members) == []


def test_row_disagreements_name_every_difference():
    # Given metadata that disagrees with the files in every way at once
    meta = metadata({"a.csv": 2, "missing.csv": 1}, total=10)
    members = [member("a.csv", 3), member("extra.json", 4)]

    # When cross-checked
    problems = row_disagreements(meta, members)

    # Then each disagreement is named
    assert problems == [
        "'a.csv': metadata says 2 rows, the file has 3",
        "metadata lists 'missing.csv' (1 rows) but no such file was extracted",
        "'extra.json' is not listed in the metadata",
        "metadata totalRows is 10, its files add up to 3",
    ]


def test_row_disagreements_uncounted_member_is_not_compared():
    # Given a JSON member too large to count
    meta = metadata({"big.json": 1_000_000})

    # Then its unknown count is not a disagreement
    assert row_disagreements(meta, [member("big.json", None)]) == []


def test_row_disagreements_ambiguous_base_name_does_not_match():
    # Given two members that share a base name in different folders
    meta = metadata({"a.csv": 1})
    members = [member("x/a.csv", 1), member("y/a.csv", 1)]

    # Then neither is assumed to be the listed file
    assert (
        row_disagreements(meta, members)[0]
        == "metadata lists 'a.csv' (1 rows) but no such file was extracted"
    )


def test_finish_cross_check_fails_a_run_whose_row_counts_disagree_with_the_metadata():
    # Given a landed archive whose metadata says 3 rows where its data file has 2
    metadata = {"extract": "Sales", "view": "v", "format": "csv", "files": {"v_1.csv": 3}, "total_rows": 3}
    landed = FileRecord(
        "r1",
        "a_1.zip",
        FileState.LANDED,
        EPOCH,
        sha256="a" * 64,
        members=(LandedMember("v_1.csv", 10, "b" * 64, rows=2), LandedMember("v_metadata.json", 5, "c" * 64)),
        metadata=metadata,
    )

    # When the run's files are cross-checked, Then the disagreement is named
    assert cross_check([landed]) == ["'v_1.csv': metadata says 3 rows, the file has 2"]
    # And when the counts agree, there is nothing to say
    agreeing = landed.but(metadata={**metadata, "files": {"v_1.csv": 2}, "total_rows": 2})
    assert cross_check([agreeing]) == []
