"""What people read: an alert's Notifications title and body.

The alerts topic is consumed by people (e-mail, PagerDuty, a chat hook), so its messages get a title that
names the event, the extract and the run (`FAILED Sales 20261129T020000Z-1a2b...`: an e-mail rule can file
failures apart from successes) and a body of a few readable lines followed, on its last line, by the alert
as compact JSON for scripts (`read_alert`). Every other topic carries bare JSON, which functions parse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_TITLE = 255  # Notifications' title limit

# What each event means and what to do, in one line each (README's runbook says more).
MEANING: dict[str, tuple[str, str]] = {
    "landed": ("Every file landed, _manifest.json and _SUCCESS are written.", "Nothing."),
    "failed": (
        "The run ended FAILED: its attempts are spent or the error is permanent.",
        "Read the reason; fix the cause; then `fusion-extract rerun RUN`.",
    ),
    "timed_out": (
        "The job was still running at RUN_DEADLINE_HOURS; nothing was landed.",
        "Check the job in Fusion; `fusion-extract reland JOB --extract X --mode M` once it succeeded, "
        "or `fusion-extract rerun RUN`.",
    ),
    "cancelled": ("An operator cancelled the run; nothing more of it is landed.", "Nothing."),
    "needs_human": (
        "Fusion holds the job (ERROR_MANUAL_RECOVERY or a long HOLD); polling goes on.",
        "Recover or cancel the job in Fusion's Scheduled Processes.",
    ),
    "unknown_status": (
        "Fusion reports a status this build does not know; it is treated as running until the deadline.",
        "Look the job up in Fusion; report the status.",
    ),
    "stuck": (
        "The run failed transiently STALL_ALERT_AFTER times in a row; the sweep keeps trying.",
        "Read the problem (Vault, Fusion or Object Storage unreachable?); cancel if it cannot recover.",
    ),
    "overdue": (
        "The sweep re-drove the run STALL_ALERT_AFTER times without progress.",
        "Check the functions' logs and the topics' subscriptions.",
    ),
    "late": (
        "A scheduled run of the extract has not landed within its expected_within_hours.",
        "`fusion-extract status` shows its last landing and next start; `fusion-extract history` and `runs` "
        "for the extract show whether a run failed (rerun it) or none started (submit one; then check the "
        "schedule with `fusion-extract doctor`).",
    ),
    "unreadable_document": (
        "A ledger document could not be read; it was moved to _state/quarantine/.",
        "Read the quarantined document; rerun the run it belonged to if needed.",
    ),
    "assumed_complete": (
        "The job stayed COMPLETED past COMPLETED_GRACE_SECONDS and was taken as succeeded.",
        "Check the landed files against Fusion.",
    ),
    "manifest_disagrees": (
        "The run landed, but Fusion's .mf manifest and its listing disagree on file names.",
        "Compare _manifest.json with Fusion's manifest; re-land if a file is missing.",
    ),
    "runtime_broken": (
        "The function image cannot load or use its native libraries (OpenSSL libcrypto, zlib): "
        "submit started nothing and spent no Fusion job.",
        "Read the reason; rebuild the image with what docs/deploy.md says it must contain; run again.",
    ),
    "go_live_check": (
        "`fusion-extract doctor --cloud` checked that this function may publish to the alerts topic.",
        "Nothing: it is a test, not an incident.",
    ),
}


def title(alert: Mapping[str, Any]) -> str:
    """`<EVENT> <extract> <run id>`: what an e-mail rule filters on."""
    parts = [str(alert.get("event", "alert")).upper()]
    parts += [str(alert[key]) for key in ("extract", "run_id") if alert.get(key)]
    return " ".join(parts)[:MAX_TITLE]


def body(alert: Mapping[str, Any]) -> str:
    """A few readable lines, then a blank line, then the alert as one line of JSON (always last)."""
    event = str(alert.get("event", ""))
    meaning, action = MEANING.get(event, ("", ""))
    lines = [title(alert)]
    if meaning:
        lines.append(meaning)
    facts = [
        f"{label}: {alert[key]}"
        for key, label in (
            ("extract", "extract"),
            ("run_id", "run"),
            ("job_id", "job"),
            ("reason", "reason"),
            ("folder", "folder"),
            ("files", "files"),
            ("bytes", "bytes"),
            ("rows", "rows"),
            ("document", "document"),
            ("function", "function"),
        )
        if alert.get(key) is not None
    ]
    lines += facts
    if action:
        lines.append(f"What to do: {action}")
    return "\n".join(lines) + "\n\n" + json.dumps(alert, separators=(",", ":"), sort_keys=True)


def read_alert(text: str) -> dict[str, Any]:
    """The JSON of an alert's body (its last line); a bare JSON message reads as itself."""
    doc = json.loads(text.rstrip("\n").rsplit("\n", 1)[-1])
    if not isinstance(doc, dict):
        raise ValueError("an alert's last line must be a JSON object")
    return doc
