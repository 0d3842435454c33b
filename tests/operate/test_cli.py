"""`fusion-extract`: every command against the emulators, through the real SDK and the functions under fdk."""

from __future__ import annotations

import json
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from fusion_extract.chain.ledger.records import Run, RunState
from fusion_extract.chain.ledger.store import Ledger
from fusion_extract.cli.exits import Exit
from fusion_extract.ports import ObjectStore
from tests.emulators.oci.buckets import Conditions
from tests.emulators.oci.direct import SeedBucket
from tests.operate.conftest import CATALOG, Operated


def _landed_sales(operated: Operated) -> dict[str, Any]:
    """A Sales run, submitted through the CLI and followed to its end."""
    answer = operated.cli_json("submit", "Sales", "--mode", "full")
    assert answer["outcome"] in ("submitted", "already_running"), answer
    run = operated.chain.wait_for_final_run("Sales")
    return {"run_id": run.run_id, "job_id": run.job_id}


@pytest.fixture(scope="module")
def sales(operated: Operated) -> dict[str, Any]:
    return _landed_sales(operated)


# -- doctor -----------------------------------------------------------------------------------------------


def test_doctor_against_the_emulators_passes_every_check(operated: Operated) -> None:
    # Given the local chain as `make emulator` runs it, When the doctor runs
    result = operated.cli("--json", "doctor")

    # Then every check passes, in order, and the exit code is 0
    report = json.loads(result.output)
    assert [(c["check"], c["status"]) for c in report["checks"]] == [
        (name, "pass") for name in ("config", "vault", "token", "batch", "bucket", "topics", "schedules")
    ]
    assert result.exit_code == 0 and report["ok"] is True


def _doctor(operated: Operated, endpoints: Path) -> tuple[int, dict[str, dict[str, str]]]:
    result = operated.cli("--json", "doctor", endpoints=endpoints)
    return result.exit_code, {c["check"]: c for c in json.loads(result.output)["checks"]}


def test_doctor_when_a_required_key_is_missing_fails_config_and_skips_the_rest(
    operated: Operated, tmp_path: Path
) -> None:
    # Given a configuration without BUCKET_NAME
    endpoints = operated.broken(tmp_path, lambda doc: doc["config"].pop("BUCKET_NAME"))

    # When the doctor runs, Then config fails naming the key, with its fix, and the rest is skipped
    code, checks = _doctor(operated, endpoints)
    assert code == 3  # the target's configuration is not usable
    assert "BUCKET_NAME is missing" in checks["config"]["detail"] and checks["config"]["fix"]
    assert {checks[name]["status"] for name in checks if name != "config"} == {"skipped"}


def test_doctor_when_the_secret_is_not_json_fails_vault(operated: Operated, tmp_path: Path) -> None:
    # Given a credentials secret that is not the JSON the functions read
    secret_id = operated.chain.oci.put_secret("doctor-not-json", b"client_id=x")
    endpoints = operated.broken(tmp_path, lambda doc: doc["config"].update(CREDENTIALS_SECRET_ID=secret_id))

    # When the doctor runs, Then vault fails with the fix, and the token and Batch checks are skipped
    code, checks = _doctor(operated, endpoints)
    assert code == 3 and checks["vault"]["status"] == "fail"
    assert "client_id, client_secret" in checks["vault"]["fix"]
    assert (checks["token"]["status"], checks["batch"]["status"], checks["bucket"]["status"]) == (
        "skipped",
        "skipped",
        "pass",
    )


def test_doctor_when_idcs_refuses_the_client_fails_token(operated: Operated, tmp_path: Path) -> None:
    # Given well-formed credentials IDCS does not know
    wrong = json.dumps({"client_id": "fusion-extract-client", "client_secret": "not-the-secret"}).encode()
    secret_id = operated.chain.oci.put_secret("doctor-wrong-secret", wrong)
    endpoints = operated.broken(tmp_path, lambda doc: doc["config"].update(CREDENTIALS_SECRET_ID=secret_id))

    # When the doctor runs, Then vault passes and token fails with its fix
    code, checks = _doctor(operated, endpoints)
    assert code == 3 and checks["vault"]["status"] == "pass"
    assert checks["token"]["status"] == "fail" and "client's id and secret" in checks["token"]["fix"]


