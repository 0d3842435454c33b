"""The domain's value types: a runAtTimes window is valid by construction, and travels in Fusion's form."""

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from fusion_extract.errors import MessageError
from fusion_extract.models import RunAtTimes

USUAL = RunAtTimes(1, "DAY", date(2026, 1, 1), date(2026, 1, 31), "0100", "0200")


def window(**changes: Any) -> RunAtTimes:
    return replace(USUAL, **changes)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"interval": 0}, "interval 0 must be a positive"),
        ({"interval": True}, "interval True must be a positive"),
        ({"time_unit": "FORTNIGHT"}, "timeUnit 'FORTNIGHT'"),
        ({"start_time": "2400"}, "startTime '2400' must be a time HHMM"),
        ({"end_time": "12:30"}, "endTime '12:30' must be a time HHMM"),
        ({"end_time": "0960"}, "endTime '0960'"),
        ({"end_date": date(2025, 12, 31)}, "the window ends before it starts"),
        ({"end_date": date(2026, 1, 1), "end_time": "0059"}, "the window ends before it starts"),
    ],
)
def test_run_at_times_invalid_window_raises_message_error_naming_the_problem(changes, problem):
    # Given a window with one thing wrong, When it is built, Then MessageError names it
    with pytest.raises(MessageError, match=problem):
        window(**changes)


def test_run_at_times_names_every_problem_at_once():
    with pytest.raises(MessageError) as caught:
        window(interval=-1, time_unit="YEAR", start_time="9999")

    assert str(caught.value).count(";") == 2


def test_run_at_times_reads_fusion_dates_in_either_form_and_sends_fusions_own():
    # Given Fusion's documented shape, with one US date and one ISO date
    given = {
        "fixedInterval": {"interval": 1, "timeUnit": "hour"},
        "startDate": "12/16/2025",
        "endDate": "2025-12-17",
        "startTime": "1930",
        "endTime": "0230",
    }

    # When it is read and sent on
    sent = RunAtTimes.from_fusion(given).to_fusion()

    # Then Fusion gets MM/DD/YYYY dates and an upper-case unit
    assert sent == {**given, "fixedInterval": {"interval": 1, "timeUnit": "HOUR"}, "endDate": "12/17/2025"}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ([], "must be an object"),
        ({"fixedInterval": {}}, "missing endDate, endTime, startDate, startTime"),
        ({"startDate": "x", "extra": 1}, "unknown field"),
    ],
)
def test_run_at_times_from_fusion_refuses_a_malformed_shape(value, problem):
    with pytest.raises(MessageError, match=problem):
        RunAtTimes.from_fusion(value)
