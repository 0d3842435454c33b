"""Resource Scheduler: when CRON and ICAL schedules fire, and what a firing does to the function."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fusion_extract.errors import ConfigError, ConflictError, NotFoundError
from tests.emulators.fdk_runtime import FdkFunction
from tests.emulators.oci.functions import FunctionsService
from tests.emulators.oci.scheduler import SchedulerService
from tests.emulators.test_fdk_runtime import ECHO, write_function

START = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # a Sunday
AFTER = datetime(2026, 3, 10, 10, 7, 30, tzinfo=UTC)  # a Tuesday
NOBODY = "ocid1.fnfunc.oc1..nobody"


def at(day: int, hour: int = 0, minute: int = 0, *, month: int = 3, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("recurrence_type", "details", "expected"),
    [
        ("CRON", "*/15 * * * *", at(10, 10, 15)),
        ("CRON", "0 2 * * *", at(11, 2)),
        ("CRON", "30 9-17/2 * * *", at(10, 11, 30)),
        ("CRON", "5,10 * * * *", at(10, 10, 10)),
        ("CRON", "0 8 * * 1-5", at(11, 8)),
        ("CRON", "0 12 * * 0,6", at(14, 12)),
        ("CRON", "0 0 * * 7", at(15)),
        ("CRON", "0 0 1 * *", at(1, month=4)),
        ("CRON", "0 0 12 * 5", at(12)),  # day 12 (a Thursday) or any Friday: the 12th comes first
        ("CRON", "0 0 29 2 *", at(29, month=2, year=2028)),
        ("CRON", "15/20 10 * * *", at(10, 10, 15)),
        ("ICAL", "FREQ=DAILY;BYHOUR=2;BYMINUTE=0", at(11, 2)),
        ("ICAL", "FREQ=MINUTELY;INTERVAL=5", at(10, 10, 10)),
        ("ICAL", "FREQ=HOURLY;INTERVAL=3;BYMINUTE=15", at(10, 12, 15)),
        ("ICAL", "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=10;BYMINUTE=0", at(11, 10)),
        ("ICAL", "FREQ=WEEKLY;INTERVAL=2", at(15)),
        ("ICAL", "FREQ=DAILY;INTERVAL=2;BYHOUR=6", at(11, 6)),
        ("ICAL", "FREQ=DAILY;BYDAY=SA,SU;BYHOUR=1", at(14, 1)),
        ("ICAL", "FREQ=MINUTELY;INTERVAL=30;BYHOUR=2", at(11, 2)),
        ("ICAL", "FREQ=DAILY;COUNT=15", at(11)),
        ("ICAL", "FREQ=DAILY;COUNT=3", None),
        ("ICAL", "RRULE:FREQ=HOURLY", at(10, 11)),
    ],
)
def test_next_run_after_a_tuesday_morning(
    recurrence_type: str, details: str, expected: datetime | None
) -> None:
    # Given a schedule that starts on Sunday 2026-03-01 00:00 UTC
    scheduler = SchedulerService(FunctionsService())
    scheduler.add_schedule("s", NOBODY, recurrence_type, details, "{}", time_starts=START)

    # When asked for its next run after Tuesday 2026-03-10 10:07:30
    # Then it names the expected moment (None: never again)
    assert scheduler.next_run("s", AFTER) == expected


@pytest.mark.parametrize(
    ("recurrence_type", "details", "named"),
    [
        ("CRON", "* * * *", "5 fields"),
        ("CRON", "61 * * * *", "minute"),
        ("CRON", "*/0 * * * *", "minute"),
        ("CRON", "0 MON * * *", "hour"),
        ("CRON", "0 0 * * 8", "day-of-week"),
        ("ICAL", "FREQ=YEARLY", "FREQ"),
        ("ICAL", "FREQ=DAILY;BYHOUR=24", "BYHOUR"),
        ("ICAL", "FREQ=DAILY;UNTIL=20270101T000000Z", "UNTIL"),
        ("ICAL", "FREQ=WEEKLY;BYDAY=1MO", "BYDAY"),
        ("ICAL", "FREQ=DAILY;INTERVAL=0", "INTERVAL"),
        ("ICAL", "FREQ=DAILY;COUNT", "COUNT"),
        ("RRULE", "FREQ=DAILY", "CRON or ICAL"),
    ],
)
def test_add_schedule_bad_recurrence_raises_config_error_naming_it(
    recurrence_type: str, details: str, named: str
) -> None:
    # Given a scheduler
    scheduler = SchedulerService(FunctionsService())

    # When a schedule with a bad recurrence is added, Then the error names the bad part
    with pytest.raises(ConfigError, match=named):
        scheduler.add_schedule("s", NOBODY, recurrence_type, details, "{}", time_starts=START)


def test_tick_fires_what_is_due_once_and_catches_up_missed_runs_once() -> None:
    # Given a schedule every 15 minutes from START, for a function that is not there
    functions = FunctionsService()
    scheduler = SchedulerService(functions)
    scheduler.add_schedule("s", NOBODY, "CRON", "*/15 * * * *", "{}", time_starts=START)
    minutes = [0, 14, 15, 16, 61, 74, 75]

    # When the clock ticks at these minutes after START
    fired = {m: [run.scheduled_for for run in scheduler.tick(START + timedelta(minutes=m))] for m in minutes}

    # Then it fired when due, and after missing three runs it fired once, for the first one missed
    expected: list[list[datetime]] = [[START], [], [at(1, 0, 15)], [], [at(1, 0, 30)], [], [at(1, 1, 15)]]
    assert [fired[m] for m in minutes] == expected
    assert {run.status for run in scheduler.runs} == {404}


def test_tick_stops_after_count_occurrences() -> None:
    # Given a minutely schedule limited to two occurrences
    scheduler = SchedulerService(FunctionsService())
    scheduler.add_schedule("s", NOBODY, "ICAL", "FREQ=MINUTELY;COUNT=2", "{}", time_starts=START)

    # When the clock ticks every minute for five minutes
    for minute in range(5):
        scheduler.tick(START + timedelta(minutes=minute))

    # Then it fired twice
    assert [run.scheduled_for for run in scheduler.runs] == [START, START + timedelta(minutes=1)]


def test_fire_now_invokes_the_function_detached_with_the_body(tmp_path: Path) -> None:
    # Given a schedule for a running echo function, with a BODY payload
    functions = FunctionsService()
    scheduler = SchedulerService(functions)
    scheduler.add_schedule("nightly", "ocid1.fnfunc.oc1..echo", "ICAL", "FREQ=DAILY;BYHOUR=2", '{"x": 1}')
    with FdkFunction(write_function(tmp_path / "echo", ECHO), env={}, name="echo") as echo:
        functions.register("ocid1.fnfunc.oc1..echo", echo)

        # When it is fired out of turn
        run = scheduler.fire_now("nightly")

        # Then the invocation was accepted and the function ran detached with the payload
        assert run.status == 202
        assert functions.wait_idle(30)
    [invocation] = functions.invocations
    seen = json.loads(invocation.response)
    assert (invocation.invoke_type, seen["body"]) == ("detached", '{"x": 1}')
    assert seen["headers"]["fn-invoke-type"] == "detached"
    assert scheduler.runs == [run]


def test_add_schedule_twice_with_one_id_raises_conflict() -> None:
    # Given a schedule "s"
    scheduler = SchedulerService(FunctionsService())
    scheduler.add_schedule("s", NOBODY, "CRON", "0 * * * *", "{}")

    # When another schedule takes the same id, Then it is refused
    with pytest.raises(ConflictError, match="s already exists"):
        scheduler.add_schedule("s", NOBODY, "CRON", "0 * * * *", "{}")


def test_fire_now_unknown_schedule_raises_not_found() -> None:
    # Given no schedules
    scheduler = SchedulerService(FunctionsService())

    # When an unknown schedule is fired, Then it is refused by name
    with pytest.raises(NotFoundError, match="ghost"):
        scheduler.fire_now("ghost")
