"""What a name says a file is (chain/transfer/kinds.py): the one place the chain decides it."""

import pytest

from fusion_extract.chain.transfer.kinds import FileKind, MemberKind, file_kind, is_archive, member_kind


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("FscmTopModelAM.Sales-batch1.zip", FileKind.ARCHIVE),
        ("SALES.ZIP", FileKind.ARCHIVE),
        ("MANIFEST.MF", FileKind.MANIFEST),
        ("manifest.mf", FileKind.MANIFEST),
        ("notes.csv", FileKind.PLAIN),
        ("archive.zip.part", FileKind.PLAIN),
        ("zip", FileKind.PLAIN),
    ],
)
def test_file_kind_is_read_from_the_end_of_the_name_in_any_case(name, kind):
    # Given an output file's name; When its kind is asked; Then its ending decides, whatever its case
    assert file_kind(name) is kind
    assert is_archive(name) is (kind is FileKind.ARCHIVE)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("sales_metadata.json", MemberKind.METADATA),
        ("sales_METADATA.JSON", MemberKind.JSON),  # Fusion writes its metadata member's name exactly
        ("rows.CSV", MemberKind.CSV),
        ("dir/rows.csv", MemberKind.CSV),
        ("rows.Json", MemberKind.JSON),
        ("readme.txt", MemberKind.OTHER),
    ],
)
def test_member_kind_is_read_from_the_end_of_its_path(path, kind):
    # Given a member's path; When its kind is asked; Then its ending decides (the metadata name exactly)
    assert member_kind(path) is kind
