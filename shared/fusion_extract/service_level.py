"""An extract's service level: each scheduled run lands within `expected_within_hours` of its scheduled start.

One concept serves the sweep's `late` alert, Monitoring's `late` alarm (through the HoursLate metric the
sweep posts) and `fusion-extract status`. A schedule of "FREQ=DAILY;BYHOUR=2" in Europe/Paris with 4 hours
expects a landing by 06:00 Paris time each day. The extract is late when the latest scheduled start whose
expected landing has passed saw no landing since: a run that lands, scheduled or started by hand, meets
every expectation scheduled before it. An extract that never landed is held only to the starts after the
sweep first watched it, so a new extract is not late for the days before it was deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fusion_extract.catalog import Entry
from fusion_extract.schedule import Schedule


@dataclass(frozen=True)
class Standing:
    """Where one extract stands against its service level at one moment."""

    extract: str
    within: timedelta | None  # None: no expectation (no schedule, or disabled)
    landed: datetime | None  # its latest landing
    scheduled: datetime | None = None  # the latest scheduled start whose expected landing has passed
    late: bool = False  # that start saw no landing by scheduled + within
    next_run: datetime | None = None  # the schedule's next start

    @property
    def expected_by(self) -> datetime | None:
        # Elapsed hours, not wall-clock ones: a start on the night clocks change is still held to N hours.
        if self.scheduled is None or self.within is None:
            return None
        return self.scheduled.astimezone(UTC) + self.within

    def hours_late(self, now: datetime) -> float:
        due = self.expected_by
        return max((now - due).total_seconds() / 3600, 0.0) if self.late and due is not None else 0.0


def standing(entry: Entry, landed: datetime | None, watched_since: datetime, now: datetime) -> Standing:
    """`entry`'s standing at `now`, given its latest landing (or when the sweep first watched it)."""
    if entry.schedule is None:
        return Standing(entry.name, None, landed)
    schedule = Schedule.parse(entry.schedule, entry.recurrence_type, entry.time_zone)
    following = schedule.following(now) if entry.enabled else None
    if entry.expected_within_hours is None or not entry.enabled:
        return Standing(entry.name, None, landed, next_run=following)
    within = timedelta(hours=entry.expected_within_hours)
    scheduled = schedule.previous(now - within)
    since = landed if landed is not None else watched_since
    late = scheduled is not None and since < scheduled
    return Standing(entry.name, within, landed, scheduled, late, following)
