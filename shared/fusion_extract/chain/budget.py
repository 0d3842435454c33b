"""An invocation's time for its step's work (TRANSFER_BUDGET_SECONDS, POLL_BUDGET_SECONDS), counted from when
it began. Work looks at it between pieces and hands the rest on once it is spent, so an invocation ends well
within the function's timeout. The clock is injected, so tests decide when it is spent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fusion_extract.clock import Clock


@dataclass
class Budget:
    clock: Clock
    seconds: float
    started: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock.now()

    def used(self) -> float:
        return (self.clock.now() - self.started).total_seconds()

    def remaining(self) -> float:
        return self.seconds - self.used()

    def spent(self) -> bool:
        return self.remaining() <= 0

    def fits(self, seconds: float) -> bool:
        """Whether `seconds` more (a wait, a piece of work) still end within the budget."""
        return self.used() + seconds <= self.seconds
