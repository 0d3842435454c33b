"""The sweep's service-level check: for every catalog extract with an expectation, post HoursLate (0 on time;
Monitoring's `late` alarm reads it) and, the first time a scheduled start is found late, a `late` alert.

Once per extract per expected landing: a marker per scheduled start in the ledger (Ledger.note_late) makes
overlapping sweeps and every later sweep of the same lateness quiet; the next scheduled start that slips
is a new expectation, alerted anew.
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


def check_late(deps: Deps, entries: list[Entry], now: datetime) -> list[str]:
    """The extracts found late now; one extract's trouble never stops the others."""
    late = []
    for entry in entries:
        if entry.expected_within_hours is None or entry.schedule is None or not entry.enabled:
            continue
        try:
            if _check(deps, entry, now):
                late.append(entry.name)
        except (FusionExtractError, ValueError) as exc:
            log.warning("service level not checked", extra={"extract": entry.name, "problem": str(exc)[:500]})
    return late


def _check(deps: Deps, entry: Entry, now: datetime) -> bool:
    landed = deps.ledger.last_landed(entry.name)
    watched = landed or deps.ledger.watched_since(entry.name, now)
    found = standing(entry, landed, watched, now)
    deps.runs.metrics.record("HoursLate", found.hours_late(now), extract=entry.name)
    if not found.late or found.scheduled is None or found.expected_by is None:
        return False
    if deps.ledger.note_late(entry.name, found.scheduled):
        last = f"its last landing was {_local(landed, found)}" if landed else "it has never landed"
        reason = (
            f"the run scheduled for {_local(found.scheduled, found)} ({entry.time_zone}) was expected to "
            f"land by {_local(found.expected_by, found)}, within {entry.expected_within_hours:g} h; {last}"
        )
        deps.runs.notify(
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