def test_doctor_when_batch_processing_is_not_enabled_says_so(operated: Operated) -> None:
    # Given a pod whose Batch Processing API answers 404 "not enabled"
    operated.chain.fusion.fail_next(
        r"/jobRequests", 404, count=4, body=b"The requested feature is not enabled"
    )

    # When the doctor runs
    code, checks = _doctor(operated, operated.endpoints)

    # Then the batch check fails with the not-enabled message and its own fix
    assert code == 3 and checks["batch"]["status"] == "fail"
    assert "not enabled on this pod" in checks["batch"]["detail"]
    assert "enable Data Extraction in Setup Manager" in checks["batch"]["fix"]


def test_doctor_when_the_bucket_refuses_writes_fails_bucket(operated: Operated) -> None:
    # Given Object Storage refusing the probe's write (a policy without write)
    operated.chain.oci.inject_fault(
        "PUT", r"/n/[^/]+/b/[^/]+/o/_state%2Fdoctor%2F.*", 404, "NotAuthorizedOrNotFound"
    )

    # When the doctor runs, Then bucket fails naming the probe, with the policy fix
    code, checks = _doctor(operated, operated.endpoints)
    assert code == 3 and checks["bucket"]["status"] == "fail"
    assert (
        "_state/doctor/probe-" in checks["bucket"]["detail"] and "manage objects" in checks["bucket"]["fix"]
    )


def test_doctor_when_a_topic_does_not_exist_fails_topics_without_publishing(
    operated: Operated, tmp_path: Path
) -> None:
    # Given an alerts topic OCID that names no topic
    missing = "ocid1.onstopic.oc1.emu.doesnotexist"
    endpoints = operated.broken(tmp_path, lambda doc: doc["config"].update(ALERTS_TOPIC_ID=missing))
    published = len(operated.chain.ons.published)

    # When the doctor runs, Then topics fails naming the key, and nothing was published anywhere
    code, checks = _doctor(operated, endpoints)
    assert code == 3 and checks["topics"]["status"] == "fail"
    assert "ALERTS_TOPIC_ID" in checks["topics"]["detail"]
    assert len(operated.chain.ons.published) == published


def test_doctor_when_a_catalog_extract_has_no_schedule_fails_schedules(
    operated: Operated, tmp_path: Path
) -> None:
    # Given a catalog naming an extract no schedule starts
    larger = operated.chain.write_catalog({**CATALOG, "Invoices": {"mode": "full"}})

    def add(doc: dict[str, Any]) -> None:
        doc["config"]["EXTRACT_CATALOG_OBJECT"] = larger

    endpoints = operated.broken(tmp_path, add)

    # When the doctor runs, Then schedules fails naming it, with the Terraform fix
    code, checks = _doctor(operated, endpoints)
    assert code == 3 and checks["schedules"]["detail"] == "no schedule starts Invoices"
    assert "`extracts` variable" in checks["schedules"]["fix"]


def test_doctor_when_the_catalog_object_is_missing_fails_schedules_naming_it(
    operated: Operated, tmp_path: Path
) -> None:
    # Given a configuration naming a catalog object the bucket does not hold
    def gone(doc: dict[str, Any]) -> None:
        doc["config"]["EXTRACT_CATALOG_OBJECT"] = "_catalog/extracts-gone.json"

    endpoints = operated.broken(tmp_path, gone)

    # When the doctor runs, Then schedules fails naming the object, with the Terraform fix
    code, checks = _doctor(operated, endpoints)
    assert code == 3 and "_catalog/extracts-gone.json, which does not exist" in checks["schedules"]["detail"]
    assert "apply Terraform" in checks["schedules"]["fix"]


