"""Backoff for transient failures: exponential with full jitter, honouring Retry-After, bounded twice.

One `Backoff` belongs to one logical call. It is bounded in attempts and in total time, and it waits
through the injected Clock, so tests record the sleeps instead of sleeping.

    backoff = policy.start()
    while True:
        try:
            return do_it()
        except SomethingTransient:
            if not backoff.wait():
                raise
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from fusion_extract.clock import Clock

RandomSource = Callable[[], float]  # uniform in [0, 1), like random.random


@dataclass(frozen=True)
class RetryPolicy:
    clock: Clock
    max_attempts: int = 6
    max_seconds: float = 120.0  # the whole call, waits included; never wait past it
    base_delay: float = 1.0
    max_delay: float = 30.0
    rand: RandomSource = field(default=random.random, repr=False)

    def start(self) -> Backoff:
        return Backoff(self)


class Backoff:
    """The retry budget of one call."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._started = policy.clock.now()
        self.failures = 0

    def wait(self, retry_after: float | None = None) -> bool:
        """Record a failure and sleep before the next attempt; False (no sleep) once the budget is spent.

        A server's Retry-After is obeyed as given: if it reaches past the time budget we give up now
        rather than come back early.
        """
        policy = self._policy
        self.failures += 1
        if self.failures >= policy.max_attempts:
            return False
        if retry_after is not None:
            delay = max(0.0, retry_after)
        else:
            ceiling = min(policy.max_delay, policy.base_delay * 2 ** (self.failures - 1))
            delay = policy.rand() * ceiling
        elapsed = (policy.clock.now() - self._started).total_seconds()
        if elapsed + delay > policy.max_seconds:
            return False
        policy.clock.sleep(delay)
        return True


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date); None if absent or bad."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # "-0000": HTTP-dates are GMT by definition
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())
