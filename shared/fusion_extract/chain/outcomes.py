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
    SUBMITTED = "submitted"
    RELANDING = "relanding"
    ALREADY_RUNNING = "already_running"
    NOT_DUE = "not_due"
    IN_PROGRESS = "in_progress"
    NOTHING_TO_DO = "nothing_to_do"
    UNKNOWN_RUN = "unknown_run"
    STALE = "stale"
    RUNNING = "running"
    TRANSFERRING = "transferring"
    RERUN_SCHEDULED = "rerun_scheduled"
    RETRY_SCHEDULED = "retry_scheduled"
    CONTINUED = "continued"
    UNPACKED = "unpacked"
    PROMOTED = "promoted"
    LANDED = "landed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    DEFERRED = "deferred"
    SWEPT = "swept"
    PREFLIGHT = "preflight"
    IGNORED = "ignored"

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


# What each result means, as docs/messages.md shows it (generated from this table).
MEANINGS = {
    Result.SUBMITTED: "a job was submitted for the run",
    Result.RELANDING: "a succeeded job is being landed again",
    Result.ALREADY_RUNNING: "the extract's lease is held by another run",
    Result.NOT_DUE: "a rerun asked for before its time",
    Result.IN_PROGRESS: "another invocation is doing this right now",
    Result.NOTHING_TO_DO: "the message asks for nothing the run needs",
    Result.UNKNOWN_RUN: "the message names a run the ledger does not have",
    Result.STALE: "a duplicate or late message; the run has moved on",
    Result.RUNNING: "the job still runs; the next poll is on its way",
    Result.TRANSFERRING: "the job succeeded; its files are handed to transfer",
    Result.RERUN_SCHEDULED: "the job failed; a new one comes after the backoff",
    Result.RETRY_SCHEDULED: "a file failed; it is tried again after the backoff",
    Result.CONTINUED: "the invocation's budget was spent; the work goes on in the next one",
    Result.UNPACKED: "a unit of an archive's members is staged; other units are still at work",
    Result.PROMOTED: "every unit staged and verified; some units' members made visible, others still to be",
    Result.LANDED: "a file landed, or (with totals) the whole run",
    Result.FAILED: "the run ended FAILED",
    Result.TIMED_OUT: "the run ended TIMED_OUT",
    Result.CANCELLED: "the run ended CANCELLED",
    Result.DEFERRED: "a transient failure: the run waits, and the sweep tries again",
    Result.SWEPT: "the sweep looked at every active run",
    Result.PREFLIGHT: "the function exercised its grants; `checks` says how each went",
    Result.IGNORED: "a preflight's probe message: nothing to do, by design",
}


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