def test_doctor_in_text_form_prints_each_check_and_its_fix(operated: Operated, tmp_path: Path) -> None:
    # Given a configuration without BUCKET_NAME, When the doctor prints for a person
    endpoints = operated.broken(tmp_path, lambda doc: doc["config"].pop("BUCKET_NAME"))
    result = operated.cli("doctor", endpoints=endpoints)

    # Then a line per check, the failure's fix below it, and the target is unusable (exit 3)
    assert result.exit_code == 3
    assert "FAIL  config" in result.output and "fix: set the keys named" in result.output
    assert "skip  vault" in result.output


# -- runs, show, watch --------------------------------------------------------------------------------------


def test_submit_then_watch_follows_the_run_until_it_landed(operated: Operated) -> None:
    # Given a Sales run submitted through the CLI (sync: the answer is submit's outcome)
    answer = operated.cli_json("submit", "Sales", "--mode", "full")
    assert (answer["status"], answer["outcome"]) == (200, "submitted")

    # When it is watched
    result = operated.cli("watch", answer["run_id"], "--interval", "0.2", "--timeout", "120")

    # Then the watch ends when the run is final, LANDED, with exit 0, having printed (piped: plain lines)
    # each state change and the bytes fetched and unpacked
    assert result.exit_code == 0, result.output
    assert f"{answer['run_id']} LANDED" in result.output
    assert "SUBMITTING -> RUNNING" in result.output and "FINISHING -> LANDED" in result.output
    assert re.search(r"fetched ([\d,]+)/\1 B, unpacked [1-9][\d,]* B", result.output), result.output


def test_runs_lists_recent_runs_with_their_totals_and_filters(
    operated: Operated, sales: dict[str, Any]
) -> None:
    # Given a landed Sales run, When runs are listed as JSON, for Sales and LANDED (options after the
    # subcommand, as a person types them)
    answer = operated.cli("runs", "--extract", "Sales", "--state", "landed", "--limit", "5", "--json")
    assert answer.exit_code == 0, answer.output
    listing = json.loads(answer.output)
    listed = listing["runs"]

    # Then the run is there with its job, files, bytes and rows, and the summary counts what is shown
    (row,) = [r for r in listed if r["run_id"] == sales["run_id"]]
    assert listing["summary"].startswith(f"{len(listed)} run") and "LANDED of Sales" in listing["summary"]
    assert (row["extract"], row["mode"], row["state"], row["job_id"]) == (
        "Sales",
        "full",
        "LANDED",
        sales["job_id"],
    )
    assert row["files"] == row["files_landed"] > 0 and row["bytes"] > 0 and row["rows"] == 100
    assert all(r["extract"] == "Sales" and r["state"] == "LANDED" for r in listed) and len(listed) <= 5
    # And the table form shows it too, with its reason and rerun_of columns and the summary line under it
    table = operated.cli("runs", "--extract", "Sales")
    assert table.exit_code == 0 and sales["run_id"][:12] in table.output
    assert "reason" in table.output and "rerun of" in table.output and "newest first" in table.output


def test_runs_when_nothing_matches_says_no_runs(operated: Operated) -> None:
    # Given no run before 2001, When runs until then are listed, Then "no runs" and what was asked, exit 0
    result = operated.cli("runs", "--until", "2001-01-01", "--extract", "Sales")
    assert result.exit_code == 0 and result.output.strip() == "no runs of Sales until 2001-01-01"
    assert operated.cli_json("runs", "--since", "1d", "--until", "2001-01-01")["runs"] == []


def test_runs_when_a_date_is_not_one_is_a_usage_error(operated: Operated) -> None:
    # When --since is not a date, Then exit 2 naming the forms it takes
    result = operated.cli("runs", "--since", "last tuesday")
    assert result.exit_code == 2 and "span ago (36h, 7d)" in result.output


