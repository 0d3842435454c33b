"""An archive's members in its file document: one line each, read back exactly, in bounded memory."""

from __future__ import annotations

import hashlib
import json
import tracemalloc

import pytest

from fusion_extract.chain.ledger.codec import file_from_doc, file_to_doc
from fusion_extract.chain.ledger.records import (
    FileRecord,
    FileState,
    KeptMembers,
    Member,
    StagedMember,
    Unit,
    UnitState,
)
from fusion_extract.chain.ledger.store import encode
from fusion_extract.errors import IntegrityError
from tests.clocks import EPOCH

MEMBERS = 50_000


def staged(index: int, rows: int | None = 3) -> StagedMember:
    digest = hashlib.sha256(str(index).encode()).hexdigest()
    member = Member(f"TINY_{index}.csv", 60 + index % 7, digest, rows)
    return StagedMember(member, f"{index:032x}", "1B2M2Y8AsgTpgAmY7PhCfg==")


def unpacking(members: int) -> FileRecord:
    units = (Unit(0, members, UnitState.DONE, staged=tuple(staged(i) for i in range(members))),)
    return FileRecord("r1", "a_1.zip", FileState.UNPACKING, EPOCH, units=units)


def test_an_archive_of_50000_members_makes_a_file_document_of_a_line_per_member_read_back_exactly() -> None:
    # Given the record of an archive whose 50,000 tiny members are staged
    record = unpacking(MEMBERS)

    # When it is written and read back
    written = encode(file_to_doc(record))
    back = file_from_doc(json.loads(written))

    # Then it is the same record, each member one line of text (about 170 bytes, not an object of six keys)
    assert back == record
    assert json.loads(written)["units"][0]["staged"][1].split("\t")[:4] == [
        "TINY_1.csv",
        "61",
        staged(1).member.sha256,
        "3",
    ]
    assert len(written) < 200 * MEMBERS


def test_writing_the_document_of_50000_members_holds_little_more_than_the_document_itself() -> None:
    # Given the record of an archive of 50,000 staged members, as its document
    doc = file_to_doc(unpacking(MEMBERS))

    # When it is encoded (indented, key-sorted JSON)
    tracemalloc.start()
    try:
        written = encode(doc)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Then the encoding never held much more than its text and its bytes (members as objects, an indented
    # encoding holds a few pieces per field: six times as much)
    assert peak < 3 * len(written)


def test_reading_the_record_of_50000_members_keeps_their_lines_and_writes_them_back_as_they_were() -> None:
    # Given the document of an archive of 50,000 staged members
    written = encode(file_to_doc(unpacking(MEMBERS)))
    doc = json.loads(written)

    # When it is read
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        record = file_from_doc(doc)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    # Then it holds about its lines (an object per member held 2.8 times the document), each member read
    # when asked for, and written back it is the same document
    assert held < 1.6 * len(written), (held, len(written))
    assert record.units[0].staged[7] == staged(7)
    assert [s.member.path for s in record.units[0].staged[:2]] == ["TINY_0.csv", "TINY_1.csv"]
    assert encode(file_to_doc(record)) == written


def test_members_recorded_before_they_were_lines_are_read_as_they_were() -> None:
    # Given a file document written before members were lines: v1, each member an object
    record = unpacking(2).but(members=(Member("m.csv", 5, "a" * 64, None),))
    doc = json.loads(encode(file_to_doc(record)))
    doc["v"] = 1
    doc["members"] = [{"path": "m.csv", "size": 5, "sha256": "a" * 64, "rows": None}]
    doc["units"][0]["staged"] = [
        {"path": s.member.path, "size": s.member.size, "sha256": s.member.sha256, "rows": 3, "etag": s.etag,
         "md5": s.md5}
        for s in record.units[0].staged
    ]  # fmt: skip

    # When it is read, Then it is the record it was
    assert file_from_doc(doc) == record


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("m.csv\t5\t" + "a" * 64 + "\t3", "must be 6 fields"),  # no ETag
        ("m.csv\t-5\t" + "a" * 64 + "\t3\tetag\t", "size must be a whole number"),
        ("m.csv\t5\t" + "a" * 64 + "\tx\tetag\t", "rows must be a whole number"),
        ("m.csv\t5\t" + "a" * 64 + "\t3\t\t", "ETag is missing"),
    ],
    ids=["too-few-fields", "negative-size", "rows-not-a-number", "no-etag"],
)
def test_a_member_line_that_does_not_fit_is_refused_naming_the_member(line: str, problem: str) -> None:
    # Given a file document whose staged member's line was damaged
    doc = json.loads(encode(file_to_doc(unpacking(1))))
    doc["units"][0]["staged"][0] = line

    # When it is read, Then IntegrityError names the member's place and what is wrong
    with pytest.raises(IntegrityError, match=rf"units\[0\]: staged\[0\].*{problem}"):
        file_from_doc(doc, "ledger document f.json")


def test_a_member_whose_field_holds_a_tab_is_never_written_as_a_line() -> None:
    # Given a staged member whose ETag holds a tab (no store gives one; a line could not tell its fields)
    odd = StagedMember(Member("m.csv", 5, "a" * 64, None), "et\tag", None)
    record = unpacking(0).but(units=(Unit(0, 1, UnitState.DONE, staged=(odd,)),))

    # When its record is written, Then IntegrityError refuses it rather than write a line read otherwise
    with pytest.raises(IntegrityError, match=r"'m\.csv' cannot be recorded"):
        file_to_doc(record)


def kept_unit(promoted: int = 0) -> Unit:
    kept = KeptMembers(claim=3, count=12_500, size=900_000, sha256="c" * 64)
    return Unit(0, 12_500, UnitState.DONE, kept=kept, promoted=promoted)


def test_a_unit_whose_members_are_kept_elsewhere_is_recorded_by_reference_and_read_back() -> None:
    # Given the record of an archive whose unit's 12,500 staged members are kept in an object of its own
    record = unpacking(0).but(units=(kept_unit(promoted=64),))

    # When it is written and read back, Then it is the same record, its document a few hundred bytes
    written = encode(file_to_doc(record))
    assert file_from_doc(json.loads(written)) == record
    assert len(written) < 1024


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"staged": ["m.csv\t5\t" + "a" * 64 + "\t3\tetag\t"]}, "both held and kept"),
        ({"promoted": 12_501}, "12501 members promoted of 12500"),
        ({"kept": {"claim": 3, "count": 1, "size": 1, "sha256": "C" * 64}}, "sha256 must be 64 lower-case"),
    ],
    ids=["held-and-kept", "promoted-past-kept", "digest-not-hex"],
)
def test_a_kept_reference_that_does_not_fit_is_refused(change: dict[str, object], problem: str) -> None:
    # Given the document of a unit whose members are kept elsewhere, damaged
    doc = json.loads(encode(file_to_doc(unpacking(0).but(units=(kept_unit(),)))))
    doc["units"][0].update(change)

    # When it is read, Then IntegrityError names the unit and what is wrong
    with pytest.raises(IntegrityError, match=rf"units\[0\].*{problem}"):
        file_from_doc(doc, "ledger document f.json")
