"""When an extract's schedule starts it: the occurrences of its RRULE or cron expression, in its time zone.

Resource Scheduler reads the catalog's `schedule` in the extract's `time_zone` (terraform/schedules.tf), so
the occurrences here are wall-clock times of that zone, returned as aware datetimes: "FREQ=DAILY;BYHOUR=2"
in Europe/Paris is 01:00 UTC in winter and 00:00 UTC in summer.

- ICAL: an RFC 5545 RRULE, read by python-dateutil (already installed with the oci SDK). Its occurrences
  count from local midnight, 1 January of the year before: an INTERVAL above 1 has the phase Resource
  Scheduler gives it only when the schedule started on such a boundary.
- CRON: five fields (minute hour day-of-month month day-of-week, 0 or 7 = Sunday), each `*`, a number, a
  range, a step or a list of those; both day fields restricted: a day matching either fires, as cron does.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

HORIZON_DAYS = 4 * 366 + 1  # far enough for "0 0 29 2 *": a rule silent this long has no occurrence


@dataclass(frozen=True)
class Schedule:
    """One extract's recurrence: `previous(at)` and `following(at)` its occurrences around a moment."""

    expression: str
    recurrence_type: str  # ICAL or CRON
    zone: ZoneInfo

    @classmethod
    def parse(cls, expression: str, recurrence_type: str = "ICAL", time_zone: str = "UTC") -> Schedule:
        """ValueError naming what is wrong: the time zone, the cron field, or the RRULE."""
        try:
            zone = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"time_zone {time_zone!r} is not an IANA time zone") from None
        schedule = cls(expression.strip(), recurrence_type, zone)
        if recurrence_type == "CRON":
            _Cron.parse(schedule.expression)
        else:
            schedule._rule(datetime(2000, 1, 1, tzinfo=zone))
        return schedule

    def previous(self, at: datetime) -> datetime | None:
        """The latest occurrence at or before `at`."""
        if self.recurrence_type == "CRON":
            return _Cron.parse(self.expression).previous(at.astimezone(self.zone))
        local = at.astimezone(self.zone)
        found: datetime | None = self._rule(local).before(local, inc=True)
        return found

    def following(self, at: datetime) -> datetime | None:
        """The first occurrence strictly after `at`."""
        if self.recurrence_type == "CRON":
            return _Cron.parse(self.expression).following(at.astimezone(self.zone))
        local = at.astimezone(self.zone)
        found: datetime | None = self._rule(local).after(local, inc=False)
        return found

    def _rule(self, around: datetime) -> rrule:
        start = datetime(around.year - 1, 1, 1, tzinfo=self.zone)
        text = self.expression.removeprefix("RRULE:")
        try:
            rule = rrulestr(text, dtstart=start)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"schedule {self.expression!r} is not an RFC 5545 RRULE ({exc})") from None
        if not isinstance(rule, rrule):
            raise ValueError(f"schedule {self.expression!r} must be one RRULE")
        return rule


@dataclass(frozen=True)
class _Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    fires_on: Callable[[date], bool]

    @classmethod
    def parse(cls, expression: str) -> _Cron:
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(f"cron {expression!r} must have 5 fields: minute hour day month weekday")
        minute, hour, day, month, weekday = fields
        days = _field("day-of-month", day, 1, 31)
        months = _field("month", month, 1, 12)
        weekdays = {value % 7 for value in _field("day-of-week", weekday, 0, 7)}  # 0 = Sunday
        either = not day.startswith("*") and not weekday.startswith("*")

        def fires_on(on: date) -> bool:
            by_day, by_weekday = on.day in days, (on.weekday() + 1) % 7 in weekdays
            return on.month in months and ((by_day or by_weekday) if either else (by_day and by_weekday))

        return cls(
            tuple(sorted(_field("minute", minute, 0, 59))),
            tuple(sorted(_field("hour", hour, 0, 23))),
            fires_on,
        )

    def previous(self, at: datetime) -> datetime | None:
        times = sorted(itertools.product(self.hours, self.minutes), reverse=True)
        for back in range(HORIZON_DAYS):
            on = at.date() - timedelta(days=back)
            if self.fires_on(on):
                for hour, minute in times:
                    moment = datetime.combine(on, time(hour, minute), at.tzinfo)
                    if moment <= at:
                        return moment
        return None

    def following(self, at: datetime) -> datetime | None:
        times = sorted(itertools.product(self.hours, self.minutes))
        for ahead in range(HORIZON_DAYS):
            on = at.date() + timedelta(days=ahead)
            if self.fires_on(on):
                for hour, minute in times:
                    moment = datetime.combine(on, time(hour, minute), at.tzinfo)
                    if moment > at:
                        return moment
        return None


def _field(name: str, text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if span == "*":
                first, last = low, high
            elif "-" in span:
                first, last = (int(part) for part in span.split("-", 1))
            else:
                first = int(span)
                last = high if step_text else first
        except ValueError:
            raise ValueError(f"cron {name} field {item!r} is not *, a number, a range or a step") from None
        if not low <= first <= last <= high or step < 1:
            raise ValueError(f"cron {name} field {item!r} must stay within {low}-{high}")
        values.update(range(first, last + 1, step))
    return values