def test_runs_over_a_long_history_reads_what_it_shows_and_sets_an_unreadable_run_aside(
    operated: Operated,
) -> None:
    # Given the ledger's index of runs built (the first listing of a ledger builds it, reading every run)
    assert operated.cli("runs", "--limit", "1").exit_code == 0
    # And 500 runs of History that ended in 2020, the newest of which cannot be read, nor a file record of
    # the third newest
    bucket, store = operated.doc["bucket"]["name"], operated.chain.oci.objectstorage.store
    seed = SeedBucket()
    ledger = Ledger(cast(ObjectStore, seed), "_state")  # the ledger uses only the calls SeedBucket has
    for number in range(500):
        created = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(hours=number)
        run = Run(f"hist{number:04d}", "History", "full", RunState.FINISHING, created, created, created)
        ledger.save_run(ledger.create_run(run), run.but(state=RunState.LANDED))
    seed.put_bytes("_state/runs/hist0499.json", b'{"run_id": "hist0499", "sta')
    seed.put_bytes("_state/files/hist0497/a_1.zip.json", b'{"run_id": "hist0497", "na')
    seed.plant(store, bucket)
    try:
        served, alerts = len(operated.chain.oci.served), len(operated.chain.ons.published)

        # When the three newest are listed
        result = operated.cli("runs", "--extract", "History", "--limit", "3", "--json")

        # Then the three after the unreadable one are shown, and it is said to be more
        assert result.exit_code == 0, result.output
        listing = json.loads(result.output)
        assert [row["run_id"] for row in listing["runs"]] == ["hist0498", "hist0497", "hist0496"]
        assert "more with --limit" in listing["summary"]
        # And the unreadable one was set aside as the sweep would: quarantined, and alerted by name
        assert listing["unreadable"] == [
            "ledger document _state/runs/hist0499.json is not valid JSON: Unterminated string starting at: "
            "line 1 column 24 (char 23); moved to _state/quarantine/ and alerted",
            "ledger document _state/files/hist0497/a_1.zip.json is not valid JSON: Unterminated string "
            "starting at: line 1 column 24 (char 23); the run is listed without its files",
        ]
        assert store.head(bucket, "_state/quarantine/runs/hist0499.json") is not None
        (alert,) = operated.chain.ons.published[alerts:]
        assert alert.title == "UNREADABLE_DOCUMENT History hist0499"
        # And it read the documents it showed (and the next, to know there is more; the unreadable one
        # twice, to move it), not the history; it listed one page of the index and the shown runs' files
        requests = operated.chain.oci.served[served:]
        read = [path for method, path, _ in requests if method == "GET" and "_state%2Fruns%2Fhist" in path]
        listed = [path for method, path, _ in requests if method == "GET" and path.endswith(f"/b/{bucket}/o")]
        assert len(read) == 4 + 2 and len(listed) <= 1 + 3
    finally:
        seed.uproot(store, bucket)


def test_show_gives_the_record_files_and_timeline(operated: Operated, sales: dict[str, Any]) -> None:
    # Given a landed run, When it is shown
    shown = operated.cli_json("show", sales["run_id"])

    # Then the whole record, each file LANDED, every byte fetched and unpacked
    assert shown["run"]["state"] == "LANDED" and shown["run"]["job_id"] == sales["job_id"]
    assert shown["files"] and {f["state"] for f in shown["files"]} == {"LANDED"}
    progress = shown["progress"]
    assert progress["fetched"] == progress["size"] > 0 and progress["unpacked"] > 0
    # And its state changes as the ledger saved them, each at its time and by the call that made it
    changes = [entry for entry in shown["run"]["history"] if entry["what"] == "changed"]
    assert [(c["from"], c["to"]) for c in changes] == [
        (None, "SUBMITTING"),
        ("SUBMITTING", "RUNNING"),
        ("RUNNING", "TRANSFERRING"),
        ("TRANSFERRING", "FINISHING"),
        ("FINISHING", "LANDED"),
    ]
    assert [c["at"] for c in changes] == sorted(c["at"] for c in changes) and all(
        c["call_id"] for c in changes
    )
    assert changes[-1]["at"] == shown["run"]["updated_at"]
    # And the timeline lists them at those times, in order
    moves = [
        (e["at"], e["event"].split(" (call")[0]) for e in shown["timeline"] if e.get("what") == "changed"
    ]
    assert moves == [(c["at"], f"{c['from'] or '(created)'} -> {c['to']}") for c in changes]
    # And with them its job, each file's claims (its own and its units') and the alert that said it landed
    timeline = shown["timeline"]
    assert {e.get("what") for e in timeline} >= {"changed", "job", "claim", "alert"}
    [job] = [e for e in timeline if e.get("what") == "job"]
    assert (job["job_id"], job["attempt"]) == (sales["job_id"], 1)
    claimed = {e["file"] for e in timeline if e.get("what") == "claim"}
    assert claimed == {f["name"] for f in shown["files"]} and all(
        e["call_id"] for e in timeline if "what" in e
    )
    assert [e["title"] for e in timeline if e.get("what") == "alert"] == [f"LANDED Sales {sales['run_id']}"]
    text = operated.cli("show", sales["run_id"])
    assert text.exit_code == 0 and "timeline" in text.output and "FINISHING -> LANDED" in text.output
    assert (
        f"alert sent: LANDED Sales {sales['run_id']}" in text.output and "claimed (attempt 1)" in text.output
    )


