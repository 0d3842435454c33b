"""What people read: an alert's Notifications title and body.

The alerts topic is consumed by people (e-mail, PagerDuty, a chat hook), so its messages get a title that
names the event, the extract and the run (`FAILED Sales 20261129T020000Z-1a2b...`: an e-mail rule can file
failures apart from successes) and a body of a few readable lines followed, on its last line, by the alert
as compact JSON for scripts (`read_alert`). Every other topic carries bare JSON, which functions parse.

The body's advice is the commands for that very run, with its values, ready to paste (`advise`): what
can work for the cause the alert saw, never a placeholder.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_TITLE = 255  # Notifications' title limit
CLI = "fusion-extract"
NO_EXTRACT, NO_RUN = "(extract unknown)", "(no run)"

# What each event means and what to do, in one line each (docs/operating.md says more; `advise` gives the
# commands for one alert).
MEANING: dict[str, tuple[str, str]] = {
    "landed": ("Every file landed; _manifest.json and _SUCCESS are written.", "Nothing."),
    "failed": (
        "The run ended FAILED: its attempts are spent (RUN_MAX_ATTEMPTS jobs, FILE_MAX_ATTEMPTS per file) or "
        "the error is permanent (a 4xx, refused credentials, a hostile ZIP, a cross-check mismatch); the "
        "reason says which.",
        "Read the reason; fix the cause; then rerun the run (a re-landing run: re-land its job).",
    ),
    "timed_out": (
        "The run was not done at RUN_DEADLINE_HOURS; nothing more of it is landed.",
        "With a job: check it in Fusion and re-land it once it succeeded, or rerun; without one: rerun.",
    ),
    "cancelled": (
        "An operator cancelled the run; nothing more of it is landed (the Fusion job may run on).",
        "Nothing.",
    ),
    "needs_human": (
        "Fusion holds the job (ERROR_MANUAL_RECOVERY, or HOLD for an hour); polling goes on.",
        "Recover or cancel the job in Fusion's Scheduled Processes, or cancel the run to stop waiting.",
    ),
    "unknown_status": (
        "Fusion reports a status this build does not know; it is treated as running until the deadline.",
        "Look the job up in Fusion; report the status; cancel the run if it will not end.",
    ),
    "stuck": (
        "The run failed transiently STALL_ALERT_AFTER times in a row (Vault, IDCS, Fusion or Object Storage "
        "unreachable); the sweep keeps trying.",
        "Read the problem (Vault, Fusion or Object Storage unreachable?); cancel if it cannot recover.",
    ),
    "overdue": (
        "The sweep re-drove the run STALL_ALERT_AFTER times without progress (messages lost, functions not "
        "running).",
        "Check the deployment (doctor), the functions' logs and the topics' subscriptions.",
    ),
    "late": (
        "A scheduled run of the extract has not landed within its expected_within_hours.",
        "`fusion-extract status` shows its last landing and next start; `fusion-extract history` and `runs` "
        "for the extract show whether a run failed (rerun it) or none started (submit one; then check the "
        "schedule with `fusion-extract doctor`).",
    ),
    "unreadable_document": (
        "A ledger document could not be read; it was moved to _state/quarantine/. The title names the "
        "extract and run its name and bytes still spell out, or says so.",
        "Read the quarantined document; start the extract again (or re-land its job) if its run is lost.",
    ),
    "assumed_complete": (
        "The job stayed COMPLETED past COMPLETED_GRACE_SECONDS with its files listed and was taken as "
        "succeeded (the manifest says job_completion: assumed).",
        "Check the landed files against Fusion.",
    ),
    "manifest_disagrees": (
        "The run landed, but Fusion's .mf manifest and its listing disagree on file names.",
        "Compare _manifest.json with Fusion's manifest; re-land the job if a file is missing.",
    ),
    "runtime_broken": (
        "The function image cannot load or use its native libraries (OpenSSL libcrypto, zlib; the reason "
        "names each library tried and where): submit started nothing and spent no Fusion job, answers 502 "
        "until the image is fixed, and alerts once per container.",
        "Read the reason; rebuild the image with what docs/deploy.md says it must contain; run again.",
    ),
    "go_live_check": (
        "`fusion-extract doctor --cloud` checked that this function may publish to the alerts topic.",
        "Nothing: it is a test, not an incident.",
    ),
}


@dataclass(frozen=True)
class Advice:
    """What one alert means and what to do about it: prose, then commands to paste, in order."""

    meaning: str
    action: str
    commands: tuple[str, ...] = ()


ABOUT_EXTRACTS = frozenset({"late"})  # events that concern an extract, not a run: titled `<EVENT> <extract>`


def title(alert: Mapping[str, Any]) -> str:
    """`<EVENT> <extract> <run id>`: what an e-mail rule filters on; says so when either is unknown."""
    event = str(alert.get("event", "alert")).upper()
    if alert.get("event") == "go_live_check":  # no extract, no run: the function that published it
        return f"GO-LIVE CHECK fusion-extract {alert.get('function', '')} (a test, not an incident)"
    extract = str(alert.get("extract") or NO_EXTRACT)
    if alert.get("event") in ABOUT_EXTRACTS:  # of an extract, never of one run
        return f"{event} {extract}"[:MAX_TITLE]
    run = str(alert.get("run_id") or NO_RUN)
    return f"{event} {extract} {run}"[:MAX_TITLE]


def body(alert: Mapping[str, Any]) -> str:
    """A few readable lines, the commands to paste, then a blank line and the alert as one line of JSON
    (always last)."""
    advice = advise(alert)
    lines = [title(alert)]
    if advice.meaning:
        lines.append(advice.meaning)
    lines += [
        f"{label}: {alert[key]}"
        for key, label in (
            ("extract", "extract"),
            ("run_id", "run"),
            ("mode", "mode"),
            ("job_id", "job"),
            ("reason", "reason"),
            ("folder", "folder"),
            ("files", "files"),
            ("bytes", "bytes"),
            ("rows", "rows"),
            ("document", "document"),
            ("quarantined", "moved to"),
            ("function", "function"),
        )
        if alert.get(key) is not None
    ]
    if advice.action:
        lines.append(f"What to do: {advice.action}")
    lines += [f"    {command}" for command in advice.commands]
    return "\n".join(lines) + "\n\n" + json.dumps(alert, separators=(",", ":"), sort_keys=True)


def read_alert(text: str) -> dict[str, Any]:
    """The JSON of an alert's body (its last line); a bare JSON message reads as itself."""
    doc = json.loads(text.rstrip("\n").rsplit("\n", 1)[-1])
    if not isinstance(doc, dict):
        raise ValueError("an alert's last line must be a JSON object")
    return doc


