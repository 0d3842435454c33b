"""Every alert's advice, pasted: each event's alert is rendered as people receive it, and every command its
body advises is run as written against the local chain, then checked to do what the alert says it does.

Alerts the chain sends on its own here (landed, failed, unreadable_document) are taken from the alerts
inbox; the others are rendered for a real run in the state their event describes, with the fields
`Runs.alert` gives them.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

import pytest

from fusion_extract.chain import alerts
from fusion_extract.chain.ledger.codec import run_to_doc
from fusion_extract.chain.ledger.records import Run, RunState
from fusion_extract.chain.ledger.store import encode
from fusion_extract.chain.messages import encode as message
from tests.emulators.chain import BUCKET
from tests.operate.conftest import Operated
from tests.operate.test_runbook import OCI, oci_cli


def alert_for(event: str, run: Run, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """The alert `Runs.alert` publishes for this run."""
    fields = {"reland": True} if run.reland else {}
    return message(
        "alert", event=event, run_id=run.run_id, extract=run.extract, mode=run.mode, job_id=run.job_id,
        reason=reason, **fields, **extra,
    )  # fmt: skip


def pasted(operated: Operated, alert: dict[str, Any]) -> list[Any]:
    """Render the alert as e-mailed, paste each advised command, and give back each one's JSON answer."""
    text = alerts.body(alert)
    assert alerts.read_alert(text) == alert, "the JSON scripts read is the alert, whole"
    if alert["event"] != "go_live_check":  # titled for the function that sent it, not a run
        assert alerts.title(alert).split(" ")[0] == alert["event"].upper()
    answers = []
    for command in alerts.commands(text):
        assert "RUN" not in command.split() and "JOB" not in command.split(), f"a placeholder: {command}"
        words = shlex.split(command)
        if words[0] == "oci":
            answers.append(oci_cli(operated, *words[1:]) if OCI.exists() else None)
            continue
        assert words[0] == "fusion-extract", command
        result = operated.cli("--json", *words[1:])
        assert result.exit_code == 0, f"{command}: {result.output}"
        answers.append(json.loads(result.output))
    return answers


def advised(alert: dict[str, Any]) -> list[list[str]]:
    return [shlex.split(command)[1:3] for command in alerts.commands(alerts.body(alert))]


def active(operated: Operated, extract: str) -> Run:
    """A fresh active run of the extract (Orders' jobs run until the test ends)."""
    answer = operated.cli_json("submit", extract, "--mode", "full")
    assert answer["outcome"] == "submitted", answer
    return next(run for run in operated.chain.runs(extract) if run.run_id == answer["run_id"])


def put_run(operated: Operated, run: Run) -> None:
    """A run document written as the ledger writes it (a state the chain reaches only after hours)."""
    operated.chain.oci.put_object(BUCKET, f"_state/runs/{run.run_id}.json", encode(run_to_doc(run)))


@pytest.fixture(scope="module")
def sales(operated: Operated) -> Run:
    operated.cli_json("submit", "Sales", "--mode", "full")
    run = operated.chain.wait_for_final_run("Sales")
    assert run.state is RunState.LANDED
    return run


