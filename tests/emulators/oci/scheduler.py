"""OCI Resource Scheduler for the emulator: schedules that start functions (START_RESOURCE, detached)
with their BODY parameter as the payload.

    scheduler = SchedulerService(functions)               # functions: FunctionsService
    scheduler.add_schedule("nightly", fn_ocid, "ICAL", "FREQ=DAILY;BYHOUR=2;BYMINUTE=0", '{"extract": "x"}')
    scheduler.tick(now)          # fires what is due by `now` (tests drive time)
    scheduler.start()            # or: a background thread ticks on the wall clock (demo)

Times are UTC and occurrences fall on whole minutes. Recurrences:

- CRON: five fields, minute hour day-of-month month day-of-week (0 or 7 = Sunday), each `*`,
  a number, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`, or a comma list of those. When both
  day fields are restricted a day matching either one fires (as cron does).
- ICAL: an RFC 5545 RRULE with FREQ=MINUTELY|HOURLY|DAILY|WEEKLY, INTERVAL, BYHOUR, BYMINUTE,
  BYDAY (MO..SU) and COUNT, counted from the schedule's start (`time_starts`, else when added).

A tick that finds several occurrences missed fires once (for the first one missed), then waits for
the next occurrence after the tick.
No HTTP API: schedules are created in-process (Terraform's job in the cloud).

A schedule starts its function as its own principal (`schedule_ocid(id)`): when the emulator's grants
withhold InvokeFunction from it (grants.py), the firing is refused with 404, nothing runs, and the
schedule's last run reads FAILED (ListSchedules' lastRunStatus, management.py).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from fusion_extract.errors import ConfigError, ConflictError, NotFoundError
from tests.emulators.oci.functions import FunctionsService
from tests.emulators.oci.grants import Grants
from tests.emulators.oci.http import Route

HORIZON = timedelta(days=4 * 366 + 1)  # far enough for "0 0 29 2 *"; a rule silent this long never fires
WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
FREQUENCIES = {
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
}


class Recurrence(Protocol):
    def next_after(self, after: datetime) -> datetime | None:
        """The first occurrence strictly after `after`, or None if there is none."""


# -- CRON ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # cron numbering: 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        fields = expression.split()
        if len(fields) != 5:
            raise ConfigError(f"cron {expression!r} must have 5 fields: minute hour day month weekday")
        minute, hour, day, month, weekday = fields
        return cls(
            _cron_field("minute", minute, 0, 59),
            _cron_field("hour", hour, 0, 23),
            _cron_field("day-of-month", day, 1, 31),
            _cron_field("month", month, 1, 12),
            frozenset(value % 7 for value in _cron_field("day-of-week", weekday, 0, 7)),
            days_restricted=not day.startswith("*"),
            weekdays_restricted=not weekday.startswith("*"),
        )

    def next_after(self, after: datetime) -> datetime | None:
        start = _utc(after).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        while day <= start + HORIZON:
            if self._fires_on(day):
                for hour, minute in itertools.product(sorted(self.hours), sorted(self.minutes)):
                    candidate = day.replace(hour=hour, minute=minute)
                    if candidate >= start:
                        return candidate
            day += timedelta(days=1)
        return None

    def _fires_on(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return by_day or by_weekday
        return by_day and by_weekday


def _cron_field(name: str, text: str, low: int, high: int) -> frozenset[int]:
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
            raise ConfigError(f"cron {name} field {item!r} is not *, a number, a range or a step") from None
        if not low <= first <= last <= high or step < 1:
            raise ConfigError(f"cron {name} field {item!r} must stay within {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


# -- ICAL (RRULE) ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ICalRule:
    frequency: str
    interval: int
    by_hour: frozenset[int]
    by_minute: frozenset[int]
    by_day: frozenset[int]  # Python numbering: 0 = Monday
    count: int | None
    start: datetime

    @classmethod
    def parse(cls, rule: str, start: datetime) -> ICalRule:
        parts: dict[str, str] = {}
        for part in rule.strip().removeprefix("RRULE:").split(";"):
            key, equals, value = part.partition("=")
            if not equals or not value:
                raise ConfigError(f"ICAL rule part {part!r} must be KEY=VALUE")
            parts[key.strip().upper()] = value.strip().upper()
        unknown = set(parts) - {"FREQ", "INTERVAL", "BYHOUR", "BYMINUTE", "BYDAY", "COUNT"}
        if unknown:
            raise ConfigError(f"ICAL rule parts not supported: {', '.join(sorted(unknown))}")
        if parts.get("FREQ") not in FREQUENCIES:
            raise ConfigError(f"ICAL FREQ must be one of {', '.join(FREQUENCIES)}")
        return cls(
            parts["FREQ"],
            _ical_number("INTERVAL", parts.get("INTERVAL", "1"), 1, 10_000),
            _ical_numbers("BYHOUR", parts.get("BYHOUR"), 0, 23),
            _ical_numbers("BYMINUTE", parts.get("BYMINUTE"), 0, 59),
            _ical_weekdays(parts.get("BYDAY")),
            _ical_number("COUNT", parts["COUNT"], 1, 1_000_000) if "COUNT" in parts else None,
            _utc(start).replace(second=0, microsecond=0),
        )

    def next_after(self, after: datetime) -> datetime | None:
        after, skip = _utc(after), 0
        if self.count is None:  # nothing to count: jump to the period just before `after`
            skip = max(0, (after - self._first_period()) // self._step - 1)
        return next((moment for moment in self._occurrences(skip) if moment > after), None)

    @property
    def _step(self) -> timedelta:
        return FREQUENCIES[self.frequency] * self.interval

    def _first_period(self) -> datetime:
        start = self.start
        if self.frequency == "HOURLY":
            return start.replace(minute=0)
        if self.frequency == "DAILY":
            return start.replace(hour=0, minute=0)
        if self.frequency == "WEEKLY":
            return start.replace(hour=0, minute=0) - timedelta(days=start.weekday())
        return start

    def _occurrences(self, skip_periods: int) -> Iterator[datetime]:
        """Occurrences in order, from the period `skip_periods` after the first; stops at COUNT or
        when the periods pass the horizon without producing anything."""
        emitted = 0
        last_hit = max(self.start, self._first_period() + self._step * skip_periods)
        for index in itertools.count(skip_periods):
            period = self._first_period() + self._step * index
            if period > last_hit + HORIZON + self._step:
                return
            for candidate in sorted(self._candidates(period)):
                if candidate >= self.start and self._matches(candidate):
                    yield candidate
                    last_hit, emitted = candidate, emitted + 1
                    if self.count is not None and emitted >= self.count:
                        return

    def _candidates(self, period: datetime) -> Iterator[datetime]:
        """Expand the parts finer than FREQ (BYDAY for weekly, BYHOUR, BYMINUTE), defaulting to the
        start's value; parts at or above FREQ only filter (see _matches)."""
        weekly, frequency = self.frequency == "WEEKLY", self.frequency
        days = (self.by_day or {self.start.weekday()}) if weekly else {0}
        hours = (self.by_hour or {self.start.hour}) if frequency in ("DAILY", "WEEKLY") else {period.hour}
        minutes = (self.by_minute or {self.start.minute}) if frequency != "MINUTELY" else {period.minute}
        for day, hour, minute in itertools.product(days, hours, minutes):
            yield (period + timedelta(days=day)).replace(hour=hour, minute=minute)

    def _matches(self, moment: datetime) -> bool:
        return (
            (not self.by_hour or moment.hour in self.by_hour)
            and (not self.by_minute or moment.minute in self.by_minute)
            and (not self.by_day or moment.weekday() in self.by_day)
        )


