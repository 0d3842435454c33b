"""The backoff policy: full jitter over a doubling ceiling, Retry-After obeyed, bounded attempts and time."""

from datetime import timedelta
from email.utils import format_datetime

import pytest

from fusion_extract.errors import TransientError, UpstreamError
from fusion_extract.retry import RetryPolicy, parse_retry_after
from tests.clocks import ManualClock


def policy(
    clock: ManualClock, *, max_attempts: int = 6, max_seconds: float = 1000.0, max_delay: float = 30.0
) -> RetryPolicy:
    return RetryPolicy(
        clock,
        max_attempts=max_attempts,
        max_seconds=max_seconds,
        base_delay=1.0,
        max_delay=max_delay,
        rand=lambda: 0.5,
    )


def test_backoff_without_retry_after_sleeps_jittered_doubling_delays():
    # Given a policy of 6 attempts and a random source that always draws 0.5
    clock = ManualClock()
    backoff = policy(clock).start()

    # When five failures are recorded
    waited = [backoff.wait() for _ in range(5)]

    # Then each wait is half of 1, 2, 4, 8, 16 seconds
    assert waited == [True] * 5
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_backoff_ceiling_caps_the_jittered_delay():
    clock = ManualClock()
    backoff = policy(clock, max_delay=3.0).start()

    for _ in range(4):
        backoff.wait()

    assert clock.sleeps == [0.5, 1.0, 1.5, 1.5]


def test_backoff_jitter_draws_from_the_injected_source():
    clock = ManualClock()
    draws = iter([0.0, 0.25, 0.75])
    backoff = RetryPolicy(clock, rand=lambda: next(draws)).start()

    for _ in range(3):
        backoff.wait()

    assert clock.sleeps == [0.0, 0.5, 3.0]


def test_backoff_when_attempts_spent_refuses_without_sleeping():
    # Given a policy of 3 attempts
    clock = ManualClock()
    backoff = policy(clock, max_attempts=3).start()

    # When three attempts have failed
    results = [backoff.wait(), backoff.wait(), backoff.wait()]

    # Then the third failure ends the call, after only two sleeps
    assert results == [True, True, False]
    assert len(clock.sleeps) == 2


def test_backoff_with_retry_after_sleeps_exactly_that_long():
    clock = ManualClock()
    backoff = policy(clock).start()

    assert backoff.wait(retry_after=42.0)

    assert clock.sleeps == [42.0]


def test_backoff_when_retry_after_reaches_past_time_budget_gives_up_now():
    # Given a call allowed 60 seconds in all
    clock = ManualClock()
    backoff = policy(clock, max_seconds=60.0).start()

    # When the server asks us to come back in 120 seconds
    result = backoff.wait(retry_after=120.0)

    # Then we stop instead of sleeping or coming back early
    assert result is False
    assert clock.sleeps == []


def test_backoff_counts_time_spent_working_against_the_budget():
    # Given a 10-second budget of which the attempts themselves used 9.8 seconds
    clock = ManualClock()
    backoff = policy(clock, max_seconds=10.0).start()
    clock.advance(9.8)

    # When a failure asks for the first (0.5 s) delay
    result = backoff.wait()

    # Then it would overrun the budget, so the call ends
    assert result is False
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
    ],
)
def test_parse_retry_after_delta_seconds(header, expected):
    assert parse_retry_after(header, ManualClock().now()) == expected


def test_parse_retry_after_http_date_gives_seconds_from_now():
    clock = ManualClock()
    header = format_datetime(clock.now() + timedelta(seconds=90), usegmt=True)

    assert parse_retry_after(header, clock.now()) == 90.0


def test_parse_retry_after_http_date_in_the_past_gives_zero():
    clock = ManualClock()
    header = format_datetime(clock.now() - timedelta(minutes=5), usegmt=True)

    assert parse_retry_after(header, clock.now()) == 0.0


def test_parse_retry_after_date_without_zone_is_read_as_gmt():
    clock = ManualClock()

    assert parse_retry_after("Sun, 01 Mar 2026 08:00:30 -0000", clock.now()) == 30.0


def test_call_retries_transient_failures_until_the_operation_succeeds():
    # Given an operation that fails twice with a transient error (the second asks for 7 s), then succeeds
    clock = ManualClock()
    failures = iter([TransientError("busy"), TransientError("busy", retry_after=7.0)])

    def operation() -> str:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return "done"

    # When it is called under the policy
    result = policy(clock).call(operation)

    # Then it returns the success, after a jittered wait and the server's own
    assert result == "done"
    assert clock.sleeps == [0.5, 7.0]


def test_call_raises_a_permanent_failure_at_once():
    clock = ManualClock()

    def operation() -> str:
        raise UpstreamError("refused", status=400)

    with pytest.raises(UpstreamError, match="refused"):
        policy(clock).call(operation)
    assert clock.sleeps == []


def test_call_before_retry_can_end_the_call_with_what_it_found():
    # Given an operation whose every try fails transiently, and a look-up that finds its effect
    clock = ManualClock()
    tries: list[int] = []

    def operation() -> str:
        tries.append(1)
        raise TransientError("timed out after sending")

    # When it is called with that look-up before each retry
    result = policy(clock).call(operation, before_retry=lambda: "job-44046")

    # Then the first look-up's finding is the result, and the operation ran once
    assert result == "job-44046" and len(tries) == 1


def test_call_when_the_budget_is_spent_raises_the_last_failure():
    clock = ManualClock()

    def operation() -> str:
        raise TransientError(f"busy {len(clock.sleeps)}")

    with pytest.raises(TransientError, match="busy 2"):
        policy(clock, max_attempts=3).call(operation)