def test_show_when_the_run_is_unknown_exits_4(operated: Operated) -> None:
    # Given no such run, When it is shown, Then exit 4 naming it
    result = operated.cli("show", "20990101T000000Z-nothing")
    assert result.exit_code == 4 and "no run '20990101T000000Z-nothing'" in result.output


# -- submit, cancel, rerun, reland, invoke ----------------------------------------------------------------


def test_submit_when_extract_not_in_catalog_exits_4_and_starts_nothing(operated: Operated) -> None:
    # Given the catalog of Sales, Orders and Broken; When a typo is submitted
    jobs = len(operated.chain.fusion.jobs)
    result = operated.cli("submit", "Salse", "--mode", "full")

    # Then no such extract (exit 4), and no job was submitted
    assert result.exit_code == 4 and "'Salse' is not in the catalog" in result.output
    assert len(operated.chain.fusion.jobs) == jobs


def test_cancel_by_extract_ends_its_active_run_and_frees_the_lease(operated: Operated) -> None:
    # Given an Orders run whose job runs on
    started = operated.cli_json("submit", "Orders", "--mode", "incremental")
    assert started["outcome"] == "submitted"

    # When its extract's run is cancelled
    answer = operated.cli_json("cancel", "--extract", "Orders")

    # Then it ended CANCELLED and another run of Orders may start
    assert (answer["outcome"], answer["run_id"]) == ("cancelled", started["run_id"])
    assert operated.cli_json("show", started["run_id"])["run"]["state"] == "CANCELLED"
    again = operated.cli_json("submit", "Orders", "--mode", "incremental", "--detached")
    assert again["status"] == 202  # accepted, not done: the run appears once submit ran, with the id given
    deadline = time.monotonic() + 60

    def orders() -> set[str]:
        return {run.run_id for run in operated.chain.runs("Orders")}

    while again["run_id"] not in orders() and time.monotonic() < deadline:
        operated.chain.functions.wait_idle(0.2)
    assert again["run_id"] in orders()
    assert operated.cli("cancel", "--extract", "Orders").exit_code == 0


def test_cancel_when_nothing_is_active_agrees_by_run_and_by_extract_exit_5(
    operated: Operated, sales: dict[str, Any]
) -> None:
    # Given a LANDED Sales run and no active run of Sales
    # When it is cancelled by its id, and Sales by name
    by_run = operated.cli("cancel", sales["run_id"])
    by_extract = operated.cli("cancel", "--extract", "Sales")

    # Then both are refused alike (exit 5), each saying there is nothing to cancel and where to look
    assert (by_run.exit_code, by_extract.exit_code) == (5, 5)
    assert f"run {sales['run_id']} is LANDED already: nothing to cancel" in by_run.output
    assert "Sales has no active run: nothing to cancel" in by_extract.output
    assert "`fusion-extract runs --extract Sales`" in by_extract.output


