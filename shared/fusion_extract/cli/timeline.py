"""What happened to a run and when (`show`): its history merged with its files', each entry in words.

A run document written before runs kept a history gets one rebuilt from its times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fusion_extract.chain.ledger.codec import entry_to_doc
from fusion_extract.chain.ledger.records import Entry, Fact, FileRecord, Run, What
from fusion_extract.clock import isoformat


@dataclass(frozen=True)
class Event:
    """One line of the timeline: an entry of the run's or a file's history, or what is due."""

    at: datetime
    text: str
    entry: Entry | None = None  # None: rebuilt from an old document's times, or what is due

    def to_json(self) -> dict[str, Any]:
        recorded = {} if self.entry is None else entry_to_doc(self.entry)
        return {**recorded, "at": isoformat(self.at), "event": self.text}


def timeline(run: Run, files: Iterable[FileRecord]) -> list[Event]:
    """The run's entries and its files', in time order (the run's first at equal times), with the status
    its job was last seen in since it was first seen, then what is due; the entries the documents dropped to
    stay bounded are counted on a first line."""
    files = list(files)
    events = [Event(entry.at, entry_text(entry), entry) for entry in run.history]
    if not run.history:
        events += _rebuilt(run)
    if run.status_since is not None:
        events.append(Event(run.status_since, f"job {run.job_id} first seen {run.status}"))
    for record in files:
        events += [Event(entry.at, entry_text(entry), entry) for entry in record.history]
    events.sort(key=lambda event: event.at)  # stable: the run's entries before its files' at one time
    dropped = run.history.dropped + sum(record.history.dropped for record in files)
    if dropped and events:
        events.insert(0, Event(events[0].at, f"({dropped} earlier entries not kept)"))
    if not run.state.final:
        events.append(Event(run.next_at, "next step due"))
        if run.deadline is not None:
            events.append(Event(run.deadline, "deadline"))
    return events


def entry_text(entry: Entry) -> str:
    """One entry in words, ending with the invocation that made it."""
    return _words(entry) + (f" (call {entry.call_id})" if entry.call_id else "")


def change_words(entry: Entry) -> str:
    """`RUNNING -> TRANSFERRING`, `(created) -> SUBMITTING`."""
    source = "(created)" if entry.source is None else entry.source.value
    return f"{source} -> {entry.to.value if entry.to is not None else '?'}"


def _words(entry: Entry) -> str:
    facts = entry.facts
    if entry.what is What.CHANGED:
        return change_words(entry) + (f": {facts['reason']}" if "reason" in facts else "")
    if entry.what is What.JOB:
        if facts.get("reland"):
            return f"job {facts.get('job_id')} taken to re-land"
        return f"job {facts.get('job_id')} submitted (attempt {facts.get('attempt')})"
    if entry.what is What.ATTEMPT:
        return _attempt(facts)
    if entry.what is What.REDRIVE:
        return f"re-driven by the sweep ({facts.get('redrives')} in a row without progress)"
    if entry.what is What.ALERT:
        return f"alert sent: {facts.get('title')}"
    if entry.what is What.RERUN:
        return f"rerun of {facts['rerun_of']}" if "rerun_of" in facts else f"rerun by {facts.get('rerun_by')}"
    if "unit" in facts:
        return f"{facts.get('file')} unit {facts['unit']} claimed ({str(facts.get('work', '')).lower()})"
    return f"{facts.get('file')} claimed (attempt {facts.get('attempt')})"


def _attempt(facts: Mapping[str, Fact]) -> str:
    if "failures" in facts:
        text = f"a step failed ({facts['failures']} in a row)"
    else:
        unit = f" unit {facts['unit']}" if "unit" in facts else ""
        count = f" ({facts['retries']} in a row)" if "retries" in facts else ""
        text = f"{facts.get('file')}{unit} failed{count}"
    if "problem" in facts:
        text += f": {facts['problem']}"
    if facts.get("given_up"):
        return text + "; given up"
    return text + (f"; tried again from {facts['retry_at']}" if "retry_at" in facts else "")


def _rebuilt(run: Run) -> list[Event]:
    """An old document's timeline, from its times."""
    rerun = f" as a rerun of {run.rerun_of}" if run.rerun_of else ""
    events = [Event(run.created_at, f"run created ({run.mode}){rerun}")]
    if run.landed_at is not None:
        events.append(Event(run.landed_at, "every file landed; finishing"))
    last = f"last change: {run.state.value}" + (f" ({run.reason})" if run.reason else "")
    events.append(Event(run.updated_at, last))
    return events
