"""What a step answers: one of a closed set of results, with the run it concerns and a few details.

The answer is the function's response body (`fn invoke` prints it) and the `outcome` field of the step's
last log line, so its JSON form is part of the contract: `{"outcome": "<result>", "run_id": ..., ...}`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Result(enum.StrEnum):
    SUBMITTED = "submitted"  # a job was submitted for the run
    RELANDING = "relanding"  # a succeeded job is being landed again
    ALREADY_RUNNING = "already_running"  # the extract's lease is held by another run
    NOT_DUE = "not_due"  # a rerun asked for before its time
    IN_PROGRESS = "in_progress"  # another invocation is doing this right now
    NOTHING_TO_DO = "nothing_to_do"  # the message asks for nothing the run needs
    UNKNOWN_RUN = "unknown_run"  # the message names a run the ledger does not have
    STALE = "stale"  # a duplicate or late message; the run has moved on
    RUNNING = "running"  # the job still runs; the next poll is on its way
    TRANSFERRING = "transferring"  # the job succeeded; its files are handed to transfer
    RERUN_SCHEDULED = "rerun_scheduled"  # the job failed; a new one comes after the backoff
    RETRY_SCHEDULED = "retry_scheduled"  # a file failed; it is tried again after the backoff
    CONTINUED = "continued"  # the invocation's budget was spent; the work goes on in the next one
    UNPACKED = "unpacked"  # a unit of an archive's members is staged; other units are still at work
    PROMOTED = "promoted"  # every unit staged and verified; units' members made visible, others still to be
    LANDED = "landed"  # a file landed, or (with totals) the whole run
    FAILED = "failed"  # the run ended FAILED
    TIMED_OUT = "timed_out"  # the run ended TIMED_OUT
    CANCELLED = "cancelled"  # the run ended CANCELLED
    DEFERRED = "deferred"  # a transient failure: the run waits, and the sweep tries again
    SWEPT = "swept"  # the sweep looked at every active run
    PREFLIGHT = "preflight"  # the function exercised its grants; `checks` says how each went
    IGNORED = "ignored"  # a preflight's probe message: nothing to do, by design


@dataclass(frozen=True)
class Outcome:
    result: Result
    run_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        head: dict[str, Any] = {"outcome": self.result.value}
        if self.run_id is not None:
            head["run_id"] = self.run_id
        return {**head, **self.details}


def outcome(result: Result, run_id: str | None = None, **details: Any) -> Outcome:
    return Outcome(result, run_id, details)