def test_rerun_of_a_landed_run_is_refused_with_the_reland_that_would_land_it_again(
    operated: Operated, sales: dict[str, Any]
) -> None:
    # Given a LANDED Sales run, When it is rerun
    result = operated.cli("rerun", sales["run_id"])

    # Then nothing to do (exit 5), and the exact re-land and submit commands that would do something
    assert result.exit_code == 5
    assert f"`fusion-extract reland {sales['job_id']} --extract Sales --mode full`" in result.output
    assert "`fusion-extract submit Sales --mode full`" in result.output


@pytest.mark.parametrize("command", ["rerun", "cancel", "show", "watch"])
def test_a_run_that_does_not_exist_exits_4_naming_it(operated: Operated, command: str) -> None:
    # Given no such run, When a command names it, Then exit 4 naming it, and no function was asked
    result = operated.cli(command, "20990101T000000Z-nothing")
    assert result.exit_code == 4 and "no run '20990101T000000Z-nothing'" in result.output
    assert not [
        call for call in operated.chain.functions.invocations if b"20990101T000000Z-nothing" in call.body
    ]


def test_submit_while_the_extract_runs_is_refused_naming_the_run_and_watch_times_out_with_exit_6(
    operated: Operated,
) -> None:
    # Given an Orders run whose job runs on
    started = operated.cli_json("submit", "Orders", "--mode", "incremental")
    run_id = started["run_id"]
    try:
        # When Orders is submitted again, Then refused (exit 5), naming the run and how to follow or stop it
        again = operated.cli("submit", "Orders", "--mode", "incremental")
        assert again.exit_code == 5
        assert f"Orders is already running (run {run_id})" in again.output
        assert f"`fusion-extract cancel {run_id}`" in again.output

        # When it is watched for a moment, Then watch says it timed out, with its own exit code
        watched = operated.cli("watch", run_id, "--interval", "0.05", "--timeout", "0.2")
        assert watched.exit_code == 6
        assert f"watch timed out after 0.2 s: run {run_id} is RUNNING" in watched.output
    finally:
        assert operated.cli("cancel", run_id).exit_code == 0


def test_watch_of_a_run_that_failed_exits_1_with_its_reason(operated: Operated) -> None:
    # Given a Broken run that FAILED (its job fails; one attempt allowed)
    started = operated.cli_json("submit", "Broken", "--mode", "full")
    failed = operated.chain.wait_for_final_run("Broken", count=len(operated.chain.runs("Broken")))
    assert failed.run_id == started["run_id"] and failed.state is RunState.FAILED

    # When it is watched, Then it ends at once: FAILED with its reason, exit 1
    result = operated.cli("watch", failed.run_id, "--timeout", "10")
    assert result.exit_code == 1 and f"{failed.run_id} FAILED: " in result.output


def test_a_run_id_given_by_the_caller_that_a_run_has_is_refused(
    operated: Operated, sales: dict[str, Any]
) -> None:
    # Given a run id a run has, When a run message asks for a new run under it, Then refused (exit 5)
    taken = json.dumps({"extract": "Sales", "mode": "full", "run_id": sales["run_id"]})
    result = operated.cli("invoke", "submit", taken)
    assert result.exit_code == 5 and f"run id '{sales['run_id']}' is taken" in result.output


def test_show_of_a_run_whose_document_cannot_be_read_sets_it_aside_and_exits_4(operated: Operated) -> None:
    # Given a run document cut short
    bucket, store = operated.doc["bucket"]["name"], operated.chain.oci.objectstorage.store
    seed = SeedBucket()
    seed.put_bytes("_state/runs/20200101T000000Z-cut.json", b'{"run_id": "20200101T000000Z-cut", "sta')
    seed.plant(store, bucket)
    alerts = len(operated.chain.ons.published)
    try:
        # When it is shown
        result = operated.cli("show", "20200101T000000Z-cut")

        # Then it is moved to quarantine and alerted, as the sweep would, and there is no such run (exit 4)
        assert result.exit_code == 4 and "moved to _state/quarantine/ and alerted" in result.output
        assert store.head(bucket, "_state/quarantine/runs/20200101T000000Z-cut.json") is not None
        (alert,) = operated.chain.ons.published[alerts:]
        assert alert.title == "UNREADABLE_DOCUMENT (extract unknown) 20200101T000000Z-cut"
    finally:
        seed.uproot(store, bucket)
        store.delete(bucket, "_state/quarantine/runs/20200101T000000Z-cut.json", Conditions())