def inbox(operated: Operated, event: str, run_id: str | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for alert in operated.chain.alerts:
            if alert["event"] == event and (run_id is None or alert.get("run_id") == run_id):
                return alert
        operated.chain.functions.wait_idle(0.2)
    raise AssertionError(f"no {event} alert for {run_id}")


def test_landed_and_cancelled_and_go_live_advise_nothing(operated: Operated, sales: Run) -> None:
    # Given the alert of a landed run, as people received it
    landed = inbox(operated, "landed", sales.run_id)

    # Then its title names event, extract and run, and it advises no command
    assert alerts.title(landed) == f"LANDED Sales {sales.run_id}"
    assert pasted(operated, landed) == []
    assert pasted(operated, alert_for("cancelled", sales, "cancelled by an operator")) == []
    go_live = message("alert", event="go_live_check", function="poll")
    assert pasted(operated, go_live) == [] and "a test, not an incident" in alerts.title(go_live)


def test_failed_advises_a_rerun_that_starts_a_run_linked_to_it(operated: Operated) -> None:
    # Given the FAILED alert of a Broken run, as people received it
    operated.cli_json("submit", "Broken", "--mode", "full")
    failed = operated.chain.wait_for_final_run("Broken")
    alert = inbox(operated, "failed", failed.run_id)
    assert advised(alert) == [["rerun", failed.run_id]]

    # When its advice is pasted, Then a new run of the extract starts, linked to the failed one
    (answer,) = pasted(operated, alert)
    assert answer["outcome"] == "submitted"
    assert operated.cli_json("show", answer["run_id"])["run"]["rerun_of"] == failed.run_id
    operated.chain.wait_for_final_run("Broken", count=2)


def test_failed_relanding_run_advises_a_reland_of_its_job(operated: Operated, sales: Run) -> None:
    # Given a re-landing run of Sales' job that failed (a rerun of it would do nothing)
    run = sales.but(run_id="20261129T020000Z-relandfailed", state=RunState.FAILED, reland=True)
    alert = alert_for("failed", run, "transfer: a file failed FILE_MAX_ATTEMPTS times")
    assert advised(alert) == [["reland", str(sales.job_id)]]

    # When its advice is pasted, Then the job lands again
    (answer,) = pasted(operated, alert)
    assert answer["outcome"] == "relanding" and answer["job_id"] == sales.job_id
    operated.chain.wait_for_final_run("Sales", count=2)


def test_timed_out_without_a_job_advises_only_a_rerun(operated: Operated, sales: Run) -> None:
    # Given a run whose submission never succeeded before its deadline
    run = sales.but(
        run_id="20261129T020000Z-nojob", state=RunState.TIMED_OUT, job_id=None, job_ids=(), files=()
    )
    put_run(operated, run)
    alert = alert_for("timed_out", run, "the job's submission still not done at the deadline")

    # Then it neither says a job was running nor advises re-landing a job it never had
    text = alerts.body(alert)
    assert "still running" not in text and "None" not in text and "null" not in text.rsplit("\n", 1)[0]
    assert advised(alert) == [["rerun", run.run_id]]
    # And pasting it starts a new run linked to it
    (answer,) = pasted(operated, alert)
    assert answer["outcome"] == "submitted"
    assert operated.cli_json("show", answer["run_id"])["run"]["rerun_of"] == run.run_id
    operated.chain.wait_for_final_run("Sales", count=3)


def test_timed_out_with_a_running_job_advises_reland_then_rerun(operated: Operated, sales: Run) -> None:
    # Given a run whose job (since succeeded) was still running at the deadline
    run = sales.but(run_id="20261129T020000Z-jobslow", state=RunState.TIMED_OUT, files=())
    put_run(operated, run)
    alert = alert_for("timed_out", run, f"job {sales.job_id} still RUNNING at the deadline")
    assert "still running" in alerts.body(alert)
    assert advised(alert) == [["reland", str(sales.job_id)], ["rerun", run.run_id]]

    # When the first is pasted (the job succeeded), Then its files land again without a new job
    relanded = operated.cli_json(*shlex.split(alerts.advise(alert).commands[0])[1:])
    assert relanded["outcome"] == "relanding" and relanded["job_id"] == sales.job_id
    operated.chain.wait_for_final_run("Sales", count=4)
    # And the second starts a new run linked to it
    rerun = operated.cli_json(*shlex.split(alerts.advise(alert).commands[1])[1:])
    assert operated.cli_json("show", rerun["run_id"])["run"]["rerun_of"] == run.run_id
    operated.chain.wait_for_final_run("Sales", count=5)


def test_timed_out_in_transfer_advises_a_reland_only(operated: Operated, sales: Run) -> None:
    run = sales.but(run_id="20261129T020000Z-slowland", state=RunState.TIMED_OUT)
    alert = alert_for("timed_out", run, f"the transfer of job {sales.job_id} was not done at the deadline")
    assert advised(alert) == [["reland", str(sales.job_id)]]
    (answer,) = pasted(operated, alert)
    assert answer["outcome"] == "relanding"
    operated.chain.wait_for_final_run("Sales", count=6)


@pytest.mark.parametrize("event", ["needs_human", "unknown_status", "stuck"])
def test_a_waiting_run_advises_show_and_cancel_which_ends_it(operated: Operated, event: str) -> None:
    # Given an active Orders run whose job Fusion holds
    run = active(operated, "Orders")
    alert = alert_for(event, run, "job held")

    # When its advice is pasted
    answers = pasted(operated, alert)

    # Then it showed the run, and cancel ended it CANCELLED (its lease freed for the next)
    assert advised(alert)[0] == ["show", run.run_id] and advised(alert)[-1] == ["cancel", run.run_id]
    assert answers[0]["run"]["run_id"] == run.run_id
    assert operated.cli_json("show", run.run_id)["run"]["state"] == "CANCELLED"


def test_overdue_advises_doctor_and_show(operated: Operated, sales: Run) -> None:
    alert = alert_for("overdue", sales, "re-driven 3 times without progress")
    doctor, shown = pasted(operated, alert)
    assert doctor["ok"] is True and shown["run"]["run_id"] == sales.run_id


def test_assumed_complete_and_manifest_disagrees_advise_what_checks_and_relands(
    operated: Operated, sales: Run
) -> None:
    (shown,) = pasted(operated, alert_for("assumed_complete", sales))
    assert shown["run"]["run_id"] == sales.run_id
    alert = alert_for("manifest_disagrees", sales, "listing lacks FILE_2.zip")
    assert advised(alert) == [["show", sales.run_id], ["reland", str(sales.job_id)]]
    shown, relanded = pasted(operated, alert)
    assert relanded["outcome"] == "relanding" and relanded["job_id"] == sales.job_id
    operated.chain.wait_for_final_run("Sales", count=7)


def test_runtime_broken_advises_the_go_live_check(operated: Operated) -> None:
    alert = message("alert", event="runtime_broken", reason="libcrypto.so.1.1 not found")
    assert alerts.title(alert) == "RUNTIME_BROKEN (extract unknown) (no run)"
    (doctor,) = pasted(operated, alert)
    assert doctor["ok"] is True
    operated.chain.oci.grants.restore()


def test_unreadable_run_document_names_its_run_and_extract_and_advises_a_new_run(operated: Operated) -> None:
    # Given a run document cut short on a write, met by the sweep (its run is active)
    run_id = "20261129T020000Z-cutshort"
    operated.chain.oci.put_object(
        BUCKET, f"_state/runs/{run_id}.json", b'{"extract": "Orders", "mode": "full", "run_id": "2026'
    )
    operated.chain.oci.put_object(BUCKET, f"_state/active/{run_id}", b"")
    operated.chain.invoke("poll", {"kind": "sweep"})

    # Then people were told which run and extract it was, from its name and content
    alert = inbox(operated, "unreadable_document", run_id)
    assert alerts.title(alert) == f"UNREADABLE_DOCUMENT Orders {run_id}"
    # And the advice is not a rerun (no run is left to rerun) but a new run of the extract
    assert ["rerun", run_id] not in advised(alert)
    assert operated.cli("rerun", run_id).exit_code != 0
    answers = pasted(operated, alert)
    submitted = answers[-2]
    assert submitted["outcome"] == "submitted" and submitted["extract"] == "Orders"
    assert any(run["run_id"] == submitted["run_id"] for run in answers[-1]["runs"])
    if OCI.exists():  # the quarantined document, read with the OCI CLI
        assert "cut" not in str(answers[0]) and '"extract": "Orders"' in str(answers[0])
    operated.cli("cancel", submitted["run_id"])


def test_unreadable_document_that_names_nothing_says_so_and_advises_listing(operated: Operated) -> None:
    # Given the alert of a document whose name and bytes name no extract
    alert = message(
        "alert", event="unreadable_document", document="_state/odd/x.json", reason="not JSON",
        **alerts.about_document("_state/odd/x.json", b"\x00garbage"),
    )  # fmt: skip

    # Then its title says the extract and run are unknown, and its advice lists the runs
    assert alerts.title(alert) == "UNREADABLE_DOCUMENT (extract unknown) (no run)"
    assert "names an extract" in alerts.body(alert)
    (listing,) = pasted(operated, alert)
    assert isinstance(listing["runs"], list)


def test_late_is_titled_by_its_extract_and_advises_status_and_its_runs(
    operated: Operated, sales: Run
) -> None:
    # Given a late alert of Sales (no run is late: a scheduled landing is)
    alert = message("alert", event="late", extract="Sales", reason="expected to land by 06:00, within 4 h")

    # Then its title names the extract alone, and its pasted advice shows the extract and its runs
    assert alerts.title(alert) == "LATE Sales"
    status, listing = pasted(operated, alert)
    assert "Sales" in {row["extract"] for row in status}
    assert {run["extract"] for run in listing["runs"]} == {"Sales"}


def test_every_event_is_rendered_by_these_tests() -> None:
    # Every event MEANING documents has a test above that pastes its advice
    tested = {
        "landed", "cancelled", "go_live_check", "failed", "timed_out", "needs_human", "unknown_status",
        "stuck", "overdue", "assumed_complete", "manifest_disagrees", "runtime_broken", "unreadable_document",
        "late",
    }  # fmt: skip
    assert tested == set(alerts.MEANING)
