"""Clocks for tests. ManualClock: time moves only when a test advances it or code sleeps, and every sleep is
recorded. ShiftedClock: the wall clock, plus whatever a test advanced it by, for an emulator whose
clients live on real time (other processes) while a test still decides when something is over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fusion_extract.clock import SystemClock

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


class ShiftedClock(SystemClock):
    """Real time, shifted forward by `advance`: a Fusion job of an hour ends the moment a test says so."""

    def __init__(self) -> None:
        self._shift = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self._shift

    def advance(self, seconds: float) -> None:
        self._shift += timedelta(seconds=seconds)