def test_documented_exit_codes_are_the_cli_table() -> None:
    # Given the CLI reference (docs/cli.md), Then its exit codes are exactly the table every command uses
    reference = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    rows = re.findall(r"^\| `(\d)` \| (.+) \|$", reference, flags=re.MULTILINE)
    assert rows == [(str(int(code)), code.meaning) for code in Exit]


def test_cancel_needs_a_run_or_an_extract(operated: Operated) -> None:
    # When neither is given, Then it is a usage error (exit 2)
    assert operated.cli("cancel").exit_code == 2


def test_rerun_of_a_failed_run_starts_a_new_run_linked_to_it(operated: Operated) -> None:
    # Given a Broken run that FAILED (its job fails; one attempt allowed)
    operated.cli_json("submit", "Broken", "--mode", "full")
    failed = operated.chain.wait_for_final_run("Broken")
    assert failed.state.value == "FAILED"

    # When it is rerun through the CLI
    answer = operated.cli_json("rerun", failed.run_id)

    # Then a new run started, linked by rerun_of
    assert answer["outcome"] == "submitted" and answer["run_id"] != failed.run_id
    assert operated.cli_json("show", answer["run_id"])["run"]["rerun_of"] == failed.run_id
    operated.chain.wait_for_final_run("Broken", count=2)


def test_reland_of_a_succeeded_job_lands_it_again(operated: Operated, sales: dict[str, Any]) -> None:
    # Given the job of a landed Sales run, When it is re-landed through the CLI
    answer = operated.cli_json("reland", sales["job_id"], "--extract", "Sales", "--mode", "full")

    # Then a re-landing run of that job started and lands
    assert answer["outcome"] == "relanding" and answer["job_id"] == sales["job_id"]
    watched = operated.cli("watch", answer["run_id"], "--interval", "0.2", "--timeout", "120")
    assert watched.exit_code == 0, watched.output


def test_invoke_runs_a_step_with_a_payload_and_prints_its_answer(operated: Operated) -> None:
    # Given the poll function, When it is invoked with the sweep message (from stdin)
    answer = operated.cli("--json", "invoke", "poll", "-", stdin='{"kind": "sweep"}')

    # Then its answer is the step's outcome
    assert answer.exit_code == 0 and json.loads(answer.output)["outcome"] == "swept"


def test_invoke_when_the_chain_refuses_the_message_exits_5_with_its_reason(operated: Operated) -> None:
    # Given a malformed message, When it is invoked, Then the chain's reason, no transport words, exit 5
    result = operated.cli("invoke", "submit", '{"kind": "rerun"}')
    assert result.exit_code == 5 and result.output.strip() == "error: refused: run_id is missing"


def test_a_function_that_cannot_be_reached_is_an_unusable_target_exit_3(
    operated: Operated, tmp_path: Path
) -> None:
    # Given a Functions endpoint nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    endpoints = operated.broken(tmp_path, lambda doc: doc["config"].update(OCI_FUNCTIONS_ENDPOINT=closed))

    # When a run is submitted, Then the function cannot be reached (exit 3), said without status numbers
    result = operated.cli("submit", "Sales", "--mode", "full", endpoints=endpoints)
    assert result.exit_code == 3 and "cannot reach the submit function" in result.output
    assert "answered" not in result.output


def test_cli_when_the_endpoints_file_is_missing_exits_3(operated: Operated, tmp_path: Path) -> None:
    # Given no emulator running (no endpoints file), When any command runs, Then exit 3 with the fix
    result = operated.cli("runs", endpoints=tmp_path / "absent.json")
    assert result.exit_code == 3 and "make emulator" in result.output
