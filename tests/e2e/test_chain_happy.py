"""End to end, through the fdk runtime and the emulators: runs that land."""

import json
from dataclasses import replace
from typing import Any

from fusion_extract.chain.ledger.records import RunState
from tests.e2e.landing import QUICK, assert_every_member_verifies, landed_manifest
from tests.emulators.chain import CLIENT_SECRET


def test_chain_when_scheduled_full_extract_lands_every_chunk_with_manifest(make_chain):
    # Given an extract of three chunks and its schedule
    chain = make_chain()
    chain.fusion.define_extract("Sales", replace(QUICK, chunks=3, rows_per_chunk=40))
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
    assert manifest["checks"] == {"fusion_manifest": "verified", "row_counts": "verified", "notes": []}
    assert_every_member_verifies(chain, manifest)
    assert [a["event"] for a in chain.alerts] == ["landed"]
    assert not list(chain.landed_path("_staging").rglob("*.csv"))


def test_chain_when_incremental_run_invoked_by_hand_lands_json_members(make_chain):
    # Given an incremental extract producing JSON
    chain = make_chain()
    chain.fusion.define_extract("Orders", replace(QUICK, chunks=2, rows_per_chunk=25, format="json"))

    # When an operator runs it with fn invoke
    answer = chain.invoke("submit", {"extract": "Orders", "mode": "incremental"})
    run = chain.wait_for_final_run("Orders")

    # Then the job was an incremental one and its JSON members landed and verify
    assert answer["outcome"] == "submitted"
    assert run.state is RunState.LANDED and run.mode == "incremental"
    job = chain.fusion.job(run.job_id)
    assert "Incremental Data Extract" in json.dumps(job.request)
    _, manifest = landed_manifest(chain, run)
    assert manifest["totals"]["rows"] == 50
    assert_every_member_verifies(chain, manifest)


def test_chain_when_job_has_no_output_lands_an_empty_manifest(make_chain):
    # Given an extract where nothing changed since the last run
    chain = make_chain()
    chain.fusion.define_extract("Quiet", replace(QUICK, zero_files=True))

    # When it runs
    chain.invoke("submit", {"extract": "Quiet", "mode": "incremental"})
    run = chain.wait_for_final_run("Quiet")

    # Then the run landed with an empty manifest and _SUCCESS
    assert run.state is RunState.LANDED
    folder, manifest = landed_manifest(chain, run)
    assert manifest["files"] == [] and manifest["totals"]["files"] == 0
    assert chain.landed_path(f"{folder}/_SUCCESS").exists()


def test_chain_when_many_chunks_fans_out_in_batches_and_lands_all(make_chain):
    # Given an extract of more chunks than the fan-out sends messages (batches travel together)
    chain = make_chain()
    chain.fusion.define_extract("Big", replace(QUICK, chunks=52, rows_per_chunk=3, page_size=10))

    # When it runs
    chain.invoke("submit", {"extract": "Big", "mode": "full"})
    run = chain.wait_for_final_run("Big", timeout=240)

    # Then all 52 archives and the Fusion manifest landed, each member once
    assert run.state is RunState.LANDED
    _, manifest = landed_manifest(chain, run)
    zips = [f for f in manifest["files"] if f["name"].endswith(".zip")]
    assert len(zips) == 52 and manifest["totals"]["rows"] == 156
    transfer_messages = [d for d in chain.ons.deliveries if d.topic_id == chain.topics["transfer"]]
    assert len({d.message_id for d in transfer_messages}) < 53 + 10
    assert_every_member_verifies(chain, manifest)


def test_chain_when_relanding_a_succeeded_job_lands_it_again_without_a_new_job(make_chain):
    # Given a run that landed
    chain = make_chain()
    chain.fusion.define_extract("Sales", replace(QUICK, chunks=2))
    chain.invoke("submit", {"extract": "Sales", "mode": "full"})
    first = chain.wait_for_final_run("Sales")

    # When an operator re-lands its job
    answer = chain.invoke(
        "submit", {"kind": "reland", "extract": "Sales", "job_id": first.job_id, "mode": "full"}
    )
    second = chain.wait_for_final_run("Sales", count=2)

    # Then the files landed again under the same job folder, and Fusion ran no second job
    assert answer["outcome"] == "relanding"
    assert second.state is RunState.LANDED and second.reland and second.job_id == first.job_id
    assert len(chain.fusion.jobs) == 1
    _, manifest = landed_manifest(chain, second)
    assert manifest["reland"] is True
    assert_every_member_verifies(chain, manifest)


def test_chain_logs_name_the_run_on_every_line_about_it_and_never_a_secret(make_chain):
    # Given a run whose first job fails and is rerun by the chain, that lands, and a sweep after it
    chain = make_chain()
    chain.fusion.define_extract("Sales", replace(QUICK, chunks=2, fail_first_jobs=1))
    chain.invoke("submit", {"extract": "Sales", "mode": "full"})
    run = chain.wait_for_final_run("Sales")
    chain.sweep()
    chain.settle()

    # When we read every line the three functions logged
    lines = [line for log in (chain.workdir / "logs").glob("*.log") for line in log.read_text().splitlines()]
    entries = [json.loads(line) for line in lines]  # every line is JSON

    # Then every line about the run names it, its extract and the call: in each invocation that concerned
    # it, every line from the first that names it (the message, or the run once made) to the last
    about = [line for call in _by_call(entries).values() for line in _from_first_naming(call, run.run_id)]
    assert run.state is RunState.LANDED and {e["function"] for e in about} == {"submit", "poll", "transfer"}
    unnamed = [e for e in about if (e.get("run_id"), e.get("extract")) != (run.run_id, "Sales")]
    assert not unnamed, "\n".join(json.dumps(e) for e in unnamed)
    # And once its job is known, the job id too
    assert all(e.get("job_id") in run.job_ids for e in about if e.get("step") in ("poll", "transfer"))
    messages = {e["message"] for e in about}
    assert messages >= {
        "run started",
        "job submitted",
        "job failed; rerun scheduled",
        "file landed",
        "step done",
    }
    # And no line holds the client secret or any bearer token Fusion was shown
    tokens = {
        r.headers["authorization"].split()[-1]
        for r in chain.fusion.requests
        if r.headers.get("authorization", "").startswith("Bearer ")
    }
    text = "\n".join(lines)
    assert tokens and not [secret for secret in {CLIENT_SECRET, *tokens} if secret in text]


def _by_call(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each invocation's lines, in the order it wrote them."""
    calls: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry.get("call_id"):
            calls.setdefault(entry["call_id"], []).append(entry)
    return calls


def _from_first_naming(lines: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    """The lines from the first that names the run (a field, or its message) on; none if none does."""
    first = next((i for i, line in enumerate(lines) if run_id in json.dumps(line)), len(lines))
    return lines[first:]
