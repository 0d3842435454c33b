"""A job request and its progress, read off the emulator clock: no thread runs a job.

A job moves through fixed stages (ENQUEUED, RUNNING, any pass-through statuses, its outcome) whose
start times are set at submission, so a test advances a ManualClock instead of sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from fusion_extract.clock import Clock
from tests.emulators.fusion.scenario import STUCK_STATUSES, ExtractScenario

MESSAGES = {
    "ENQUEUED": "Job Request has been enqueued",
    "RUNNING": "Job Request is in progress",
}


@dataclass(frozen=True)
class Stage:
    status: str
    starts: float  # seconds after submission


@dataclass(frozen=True)
class Job:
    id: int
    extract: str
    request: dict[str, Any]  # the `jobRequest` echo, description and parameters as sent
    submitted_at: datetime
    scenario: ExtractScenario
    outcome: str
    failure: str | None  # why it fails, when it does for a reason of ours
    clock: Clock

    @property
    def ess_id(self) -> int:
        """The Data Export ESS request id that output file names carry."""
        return self.id + 9

    @cached_property
    def stages(self) -> list[Stage]:
        plan = self.scenario
        running = plan.seconds_enqueued
        passing = running + plan.seconds_running
        stages = [Stage("ENQUEUED", 0.0), Stage("RUNNING", running)]
        stages += [
            Stage(status, passing + index * plan.seconds_passing)
            for index, status in enumerate(plan.passes_through)
        ]
        ends = passing + len(plan.passes_through) * plan.seconds_passing
        return [*stages, Stage(self.outcome, ends)]

    @property
    def ended_at(self) -> datetime:
        return self.submitted_at + timedelta(seconds=self.stages[-1].starts)

    @property
    def status(self) -> str:
        return self._stage(self._elapsed()).status

    def document(self) -> dict[str, Any]:
        """GET jobRequests/{id}, in the documented shape or the scenario's variant of it."""
        elapsed = self._elapsed()
        status = self._stage(elapsed).status
        details: dict[str, Any] = {
            "jobRequestId": self.id,
            "jobRequest": self.request,
            "jobStatus": status,
            "jobProgress": self._progress(status, elapsed),
        }
        if not self.scenario.echo_job_request:
            del details["jobRequest"]
        if self.scenario.status_at_top_level:
            del details["jobStatus"], details["jobProgress"]["status"]
            return {"jobStatus": status, "jobDetails": details}
        if self.scenario.jobdetails_as_list:
            return {"jobDetails": [details]}
        return {"jobDetails": details}

    def summary(self) -> dict[str, Any]:
        """One item of the jobRequests collection."""
        return {"jobRequestId": self.id, "jobRequest": self.request, "jobStatus": self.status}

    def _progress(self, status: str, elapsed: float) -> dict[str, Any]:
        final = elapsed >= self.stages[-1].starts and not self._held()
        running_from = self.stages[1].starts
        message = MESSAGES.get(status, f"Job status is changed to {status}")
        if final and self.failure:
            message = f"{message}: {self.failure}"
        progress = {
            "jobRequestId": self.id,
            "status": status,
            "message": message,
            "startTime": _iso(self.submitted_at, running_from) if elapsed >= running_from else None,
            "endTime": _iso(self.submitted_at, self.stages[-1].starts) if final else None,
            "completedPercentage": str(self._percent(elapsed)),
            "completed": final and status not in STUCK_STATUSES,
        }
        if final and status == "COMPLETED":
            progress["completed"] = self.scenario.completed_flag
            if self.scenario.completed_flag is None:
                del progress["completed"]
        return progress

    def _percent(self, elapsed: float) -> int:
        running, passing = self.stages[1].starts, self.stages[2].starts  # RUNNING, and what follows it
        if elapsed < running:
            return 0
        if elapsed >= passing:
            return 100
        return min(99, int(100 * (elapsed - running) / (passing - running)))

    def _elapsed(self) -> float:
        return max(0.0, (self.clock.now() - self.submitted_at).total_seconds())

    def _held(self) -> bool:
        """Held by the test: RUNNING (once enqueued) until it sets the scenario's event."""
        hold = self.scenario.hold
        return hold is not None and not hold.is_set()

    def _stage(self, elapsed: float) -> Stage:
        reached = [stage for stage in self.stages if stage.starts <= elapsed]
        return reached[:2][-1] if self._held() else reached[-1]


def _iso(start: datetime, seconds: float) -> str:
    return (start + timedelta(seconds=seconds)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
