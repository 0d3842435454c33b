"""A run's deadline (RUN_DEADLINE_HOURS, Fusion's own job timeout; the transfer gets as long again once the
job succeeded), checked before any Fusion call by poll and by the sweep, so a run whose calls keep failing
still ends TIMED_OUT on time."""

from __future__ import annotations

from datetime import datetime

from fusion_extract.chain.deps import Deps
from fusion_extract.chain.ledger.machine import Event
from fusion_extract.chain.ledger.records import Run, RunState, Versioned
from fusion_extract.chain.outcomes import Outcome, Result, outcome


def past_deadline(run: Run, now: datetime) -> bool:
    return run.deadline is not None and now >= run.deadline


def time_out(deps: Deps, current: Versioned[Run]) -> Outcome:
    run = current.value
    if run.state is RunState.TRANSFERRING:
        landed = f"{deps.ledger.landed_count(run.run_id)} of {run.file_count} files"
        reason = f"the transfer of job {run.job_id} was not done at the deadline ({landed})"
    else:
        what = f"job {run.job_id}" if run.job_id else "the job's submission"
        reason = f"{what} still {run.status or 'not done'} at the deadline"
    deps.endings.end(current, Event.TIME_OUT, reason)
    return outcome(Result.TIMED_OUT, run.run_id)
