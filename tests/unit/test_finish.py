"""What finishing checks before `_SUCCESS` (chain/transfer/finish.py): no two files of a run at one path."""

from fusion_extract.chain.ledger.records import FileRecord, FileState, Member
from fusion_extract.chain.transfer.finish import collisions
from tests.clocks import EPOCH

DIGEST = "0" * 64


def landed(name: str, *members: str, manifest: dict[str, str] | None = None) -> FileRecord:
    return FileRecord(
        "r1",
        name,
        FileState.LANDED,
        EPOCH,
        members=tuple(Member(path, 1, DIGEST) for path in members),
        manifest=manifest,
    )


def test_collisions_count_fusions_manifest_at_its_own_name_and_an_archive_at_its_members_only():
    # Given Fusion's .mf landed under its own name, an archive holding a member named like it, and another
    # archive holding a member named like the first archive
    files = [
        landed("MANIFEST_1.mf", manifest={"a.zip": DIGEST, "b.zip": DIGEST}),
        landed("a.zip", "MANIFEST_1.mf"),
        landed("b.zip", "a.zip"),
    ]

    # When the run's files are checked for paths landed twice
    found = collisions(files)

    # Then the member named like the .mf collides with it, naming both files; the member named like an archive
    # does not (an archive lands its members, never itself)
    assert found == ["MANIFEST_1.mf is landed by both MANIFEST_1.mf and a.zip"]


def test_collisions_none_when_every_path_is_landed_once():
    # Given a .mf and two archives whose members all differ; When checked, Then nothing collides
    files = [landed("m.mf", manifest={}), landed("a.zip", "x.csv"), landed("b.zip", "y.csv", "z.csv")]
    assert collisions(files) == []
