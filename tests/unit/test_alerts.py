"""Alerts for people: a title that names event, extract and run; readable text; the JSON last."""

from __future__ import annotations

import json

from fusion_extract.chain import alerts

FAILED = {
    "v": 1,
    "kind": "alert",
    "event": "failed",
    "run_id": "20261129T020000Z-1a2b",
    "extract": "Sales",
    "job_id": "44046",
    "reason": "poll: job 44046 ended ERROR",
}


def test_alert_title_names_event_extract_and_run() -> None:
    # Given a failure alert, When its title is made, Then a mail rule can filter on FAILED and the extract
    assert alerts.title(FAILED) == "FAILED Sales 20261129T020000Z-1a2b"
    assert alerts.title({**FAILED, "event": "landed"}).startswith("LANDED Sales ")


def test_alert_body_is_readable_text_then_the_json() -> None:
    # Given a failure alert, When its body is made
    body = alerts.body(FAILED)

    # Then it reads as text first: meaning, facts, what to do
    text, _, last = body.rpartition("\n")
    assert text.startswith("FAILED Sales 20261129T020000Z-1a2b\nThe run ended FAILED")
    assert "reason: poll: job 44046 ended ERROR" in text and "What to do:" in text
    # And its last line is the alert's JSON, which read_alert gives back
    assert json.loads(last) == FAILED
    assert alerts.read_alert(body) == FAILED


def test_alert_every_documented_event_has_a_meaning_and_an_action() -> None:
    # Given the events docs/operating.md documents
    events = [
        "landed", "failed", "timed_out", "cancelled", "needs_human", "unknown_status", "stuck",
        "overdue", "late", "unreadable_document", "assumed_complete", "manifest_disagrees", "runtime_broken",
        "go_live_check",
    ]  # fmt: skip

    # Then each is explained in the alert itself
    assert sorted(alerts.MEANING) == sorted(events)


def test_read_alert_reads_a_bare_json_message_as_itself() -> None:
    # Given a message that is JSON only (every other topic), When read, Then it is that JSON
    assert alerts.read_alert('{"kind":"poll","run_id":"r","seq":1}') == {
        "kind": "poll",
        "run_id": "r",
        "seq": 1,
    }


def test_about_document_reads_run_and_extract_from_name_and_bytes() -> None:
    # Given documents cut short, When what they still say is read
    run = alerts.about_document("_state/runs/20261129T020000Z-1a2b.json", b'{"extract": "Sales", "mode": "fu')
    file = alerts.about_document("_state/files/20261129T020000Z-1a2b/FILE_1.zip.json", b"\x00")
    lease = alerts.about_document("_state/leases/Orders.json", b"")

    # Then the run comes from the name, the extract from the bytes or the lease's name
    assert run == {"document_kind": "run", "run_id": "20261129T020000Z-1a2b", "extract": "Sales"}
    assert file == {"document_kind": "file", "run_id": "20261129T020000Z-1a2b"}
    assert lease == {"document_kind": "lease", "extract": "Orders"}
    assert alerts.about_document("_state/odd.json", None) == {}


def test_advice_commands_quote_what_a_shell_would_split() -> None:
    # Given an extract whose name has a space, When a failed re-land is advised
    alert = {**FAILED, "extract": "Sales EU", "mode": "full", "reland": True}

    # Then the command pastes as one argument per value
    assert alerts.advise(alert).commands == ("fusion-extract reland 44046 --extract 'Sales EU' --mode full",)


def test_every_title_names_event_extract_and_run_or_says_which_is_unknown() -> None:
    assert alerts.title({"event": "runtime_broken"}) == "RUNTIME_BROKEN (extract unknown) (no run)"
    assert alerts.title({"event": "stuck", "extract": "Sales"}) == "STUCK Sales (no run)"
    assert alerts.title({"event": "go_live_check", "function": "poll"}).startswith(
        "GO-LIVE CHECK fusion-extract poll"
    )