def commands(text: str) -> list[str]:
    """The commands an alert's body advises (its indented lines), as a person would copy them."""
    return [line.strip() for line in text.split("\n") if line.startswith("    ")]


# -- advice for one alert ------------------------------------------------------------------------------


def advise(alert: Mapping[str, Any]) -> Advice:
    """The advice for this alert: its cause decides the words, its values fill the commands."""
    event = str(alert.get("event", ""))
    meaning, action = MEANING.get(event, ("", ""))
    a = _Alert(alert)
    if event == "failed":
        if a.reland and a.job:
            return Advice(
                meaning, "Read the reason; fix the cause; then land the job again:", (a.reland_cmd,)
            )
        return Advice(
            meaning, "Read the reason; fix the cause; then start the run again:", (a.cli("rerun", a.run),)
        )
    if event == "timed_out":
        return _timed_out(a)
    if event in ("needs_human", "unknown_status"):
        where = f"job {a.job}" if a.job else "the job"
        act = (
            f"Recover or cancel {where} in Fusion's Scheduled Processes; or stop waiting for it:"
            if event == "needs_human"
            else f"Look {where} up in Fusion and report its status; stop waiting if it will not end:"
        )
        return Advice(meaning, act, (a.cli("show", a.run), a.cli("cancel", a.run)))
    if event == "stuck":
        act = "Read the run's problem; check what it needs; cancel it if it cannot recover:"
        return Advice(meaning, act, (a.cli("show", a.run), a.cli("doctor"), a.cli("cancel", a.run)))
    if event == "overdue":
        act = "Check the deployment and the run (functions' logs, topics' subscriptions):"
        return Advice(meaning, act, (a.cli("doctor"), a.cli("show", a.run)))
    if event == "unreadable_document":
        return _unreadable(a, meaning)
    if event == "assumed_complete":
        return Advice(
            meaning, f"Check the landed files against job {a.job} in Fusion:", (a.cli("show", a.run),)
        )
    if event == "manifest_disagrees":
        act = "Compare _manifest.json with Fusion's manifest; if a file is missing, land the job again:"
        return Advice(meaning, act, (a.cli("show", a.run), *((a.reland_cmd,) if a.job and a.mode else ())))
    if event == "late":
        act = "See where the extract stands and its latest runs (rerun a failed one; if none started, check"
        act += " the schedule and its grant with doctor):"
        return Advice(meaning, act, (a.cli("status"), a.cli("runs", "--extract", a.extract)))
    if event == "runtime_broken":
        act = "Read the reason; rebuild the image (docs/deploy.md: what the image must contain); then check:"
        then = (a.cli("submit", a.extract, "--mode", a.mode),) if a.extract and a.mode else ()
        return Advice(meaning, act, (a.cli("doctor", "--cloud"), *then))
    return Advice(meaning, action)


