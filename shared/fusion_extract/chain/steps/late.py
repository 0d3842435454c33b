"""The sweep's watch over each catalog extract, from one read of its latest landing:

- HoursSinceLanded: hours since its latest landing, or since the sweep first watched it when it never landed.
  The sweep-silent alarm notices this figure stopping (terraform/monitoring.tf).
- HoursLate, for an extract with a service level (service_level.py): 0 on time, else the hours past the
  expected landing its latest scheduled start missed. Monitoring's `late` alarm reads it.
- A `late` alert the first time a scheduled start is found late: a marker per start in the ledger
  (Ledger.note_late) keeps overlapping and later sweeps quiet; the next start that slips is alerted anew.
"""

from __future__ import annotations

import logging
from datetime import datetime

from fusion_extract.catalog import Entry
from fusion_extract.chain.deps import Deps
from fusion_extract.clock import isoformat
from fusion_extract.errors import FusionExtractError
from fusion_extract.service_level import Standing, standing

log = logging.getLogger(__name__)


def watch_extracts(deps: Deps, entries: list[Entry], now: datetime) -> list[str]:
    """Post each extract's figures; the names of those found late. One extract's trouble never stops the
    others (its figures are missing this once, and the sweep tries again next time)."""
    late = []
    for entry in entries:
        try:
            if _watch(deps, entry, now):
                late.append(entry.name)
        except (FusionExtractError, ValueError) as exc:
            log.warning("extract not watched", extra={"extract": entry.name, "problem": str(exc)[:500]})
    return late


def _watch(deps: Deps, entry: Entry, now: datetime) -> bool:
    landed = deps.ledger.last_landed(entry.name)
    since = landed or deps.ledger.watched_since(entry.name, now)
    metrics = deps.metrics
    metrics.record("HoursSinceLanded", (now - since).total_seconds() / 3600, extract=entry.name)
    if entry.expected_within_hours is None or entry.schedule is None or not entry.enabled:
        return False
    found = standing(entry, landed, since, now)
    metrics.record("HoursLate", found.hours_late(now), extract=entry.name)
    if not found.late or found.scheduled is None or found.expected_by is None:
        return False
    if deps.ledger.note_late(entry.name, found.scheduled):
        last = f"its last landing was {_local(landed, found)}" if landed else "it has never landed"
        reason = (
            f"the run scheduled for {_local(found.scheduled, found)} ({entry.time_zone}) was expected to "
            f"land by {_local(found.expected_by, found)}, within {entry.expected_within_hours:g} h; {last}"
        )
        deps.alerter.notify(
            "late",
            extract=entry.name,
            reason=reason,
            scheduled=isoformat(found.scheduled),
            expected_by=isoformat(found.expected_by),
        )
    return True


def _local(moment: datetime, found: Standing) -> str:
    """A moment as the extract's schedule reads it: wall-clock time in its time zone."""
    zone = found.scheduled.tzinfo if found.scheduled is not None else None
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"