def _ical_number(name: str, text: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ConfigError(f"ICAL {name}={text} must be a whole number within {low}-{high}")
    return int(text)


def _ical_numbers(name: str, text: str | None, low: int, high: int) -> frozenset[int]:
    return frozenset(_ical_number(name, item, low, high) for item in text.split(",")) if text else frozenset()


def _ical_weekdays(text: str | None) -> frozenset[int]:
    if not text:
        return frozenset()
    unknown = [item for item in text.split(",") if item not in WEEKDAYS]
    if unknown:
        raise ConfigError(f"ICAL BYDAY {','.join(unknown)} not supported: use MO,TU,WE,TH,FR,SA,SU")
    return frozenset(WEEKDAYS[item] for item in text.split(","))


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ConfigError(f"time {moment} has no time zone; schedules run in UTC")
    return moment.astimezone(UTC)


# -- the service -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    schedule_id: str
    function_id: str
    recurrence_type: str
    recurrence_details: str
    body: str
    recurrence: Recurrence


@dataclass(frozen=True)
class Run:
    """One firing: when it was due, when it fired, and what Functions answered (202 = accepted)."""

    schedule_id: str
    function_id: str
    scheduled_for: datetime
    fired_at: datetime
    status: int


def schedule_ocid(schedule_id: str) -> str:
    """The schedule's OCID: its principal's id when it starts a function."""
    return f"ocid1.resourceschedule.oc1.emu.{schedule_id}"


class SchedulerService:
    """Schedules firing detached function invocations; `runs` records every firing."""

    def __init__(
        self,
        functions: FunctionsService,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        grants: Grants | None = None,
    ) -> None:
        self.functions = functions
        self.grants = grants or Grants()
        self.runs: list[Run] = []
        self._now = now
        self._schedules: dict[str, Schedule] = {}
        self._next_due: dict[str, datetime | None] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def routes(self) -> list[Route]:
        return []

    def add_schedule(
        self,
        schedule_id: str,
        function_ocid: str,
        recurrence_type: str,
        recurrence_details: str,
        body: str,
        *,
        time_starts: datetime | None = None,
    ) -> Schedule:
        """Create an ACTIVE schedule; its first run is the first occurrence at or after its start."""
        start = _utc(time_starts or self._now())
        recurrence: Recurrence
        if recurrence_type == "CRON":
            recurrence = Cron.parse(recurrence_details)
        elif recurrence_type == "ICAL":
            recurrence = ICalRule.parse(recurrence_details, start)
        else:
            raise ConfigError(f"recurrence type {recurrence_type!r} must be CRON or ICAL")
        schedule = Schedule(schedule_id, function_ocid, recurrence_type, recurrence_details, body, recurrence)
        with self._lock:
            if schedule_id in self._schedules:
                raise ConflictError(f"schedule {schedule_id} already exists")
            self._schedules[schedule_id] = schedule
            self._next_due[schedule_id] = recurrence.next_after(start - timedelta(microseconds=1))
        return schedule

    def schedules(self) -> list[Schedule]:
        """Every schedule (ListSchedules, management.py)."""
        with self._lock:
            return list(self._schedules.values())

    def last_run(self, schedule_id: str) -> Run | None:
        """The schedule's latest firing, if it fired."""
        with self._lock:
            return next((run for run in reversed(self.runs) if run.schedule_id == schedule_id), None)

    def next_run(self, schedule_id: str, after: datetime) -> datetime | None:
        """When the schedule fires next after `after` (None: never again). Pure."""
        return self._schedule(schedule_id).recurrence.next_after(after)

    def fire_now(self, schedule_id: str) -> Run:
        """Fire out of turn (what a test or an operator's "run now" does)."""
        now = self._now()
        return self._fire(self._schedule(schedule_id), now, now)

    def tick(self, now: datetime) -> list[Run]:
        """Fire every schedule whose next run is due by `now`."""
        with self._lock:
            due = [(sid, at) for sid, at in self._next_due.items() if at is not None and at <= now]
            for schedule_id, _ in due:
                self._next_due[schedule_id] = self._schedules[schedule_id].recurrence.next_after(now)
        return [self._fire(self._schedules[schedule_id], at, now) for schedule_id, at in due]

    def start(self, every_seconds: float = 1.0) -> SchedulerService:
        """Tick on the wall clock in a background thread (the demo)."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._tick_forever, args=(every_seconds,), daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _tick_forever(self, every_seconds: float) -> None:
        while not self._stopping.wait(every_seconds):
            self.tick(self._now())

    def _schedule(self, schedule_id: str) -> Schedule:
        with self._lock:
            schedule = self._schedules.get(schedule_id)
        if schedule is None:
            raise NotFoundError(f"schedule {schedule_id} not found", status=404)
        return schedule

    def _fire(self, schedule: Schedule, scheduled_for: datetime, now: datetime) -> Run:
        principal = schedule_ocid(schedule.schedule_id)
        if self.grants.refuses("InvokeFunction", principal, schedule.function_id):
            status = 404  # NotAuthorizedOrNotFound: no policy lets this schedule invoke the function
        else:
            status = self.functions.invoke(
                schedule.function_id,
                schedule.body.encode(),
                invoke_type="detached",
                headers={"Content-Type": "application/json"},
            ).status
        run = Run(schedule.schedule_id, schedule.function_id, scheduled_for, now, status)
        with self._lock:
            self.runs.append(run)
        return run
