"""What finishing checks and writes before `_SUCCESS` (chain/transfer/finish.py): no two files of a run at one
path; `_manifest.json` as docs/landing.md describes it."""

import json
from datetime import date, timedelta

from fusion_extract import __version__
from fusion_extract.chain.ledger.records import FileRecord, FileState, Member, Run, RunState
from fusion_extract.chain.transfer.finish import collisions, manifest
from fusion_extract.chain.transfer.layout import Layout
from fusion_extract.models import RunAtTimes
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


def test_manifest_json_holds_every_field_docs_landing_md_describes_from_the_run_and_its_records():
    # Given a landed re-land whose COMPLETED job was assumed to have succeeded, within a runAtTimes window,
    # its second job; Fusion's .mf, and two archives (one with a metadata member, one member of no row count)
    window = RunAtTimes(2, "HOUR", date(2026, 3, 1), date(2026, 3, 2), "0800", "2000")
    run = Run(
        "run-7", "Sales", "incremental", RunState.LANDED, EPOCH, EPOCH, EPOCH,
        run_at_times=window,
        job_id="44046", job_ids=("44045", "44046"), status="WARNING", assumed_complete=True, reland=True,
        landed_at=EPOCH + timedelta(minutes=7),
    )  # fmt: skip
    counted = Member("x.csv", 10, "1" * 64, rows=4)
    records = [
        landed("b.zip").but(size=300, sha256="b" * 64, metadata={"files": []}, members=(counted,)),
        landed("a.zip", "y.csv", "z.bin").but(size=200, sha256="a" * 64),
        landed("m.mf", manifest={"a.zip": "a" * 64}).but(size=90, sha256="c" * 64),
    ]
    layout = Layout("landing", "{prefix}/{extract}/run={job_id}", "_staging")

    # When its _manifest.json is written, with a note the cross-check made
    doc = json.loads(manifest(run, records, layout, ["m.mf: 'b.zip' is listed but not in the manifest"]))

    # Then it holds every field of the schema, the files in name order, each member with its object name
    def member(path: str, size: int, sha256: str, rows: int | None) -> dict[str, object]:
        return {"path": path, "object": f"landing/Sales/run=44046/{path}", "size": size, "sha256": sha256,
                "rows": rows}  # fmt: skip

    y_csv, z_bin = member("y.csv", 1, DIGEST, None), member("z.bin", 1, DIGEST, None)
    x_csv = member("x.csv", 10, "1" * 64, 4)

    assert doc == {
        "schema": 1,
        "product": "fusion-extract",
        "version": __version__,
        "run_id": "run-7",
        "extract": "Sales",
        "mode": "incremental",
        "job_id": "44046",
        "job_status": "WARNING",
        "job_completion": "assumed",
        "jobs_submitted": ["44045", "44046"],
        "reland": True,
        "window": {"started_at": EPOCH.isoformat(), "run_at_times": window.to_fusion()},
        "landed_at": (EPOCH + timedelta(minutes=7)).isoformat(),
        "files": [
            {"name": "a.zip", "size": 200, "sha256": "a" * 64, "members": [y_csv, z_bin]},
            {"name": "b.zip", "size": 300, "sha256": "b" * 64, "members": [x_csv]},
            {"name": "m.mf", "size": 90, "sha256": "c" * 64, "members": []},
        ],
        "totals": {"files": 3, "members": 3, "bytes": 12, "rows": 4},
        "checks": {
            "fusion_manifest": "disagrees on names (see notes)",
            "row_counts": "verified",
            "notes": ["m.mf: 'b.zip' is listed but not in the manifest"],
        },
    }


def test_manifest_json_of_a_confirmed_run_without_fusions_manifest_or_metadata_says_so():
    # Given a run whose job was confirmed, outside any window, and whose only file carried neither a .mf
    # nor a metadata member
    run = Run(
        "run-8", "Sales", "full", RunState.LANDED, EPOCH, EPOCH, EPOCH, job_id="44047", status="SUCCEEDED"
    )

    # When its _manifest.json is written
    doc = json.loads(manifest(run, [landed("a.zip", "y.csv")], Layout("l", "{job_id}", "_s"), []))

    # Then the job is confirmed, no window nor landing time is made up, and both checks say absent
    assert (doc["job_completion"], doc["window"]["run_at_times"], doc["landed_at"]) == (
        "confirmed",
        None,
        None,
    )
    assert doc["checks"] == {"fusion_manifest": "absent", "row_counts": "absent", "notes": []}


def test_manifest_json_of_a_run_whose_fusion_manifest_agrees_says_verified():
    # Given a run whose .mf agreed with the listing (no notes); When its _manifest.json is written
    run = Run("run-9", "Sales", "full", RunState.LANDED, EPOCH, EPOCH, EPOCH, job_id="44048")
    doc = json.loads(manifest(run, [landed("m.mf", manifest={})], Layout("l", "{job_id}", "_s"), []))

    # Then Fusion's manifest is verified
    assert doc["checks"]["fusion_manifest"] == "verified"
