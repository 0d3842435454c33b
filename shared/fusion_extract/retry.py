"""Retrying transient failures: the product's one retry loop, and the backoff budget it spends.

`RetryPolicy.call(operation)` runs the operation until it succeeds, fails permanently, or its budget is
spent (attempts and total time, exponential backoff with full jitter, the server's Retry-After obeyed).
Waits go through the injected Clock, so tests record the sleeps instead of sleeping.

    response = policy.call(lambda: send_once(request))                 # our TransientError is retried
    job = policy.call(post, before_retry=lambda: find_job(token))       # look before posting again
    data = policy.call(sdk_call, is_transient=sdk_rule, retry_after=sdk_header)
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from fusion_extract.clock import Clock
from fusion_extract.errors import TransientError

log = logging.getLogger(__name__)

RandomSource = Callable[[], float]  # uniform in [0, 1), like random.random
T = TypeVar("T")


def _ours(exc: BaseException) -> bool:
    return isinstance(exc, TransientError)


def _our_retry_after(exc: BaseException) -> float | None:
    return exc.retry_after if isinstance(exc, TransientError) else None


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

    def call(
        self,
        operation: Callable[[], T],
        *,
        is_transient: Callable[[BaseException], bool] = _ours,
        retry_after: Callable[[BaseException], float | None] = _our_retry_after,
        before_retry: Callable[[], T | None] | None = None,
        backoff: Backoff | None = None,
    ) -> T:
        """The operation's result, retrying transient failures within the budget; else its last error.

        `before_retry` runs before each new attempt; a result from it ends the call (a submit that may
        have reached the server looks for what it created before posting again). `backoff` continues a
        budget already begun.
        """
        backoff = backoff or self.start()
        while True:
            try:
                return operation()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning(
                    "transient failure", extra={"reason": str(exc)[:300], "attempt": backoff.failures + 1}
                )
                if not backoff.wait(retry_after(exc)):
                    raise
            if before_retry is not None and (found := before_retry()) is not None:
                return found


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
