"""A clock for tests: time moves only when a test advances it or code sleeps, and every sleep is recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class ManualClock:
    def __init__(self, start: datetime = EPOCH) -> None:
        self._now = start
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Let time pass without a sleep (work that takes time)."""
        self._now += timedelta(seconds=seconds)
