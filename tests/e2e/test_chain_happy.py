"""End to end, through the fdk runtime and the emulators: runs that land."""

import hashlib
import json

from fusion_extract.chain.ledger import RunState
from tests.emulators.fusion import ExtractScenario

QUICK = {"seconds_enqueued": 0.2, "seconds_running": 0.6}


def landed_manifest(chain, run):
    folder = f"landing/{run.extract}/dt={run.created_at:%Y-%m-%d}/run={run.job_id}"
    manifest = json.loads(chain.landed_path(f"{folder}/_manifest.json").read_text())
    return folder, manifest


def assert_every_member_verifies(chain, manifest):
    for file in manifest["files"]:
        for member in file["members"]:
            data = chain.landed_path(member["object"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == member["sha256"], member["object"]
            assert len(data) == member["size"]


def test_chain_when_scheduled_full_extract_lands_every_chunk_with_manifest(make_chain):
    # Given an extract of three chunks and its schedule
    chain = make_chain()
    chain.fusion.define_extract("Sales", ExtractScenario(chunks=3, rows_per_chunk=40, **QUICK))
    chain.schedule("Sales", "full")

    # When the schedule fires
    chain.fire("Sales")
    run = chain.wait_for_final_run("Sales")

    # Then the run landed: every member verifies against the manifest, _SUCCESS is there
    assert run.state is RunState.LANDED
    folder, manifest = landed_manifest(chain, run)
    assert chain.landed_path(f"{folder}/_SUCCESS").exists()
    assert manifest["mode"] == "full" and manifest["job_id"] == run.job_id
    assert sorted(f["name"].rsplit("_", 1)[-1] for f in manifest["files"] if f["name"].endswith(".zip")) == [
        "1.zip",
        "2.zip",
        "3.zip",
    ]
    assert manifest["totals"]["rows"] == 120
    assert manifest["checks"] == {"fusion_manifest": "verified", "row_counts": "verified"}
    assert_every_member_verifies(chain, manifest)
    assert [a["event"] for a in chain.alerts] == ["landed"]
    assert not list(chain.landed_path("_staging").rglob("*.csv"))