def _timed_out(a: _Alert) -> Advice:
    if a.job is None:
        meaning = "The job's submission never succeeded before RUN_DEADLINE_HOURS: no Fusion job exists."
        return Advice(
            meaning, "Fix what the reason names; then start the run again:", (a.cli("rerun", a.run),)
        )
    if "transfer" in a.reason:
        meaning = f"Job {a.job} succeeded, but its files were not all landed at RUN_DEADLINE_HOURS."
        return Advice(meaning, "Land the job's files again (no new job):", (a.reland_cmd,))
    meaning = f"Job {a.job} was still running at RUN_DEADLINE_HOURS; nothing of it was landed."
    act = f"Check job {a.job} in Fusion: once it succeeded, land it (first); else start a new run (second):"
    return Advice(meaning, act, (a.reland_cmd, a.cli("rerun", a.run)))


def _unreadable(a: _Alert, meaning: str) -> Advice:
    read: tuple[str, ...] = ()
    moved, bucket, namespace = a.get("quarantined"), a.get("bucket"), a.get("namespace")
    if moved and bucket:
        within = ("--namespace", namespace) if namespace else ()
        get = ["oci", "os", "object", "get", *within, "--bucket-name", bucket, "--name", moved, "--file", "-"]
        read = (shlex.join(get),)
    kind = a.get("document_kind")
    if kind == "file" and a.run:
        act = (
            f"The run {a.run} keeps its document; the sweep recreates the file's record and fetches it again "
            "while the run transfers. Follow it:"
        )
        return Advice(meaning, act, (*read, a.cli("show", a.run)))
    if not a.extract:
        act = "Neither the document's name nor its content names an extract; read it, then list the runs:"
        return Advice(meaning, act, (*read, a.cli("runs")))
    lost = f"run {a.run}" if kind == "run" and a.run else "its run"
    again: tuple[str, ...] = ()
    if a.job and a.mode:
        again = (a.reland_cmd,)
    elif a.mode:
        again = (a.cli("submit", a.extract, "--mode", a.mode),)
    act = f"The ledger no longer has {lost} (a rerun would find no run). Read the document; " + (
        "land its job again:"
        if a.job and a.mode
        else "start the extract again:"
        if again
        else "look at its runs:"
    )
    return Advice(meaning, act, (*read, *again, a.cli("runs", "--extract", a.extract)))


class _Alert:
    """An alert's values, ready for a command line."""

    def __init__(self, alert: Mapping[str, Any]) -> None:
        self.alert = alert
        self.run = self.get("run_id")
        self.extract = self.get("extract")
        self.job = self.get("job_id")
        self.mode = self.get("mode")
        self.reland = bool(self.alert.get("reland"))
        self.reason = self.get("reason") or ""

    def get(self, key: str) -> str | None:
        value = self.alert.get(key)
        return None if value is None or value == "" else str(value)

    def cli(self, *words: str | None) -> str:
        return shlex.join([CLI, *(word or "" for word in words)])

    @property
    def reland_cmd(self) -> str:
        return self.cli("reland", self.job, "--extract", self.extract, "--mode", self.mode)


# -- an unreadable document: what its name and content still say ----------------------------------------

_FIELD = re.compile(r'"(run_id|extract|mode|job_id)"\s*:\s*"([^"\\]{1,200})"')


def about_document(name: str, content: bytes | None) -> dict[str, str]:
    """What a ledger document that does not decode still tells: its kind and run from its name
    (`runs/<run>.json`, `files/<run>/<file>.json`, `leases/<extract>.json`), and the extract, mode, job and
    run its bytes still spell out (the first of each)."""
    found: dict[str, str] = {}
    parts = name.split("/")
    if len(parts) >= 2 and parts[-2] == "runs":
        found.update(document_kind="run", run_id=parts[-1].removesuffix(".json"))
    elif len(parts) >= 3 and parts[-3] == "files":
        found.update(document_kind="file", run_id=parts[-2])
    elif len(parts) >= 2 and parts[-2] in ("leases", "last-landed"):
        found.update(document_kind="lease" if parts[-2] == "leases" else "last-landed")
        found["extract"] = parts[-1].removesuffix(".json")
    for key, value in _FIELD.findall((content or b"").decode("utf-8", errors="replace")):
        found.setdefault(key, value)
    return found
