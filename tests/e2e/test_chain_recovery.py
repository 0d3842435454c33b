"""End to end, through the fdk runtime and the emulators: duplicates, losses, failures and reruns."""

import json
import threading
from dataclasses import replace

from fusion_extract.chain.ledger.records import RunState
from tests.e2e.landing import QUICK, assert_every_member_verifies, landed_manifest, landed_objects
from tests.emulators.chain import function_ocid
from tests.emulators.fusion import ExtractScenario


def test_chain_when_every_message_delivered_twice_submits_once_and_lands_once(make_chain):
    # Given Notifications delivering every message twice
    chain = make_chain()
    chain.ons.duplicate = True
    chain.fusion.define_extract("Sales", replace(QUICK, chunks=3))
    chain.schedule("Sales", "full")

    # When the schedule fires
    chain.fire("Sales")
    run = chain.wait_for_final_run("Sales")

    # Then one job, one run, every member landed once, and one "landed" alert per delivery of it
    assert run.state is RunState.LANDED
    assert len(chain.fusion.jobs) == 1 and len(chain.runs("Sales")) == 1
    _, manifest = landed_manifest(chain, run)
    members = [m["path"] for f in manifest["files"] for m in f["members"]]
    expected = sorted([*members, *(f["name"] for f in manifest["files"] if f["name"].endswith(".mf"))])
    assert landed_objects(chain, run) == sorted([*expected, "_SUCCESS", "_manifest.json"])
    assert {a["event"] for a in chain.alerts} == {"landed"}
    assert_every_member_verifies(chain, manifest)


def test_chain_when_a_poll_continuation_is_lost_the_sweep_recovers_the_run(make_chain):
    # Given a job held RUNNING until the test releases it, and the first poll continuation lost
    # (no wait between checks, so the lost step is due, and overdue, the moment it is lost)
    chain = make_chain(
        POLL_BUDGET_SECONDS="0.3",
        POLL_MIN_INTERVAL="0",
        POLL_MAX_INTERVAL="0",
        STEP_OVERDUE_SECONDS="0",
        TRANSFER_BUDGET_SECONDS="0",
    )
    release = threading.Event()
    chain.fusion.define_extract(
        "Sales", ExtractScenario(chunks=1, seconds_enqueued=0, seconds_running=0, hold=release)
    )
    lost: list[str] = []

    def lose_first_continuation(message):
        body = json.loads(message.body)
        if body.get("kind") == "poll" and body.get("seq") == 2 and not lost:
            lost.append(message.message_id)
            return True
        return False

    chain.ons.drop_if = lose_first_continuation
    chain.invoke("submit", {"extract": "Sales", "mode": "full"})
    chain.settle()
    assert lost and chain.runs("Sales")[0].state is RunState.RUNNING  # stalled

    # When the job is let finish and the sweep schedule fires
    release.set()
    chain.sweep()

    # Then the run landed
    run = chain.wait_for_final_run("Sales")
    assert run.state is RunState.LANDED


def test_chain_when_job_ends_error_reruns_and_lands(make_chain):
    # Given an extract whose first job ends ERROR
    chain = make_chain()
    chain.fusion.define_extract("Flaky", replace(QUICK, fail_first_jobs=1, chunks=2))

    # When it runs
    chain.invoke("submit", {"extract": "Flaky", "mode": "full"})
    run = chain.wait_for_final_run("Flaky")

    # Then a rerun request resubmitted it within the same run, and the second job landed
    assert run.state is RunState.LANDED
    assert run.attempt == 2 and len(run.job_ids) == 2
    assert [job.outcome for job in chain.fusion.jobs] == ["ERROR", "SUCCEEDED"]
    assert {a["event"] for a in chain.alerts} == {"landed"}


def test_chain_when_job_keeps_failing_fails_the_run_and_alerts(make_chain):
    # Given an extract that always fails and two attempts per run
    chain = make_chain(RUN_MAX_ATTEMPTS="2")
    chain.fusion.define_extract("Broken", replace(QUICK, outcome="ERROR"))

    # When it runs
    chain.invoke("submit", {"extract": "Broken", "mode": "full"})
    run = chain.wait_for_final_run("Broken")

    # Then after two jobs the run failed, people were told why, and the lease is free again
    assert run.state is RunState.FAILED and len(run.job_ids) == 2
    assert run.reason and "ERROR" in run.reason
    assert [a["event"] for a in chain.alerts] == ["failed"]
    assert chain.invoke("submit", {"extract": "Broken", "mode": "full"})["outcome"] == "submitted"


