"""Schedules read as Resource Scheduler reads them (RRULE or cron, in the extract's time zone), and where an
extract stands against its service level: each scheduled run lands within expected_within_hours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fusion_extract.catalog import Entry
from fusion_extract.models import Mode
from fusion_extract.schedule import Schedule
from fusion_extract.service_level import standing


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "kind", "at", "previous", "following"),
    [
        # a daily RRULE at 02:00 UTC
        (
            "FREQ=DAILY;BYHOUR=2;BYMINUTE=0",
            "ICAL",
            utc(2026, 3, 1, 8),
            utc(2026, 3, 1, 2),
            utc(2026, 3, 2, 2),
        ),
        # the same with the RRULE: prefix some tools write
        (
            "RRULE:FREQ=DAILY;BYHOUR=2;BYMINUTE=0",
            "ICAL",
            utc(2026, 3, 1, 1),
            utc(2026, 2, 28, 2),
            utc(2026, 3, 1, 2),
        ),
        # weekdays only: Friday's run is the one before the weekend, Monday's the next
        ("0 3 * * 1-5", "CRON", utc(2026, 3, 1, 12), utc(2026, 2, 27, 3), utc(2026, 3, 2, 3)),
        # every 15 minutes
        ("*/15 * * * *", "CRON", utc(2026, 3, 1, 8, 7), utc(2026, 3, 1, 8, 0), utc(2026, 3, 1, 8, 15)),
        # an occurrence exactly at `at` is the previous one, not the following
        ("0 8 * * *", "CRON", utc(2026, 3, 1, 8), utc(2026, 3, 1, 8), utc(2026, 3, 2, 8)),
        # both day fields restricted: either one fires (the 1st, or a Monday)
        ("0 0 1 * 1", "CRON", utc(2026, 3, 1, 12), utc(2026, 3, 1, 0), utc(2026, 3, 2, 0)),
    ],
)
def test_schedule_previous_and_following_occurrences(
    expression: str, kind: str, at: datetime, previous: datetime, following: datetime
) -> None:
    # Given a schedule in UTC, When asked around `at`, Then it gives the occurrences either side
    schedule = Schedule.parse(expression, kind, "UTC")
    assert schedule.previous(at) == previous
    assert schedule.following(at) == following


@pytest.mark.parametrize("kind", ["ICAL", "CRON"])
def test_schedule_keeps_wall_clock_time_in_its_time_zone_across_daylight_saving(kind: str) -> None:
    # Given a daily 02:00 start in Europe/Paris (UTC+1 in winter, UTC+2 from 29 March 2026)
    expression = "FREQ=DAILY;BYHOUR=2;BYMINUTE=0" if kind == "ICAL" else "0 2 * * *"
    schedule = Schedule.parse(expression, kind, "Europe/Paris")

    # When asked in winter and in summer, Then it starts at 02:00 Paris time both times
    assert schedule.following(utc(2026, 3, 1, 12)) == utc(2026, 3, 2, 1)
    assert schedule.following(utc(2026, 6, 1, 12)) == utc(2026, 6, 2, 0)


def sales(**changes: object) -> Entry:
    fields: dict[str, object] = {
        "name": "Sales",
        "mode": Mode.FULL,
        "schedule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=0",
        "time_zone": "Europe/Paris",
        "expected_within_hours": 4.0,
        **changes,
    }
    return Entry(**fields)  # type: ignore[arg-type]


WATCHED = utc(2026, 1, 1)


def test_standing_is_on_time_until_the_expected_landing_passes_then_late_until_a_landing() -> None:
    # Given Sales (02:00 Paris, within 4 h: by 06:00 Paris, 05:00 UTC in winter), last landed on 1 March
    landed = utc(2026, 3, 1, 2, 30)

    # When looked at on 2 March at 04:59 UTC, Then it is on time, its next run at 02:00 Paris on 3 March
    early = standing(sales(), landed, WATCHED, utc(2026, 3, 2, 4, 59))
    assert not early.late and early.next_run == utc(2026, 3, 3, 1)

    # When looked at at 06:30 UTC, Then it is late for 2 March's run, by an hour and a half
    now = utc(2026, 3, 2, 6, 30)
    late = standing(sales(), landed, WATCHED, now)
    assert late.late and late.scheduled == utc(2026, 3, 2, 1) and late.expected_by == utc(2026, 3, 2, 5)
    assert late.hours_late(now) == 1.5

    # When a run landed after 2 March's start, Then it is on time again
    assert not standing(sales(), utc(2026, 3, 2, 6), WATCHED, now).late


def test_standing_of_an_extract_never_landed_counts_only_starts_after_it_was_first_watched() -> None:
    # Given Sales first watched on 2 March at 03:00 UTC, never landed
    watched = utc(2026, 3, 2, 3)

    # When looked at the same day at 06:30 UTC, Then that morning's start came before: not late
    assert not standing(sales(), None, watched, utc(2026, 3, 2, 6, 30)).late
    # When looked at the next day at 06:30 UTC, Then it is late for the 3 March start
    assert standing(sales(), None, watched, utc(2026, 3, 3, 6, 30)).late


@pytest.mark.parametrize(
    "entry",
    [sales(expected_within_hours=None), sales(enabled=False), sales(schedule=None)],
    ids=["no expectation", "disabled", "no schedule"],
)
def test_standing_without_an_expectation_is_never_late(entry: Entry) -> None:
    # Given an extract with no expectation, a disabled one, or one without a schedule, never landed
    found = standing(entry, None, WATCHED, utc(2026, 3, 2, 12))
    # Then it is not late and has no expected landing
    assert not found.late and found.expected_by is None and found.within is None


def test_standing_holds_a_start_to_elapsed_hours_on_the_night_the_clocks_change() -> None:
    # Given Sales starting at 00:30 Paris, within 4 h, on 29 March 2026 when 02:00 becomes 03:00
    entry = sales(schedule="FREQ=DAILY;BYHOUR=0;BYMINUTE=30")

    # When looked at 3 h 45 min after the start (23:30 UTC + 3:45), Then it is not late yet
    found = standing(entry, utc(2026, 3, 27, 23, 45), WATCHED, utc(2026, 3, 29, 3, 15))
    assert not found.late
    # And its expected landing is four real hours after the start
    later = standing(entry, utc(2026, 3, 27, 23, 45), WATCHED, utc(2026, 3, 29, 3, 31))
    assert later.late and later.expected_by == utc(2026, 3, 29, 3, 30)
