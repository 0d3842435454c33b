"""A faulty Notifications for the steps harness: per topic, a seeded share of messages lost, duplicated,
delivered out of order or late; and `drive`, which plays the chain (deliveries, time, the sweep schedule)
until a run ends.

An invocation that raises is what the function answers 502 for: Notifications gives up on it (the worst
case), so the sweep is what must bring the run back.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fusion_extract.chain.ledger.records import Run
from fusion_extract.chain.messages import parse_poll, parse_submit, parse_transfer
from fusion_extract.chain.steps.poll import poll
from fusion_extract.chain.steps.submit import submit
from fusion_extract.chain.steps.transfer import transfer
from fusion_extract.errors import MessageError
from tests.steps.conftest import Steps

SUBSCRIBED = ("poll", "transfer", "rerun")


@dataclass(frozen=True)
class Faults:
    """What happens to one topic's messages (shares between 0 and 1)."""

    lose: float = 0.0
    duplicate: float = 0.0
    reorder: bool = False  # deliver the pending messages in a random order
    delay: float = 0.0  # a message is held back this many seconds of the chain's clock


@dataclass
class Bus:
    steps: Steps
    faults: dict[str, Faults] = field(default_factory=dict)
    seed: int = 0
    runtimes: dict[str, Any] = field(default_factory=dict)  # topic -> the Runtime (container) serving it
    invocations: int = 0
    failed: list[str] = field(default_factory=list)  # invocations that raised (answered 502)
    # Called with each delivery's number before it is made: what happens meanwhile (a cancel, damage).
    meanwhile: Callable[[int], None] | None = None
    _seen: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUBSCRIBED, 0))
    _queue: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def forget(self, topic: str) -> None:
        """Lose every message published to the topic so far."""
        self._seen[topic] = len(self.steps.published(topic))

    def collect(self) -> None:
        """Take in what was published since, applying each topic's faults."""
        now = self.steps.clock.now().timestamp()
        for topic in SUBSCRIBED:
            published = self.steps.published(topic)
            fresh, self._seen[topic] = published[self._seen[topic] :], len(published)
            rules = self.faults.get(topic, Faults())
            for message in fresh:
                if self.rng.random() < rules.lose:
                    continue
                copies = 2 if self.rng.random() < rules.duplicate else 1
                for _ in range(copies):
                    self._queue.append((now + rules.delay, topic, message))

    def pump(self, limit: int = 2000) -> None:
        """Deliver everything due, and what that publishes, until nothing due is left."""
        for _ in range(limit):
            self.collect()
            now = self.steps.clock.now().timestamp()
            due = [i for i, (at, _, _) in enumerate(self._queue) if at <= now]
            if not due:
                return
            reorder = any(self.faults.get(topic, Faults()).reorder for _, topic, _ in self._queue)
            index = self.rng.choice(due) if reorder else due[0]
            _, topic, message = self._queue.pop(index)
            self.deliver(topic, message)
        raise AssertionError("the chain kept publishing: a loop that never settles")

    def deliver(self, topic: str, message: dict[str, Any]) -> dict[str, Any] | None:
        self.invocations += 1
        if self.meanwhile is not None:
            self.meanwhile(self.invocations)
        own = self.steps.deps
        self.steps.deps = self.runtimes.get(topic, own)
        try:
            return invoke(self.steps, topic, message)
        except MessageError:
            raise  # the chain never sends a message its own parsers refuse
        except Exception as exc:
            self.failed.append(f"{topic}: {type(exc).__name__}: {exc}")
            return None
        finally:
            self.steps.deps = own

    def next_due(self) -> float | None:
        return min((at for at, _, _ in self._queue), default=None)


def invoke(steps: Steps, topic: str, message: dict[str, Any]) -> dict[str, Any]:
    """The function subscribed to the topic, through its message parser."""
    body = json.dumps(message).encode()
    if topic == "poll":
        return poll(parse_poll(body), steps.deps).to_json()
    if topic == "transfer":
        return transfer(parse_transfer(body), steps.deps).to_json()
    return submit(parse_submit(body), steps.deps).to_json()


def drive(steps: Steps, run_id: str, bus: Bus | None = None, *, tick: float = 61, rounds: int = 400) -> Run:
    """Deliver, let time pass, fire the sweep, until the run is final (bounded); then let the last
    messages through. `tick`: seconds between sweeps (more than STEP_OVERDUE_SECONDS)."""
    bus = bus or Bus(steps)
    for _ in range(rounds):
        bus.pump()
        run = steps.run(run_id)
        if run.state.final:
            steps.clock.advance(tick)
            bus.pump()
            return steps.run(run_id)
        waits = [tick]
        due = bus.next_due()
        if due is not None:
            waits.append(max(due - steps.clock.now().timestamp(), 0.001))
        steps.clock.advance(min(waits))
        try:
            steps.sweep()
        except Exception as exc:  # the sweep's invocation failed: the schedule fires again
            bus.failed.append(f"sweep: {type(exc).__name__}: {exc}")
    raise AssertionError(f"{run_id} never ended: {steps.run(run_id)}")


def start(steps: Steps, extract: str = "Sales") -> str:
    """A schedule firing (submit invoked directly, not through a topic): the run id."""
    answer = invoke(steps, "submit", {"extract": extract, "mode": "full"})
    assert answer["outcome"] in ("submitted", "deferred"), answer
    return str(answer["run_id"])