def test_chain_when_transfer_dies_mid_file_retries_and_lands_nothing_twice(make_chain):
    # Given downloads that break off mid-file once per file, with no retry inside the call
    chain = make_chain(HTTP_MAX_ATTEMPTS="1")
    scenario = replace(QUICK, chunks=2, rows_per_chunk=400, drop_download_after_bytes=3000)
    chain.fusion.define_extract("Sales", scenario)

    # When it runs
    chain.invoke("submit", {"extract": "Sales", "mode": "full"})
    run = chain.wait_for_final_run("Sales")

    # Then each archive was transferred twice, landed once, and no staging is left behind
    assert run.state is RunState.LANDED
    _, manifest = landed_manifest(chain, run)
    files = json.loads(
        chain.landed_path(f"_state/files/{run.run_id}")
        .joinpath(next(f["name"] for f in manifest["files"] if f["name"].endswith("_1.zip")) + ".json")
        .read_text()
    )
    assert files["attempts"] == 2
    members = sorted(m["path"] for f in manifest["files"] for m in f["members"])
    landed = [
        p for p in landed_objects(chain, run) if p.endswith((".csv", ".json")) and not p.startswith("_")
    ]
    assert sorted(landed) == members
    assert not [p for p in chain.landed_path("_staging").rglob("*") if p.is_file()]
    assert_every_member_verifies(chain, manifest)


def test_chain_when_manual_and_scheduled_submit_race_only_one_runs(make_chain):
    # Given a scheduled extract whose job takes a while
    chain = make_chain()
    chain.fusion.define_extract("Sales", ExtractScenario(chunks=1, seconds_enqueued=0.2, seconds_running=2))
    chain.schedule("Sales", "full")
    answers = []

    # When an operator invokes it by hand as the schedule fires
    manual = threading.Thread(
        target=lambda: answers.append(chain.invoke("submit", {"extract": "Sales", "mode": "full"}))
    )
    manual.start()
    chain.fire("Sales")
    manual.join()
    run = chain.wait_for_final_run("Sales")

    # Then exactly one run and one job
    assert run.state is RunState.LANDED
    assert len(chain.runs("Sales")) == 1 and len(chain.fusion.jobs) == 1
    scheduled = [
        i
        for i in chain.functions.invocations
        if i.function_id == function_ocid("submit") and i.invoke_type == "detached"
    ]
    outcomes = [answers[0]["outcome"], *(json.loads(i.response)["outcome"] for i in scheduled if i.response)]
    assert sorted(outcomes) == ["already_running", "submitted"]


def test_chain_when_job_outlives_the_deadline_times_out_and_alerts(make_chain):
    # Given a run deadline of about two seconds and a job that takes a minute
    chain = make_chain(RUN_DEADLINE_HOURS="0.0005", POLL_BUDGET_SECONDS="1")
    chain.fusion.define_extract("Slow", ExtractScenario(seconds_running=60))

    # When it runs
    chain.invoke("submit", {"extract": "Slow", "mode": "full"})
    run = chain.wait_for_final_run("Slow")

    # Then it ended TIMED_OUT with an alert, and the extract can run again
    assert run.state is RunState.TIMED_OUT
    assert [a["event"] for a in chain.alerts] == ["timed_out"]
    assert chain.invoke("submit", {"extract": "Slow", "mode": "full"})["outcome"] == "submitted"


def test_chain_when_message_malformed_answers_the_problem_and_changes_nothing(make_chain):
    # Given a running chain
    chain = make_chain()

    # When submit gets a request with a typo
    result = chain.functions.invoke("ocid1.fnfunc.oc1.emu.submit", b'{"extract": "Sales", "mood": "full"}')

    # Then the invocation failed naming the problem, and nothing was written or submitted
    assert result.status == 502
    assert b"unknown field(s): mood" in result.body
    assert chain.runs() == [] and chain.fusion.jobs == []


def test_chain_failed_step_logs_one_json_line_naming_its_run_and_the_sweep_recovers(make_chain):
    # Given a transfer whose landed marker cannot be written (Object Storage 503, one try per call)
    chain = make_chain(HTTP_MAX_ATTEMPTS="1", STEP_OVERDUE_SECONDS="0", TRANSFER_BUDGET_SECONDS="0")
    chain.fusion.define_extract("Sales", replace(QUICK, chunks=1))
    chain.oci.inject_fault("PUT", r"/n/[^/]+/b/[^/]+/o/_state%2Flanded%2F.*", 503, "ServiceUnavailable")

    # When the run goes through the chain
    chain.invoke("submit", {"extract": "Sales", "mode": "full"})
    chain.settle()

    # Then the transfer that failed logged it once, as one JSON line that names the run, extract and job
    lines = [json.loads(line) for line in (chain.workdir / "logs" / "transfer.log").read_text().splitlines()]
    [failure] = [e for e in lines if e["level"] == "ERROR"]
    [run] = chain.runs("Sales")
    assert failure["message"] == "step failed" and failure["error_type"] == "TransientError"
    assert (failure["run_id"], failure["extract"], failure["job_id"]) == (run.run_id, "Sales", run.job_id)
    assert failure["call_id"] and "503" in failure["reason"]

    # And when the sweep schedule fires, the run lands
    chain.sweep()
    assert chain.wait_for_final_run("Sales").state is RunState.LANDED
