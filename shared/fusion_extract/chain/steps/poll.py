"""poll: follow a job, one bounded step per invocation (the sweep, in sweep.py, shares the function).

A poll step checks the job, waits an adaptive, jittered interval while its budget lasts, and if the job
is still running hands on to the next step through the poll topic. Poll messages carry the run's
`poll_seq`: a duplicate or late message whose seq is not the run's current one does nothing, so
at-least-once delivery never starts a second polling loop.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from fusion_extract.chain.budget import Budget
from fusion_extract.chain.deps import Deps
from fusion_extract.chain.ledger.machine import FILE, RUN, Event
from fusion_extract.chain.ledger.records import FileRecord, Run, RunState, Versioned
from fusion_extract.chain.messages import PollMessage, PollRequest
from fusion_extract.chain.outcomes import Outcome, Result, outcome
from fusion_extract.chain.policy import backoff
from fusion_extract.chain.runs import concerning, find
from fusion_extract.chain.steps.deadline import past_deadline, time_out
from fusion_extract.chain.steps.sweep import sweep
from fusion_extract.chain.transfer.kinds import is_archive
from fusion_extract.chain.transfer.layout import reserved_name
from fusion_extract.errors import ConflictError, FusionExtractError, UnsafeInputError
from fusion_extract.models import JobStatus, OutputFile, Phase

log = logging.getLogger(__name__)

HOLD_ALERT_AFTER = timedelta(hours=1)
# Statuses of a job still waiting for Fusion's scheduler to run it: `history` counts them as its queue time.
QUEUED = frozenset({"WAIT", "READY", "PENDING_VALIDATION", "ENQUEUED", "BLOCKED", "HOLD"})


def poll(message: PollMessage, deps: Deps) -> Outcome:
    if isinstance(message, PollRequest):
        return _poll_run(deps, message)
    return sweep(deps)


def _poll_run(deps: Deps, message: PollRequest) -> Outcome:
    current = find(deps.ledger, message.run_id, "poll")
    if current is None:
        return outcome(Result.UNKNOWN_RUN, message.run_id)
    run = current.value
    with concerning(run):
        if run.state is not RunState.RUNNING or message.seq != run.poll_seq or run.job_id is None:
            log.info("stale poll message ignored", extra={"seq": message.seq, "state": run.state.value})
            return outcome(Result.STALE, run.run_id, state=run.state.value)
        try:
            return _follow(deps, current)
        except Exception as exc:  # every error has a meaning for the run: the failure policy decides it
            return deps.endings.setback(run.run_id, exc, "poll")


def _follow(deps: Deps, current: Versioned[Run]) -> Outcome:
    settings, clock = deps.settings, deps.clock
    budget = Budget(clock, settings.poll_budget_seconds)
    run = current.value
    job_id = run.job_id
    assert job_id is not None
    early = (run.next_at - budget.started).total_seconds()
    if 0 < early <= budget.seconds:  # a continuation keeps the interval it was given
        clock.sleep(early)
    while True:
        if past_deadline(run, clock.now()):  # before any call: a Fusion that keeps failing cannot delay it
            return time_out(deps, current)
        status = deps.fusion.job_status(job_id)
        now = clock.now()
        since = run.status_since if status.status == run.status else now
        job_started = run.job_started_at or (None if status.status in QUEUED else now)  # history: queue time
        run = run.but(
            polls=run.polls + 1,
            status=status.status,
            status_since=since,
            job_started_at=job_started,
            failures=0,
            problem=None,
        )
        if status.phase is Phase.SUCCEEDED:
            return _succeeded(deps, current, run, status, deps.fusion.output_files(job_id))
        if status.phase is Phase.FAILED:
            return _failed(deps, current, run, status)
        if status.unconfirmed and since is not None and now - since >= _grace(deps):
            files = _listed_yet(deps, job_id)
            if files:  # done by every sign but the flag: say so, and land it
                reason = (
                    f"job {run.job_id} is {status.status} without jobProgress.completed; its files are listed"
                )
                deps.alerter.alert("assumed_complete", run, reason)
                run = run.but(assumed_complete=True, alerts=(*run.alerts, "assumed_complete"))
                return _succeeded(deps, current, run, status, files)
        run = _watch_for_humans(deps, run, status, now)
        interval = _interval(deps, run.polls)
        if not budget.fits(interval):
            return _continue(deps, current, run, now, interval)
        clock.sleep(interval)


def _continue(deps: Deps, current: Versioned[Run], run: Run, now: datetime, interval: float) -> Outcome:
    """Hand on: a wait that fits in one step goes to a continuation (which waits it out, then checks);
    a longer one is parked, and the sweep brings the run back when it is due, so a long job costs no
    invocation while it waits."""
    parked = interval > deps.settings.poll_budget_seconds
    due = now + timedelta(seconds=interval)
    following = run.but(poll_seq=run.poll_seq + 1, updated_at=now, next_at=due, redrives=0, parked=parked)
    try:
        deps.ledger.save_run(current, following)
    except ConflictError:
        return outcome(Result.STALE, run.run_id)
    if not parked:
        deps.handoff.publish_poll(run.run_id, following.poll_seq)
    log.info(
        "job still running", extra={"status": run.status, "polls": run.polls, "next_at": due.isoformat()}
    )
    return outcome(Result.RUNNING, run.run_id, status=run.status, next_at=due.isoformat())


def _interval(deps: Deps, polls: int) -> float:
    """Grows 1.5x per check from POLL_MIN_INTERVAL to POLL_MAX_INTERVAL, with +-20 % jitter."""
    settings = deps.settings
    base = min(settings.poll_max_interval, settings.poll_min_interval * 1.5 ** max(polls - 1, 0))
    return base * deps.random.uniform(0.8, 1.2)


def _watch_for_humans(deps: Deps, run: Run, status: JobStatus, now: datetime) -> Run:
    """ERROR_MANUAL_RECOVERY, a long HOLD and never-seen statuses are reported once; polling goes on."""
    if not status.known and "unknown_status" not in run.alerts:
        log.warning("unknown job status, treated as running", extra={"status": status.status})
        deps.alerter.alert("unknown_status", run, f"Fusion reported an unknown status {status.status!r}")
        return run.but(alerts=(*run.alerts, "unknown_status"))
    held_long = (
        status.status == "HOLD"
        and run.status_since is not None
        and now - run.status_since >= HOLD_ALERT_AFTER
    )
    needs_human = status.phase is Phase.NEEDS_HUMAN or held_long
    if needs_human and "needs_human" not in run.alerts:
        deps.alerter.alert("needs_human", run, f"job {run.job_id} is {status.status}: it needs a person")
        return run.but(alerts=(*run.alerts, "needs_human"))
    return run


def _grace(deps: Deps) -> timedelta:
    return timedelta(seconds=deps.settings.completed_grace_seconds)


def _listed_yet(deps: Deps, job_id: str) -> list[OutputFile]:
    """The job's output files if Fusion lists them already; none while it refuses (not finished)."""
    try:
        return deps.fusion.output_files(job_id)
    except FusionExtractError as exc:
        if exc.retryable:
            raise
        return []


def _succeeded(
    deps: Deps, current: Versioned[Run], run: Run, status: JobStatus, listed: list[OutputFile]
) -> Outcome:
    now = deps.clock.now()
    plain = [planned for planned in listed if not is_archive(planned.name)]
    for planned in plain:
        if (reserved := reserved_name(planned.name)) is not None:
            raise UnsafeInputError(
                f"output file {planned.name!r} would take {reserved!r}, a name the run reserves"
            )
    archives = [planned for planned in listed if is_archive(planned.name)]
    # The plan in pages of its own, written before the run names them: the run document stays small.
    pages = deps.ledger.save_plan(run.run_id, plain, archives)
    # The transfer has a deadline of its own, as long as a job's: the sweep ends it TIMED_OUT past it.
    deadline = now + timedelta(hours=deps.settings.run_deadline_hours)
    transferring = run.but(
        state=RUN.after(run.state, Event.SUCCEEDED),
        plan=pages,
        updated_at=now,
        next_at=now,
        deadline=deadline,
    )
    try:
        saved = deps.ledger.save_run(current, transferring)
    except ConflictError:
        return outcome(Result.STALE, run.run_id)  # cancelled or moved on meanwhile: nothing is planned
    # The files' records follow the run's plan (the sweep makes any a crash left out: sweep.py).
    for planned in listed:
        with contextlib.suppress(ConflictError):  # planned by a duplicate of this step already
            pending = FILE.after(None, Event.PLANNED)
            deps.ledger.create_file(
                FileRecord(run.run_id, planned.name, pending, next_at=now, planned=planned)
            )
    log.info(
        "job succeeded", extra={"status": status.status, "warning": status.warning, "files": len(listed)}
    )
    if not listed:
        deps.finisher.finish_if_complete(saved)
    deps.handoff.publish_transfers(run.run_id, [f.name for f in listed])
    return outcome(Result.TRANSFERRING, run.run_id, files=len(listed), warning=status.warning)


def _failed(deps: Deps, current: Versioned[Run], run: Run, status: JobStatus) -> Outcome:
    """The job failed: rerun it while attempts remain, unless another job cannot fare better (cancelled in
    Fusion, refused by validation such as a definition that does not exist, or a re-land)."""
    settings = deps.settings
    reason = f"job {run.job_id} ended {status.status}: {status.message or ''}"
    if status.validation_failed:
        reason += " (a validation failure: a new job would fail the same way)"
    retryable = (
        status.status not in ("CANCELLED", "CANCELED") and not status.validation_failed and not run.reland
    )
    if not retryable or run.attempt >= settings.run_max_attempts:
        deps.endings.end(current, Event.FAIL, reason)
        return outcome(Result.FAILED, run.run_id, reason=reason)
    now = deps.clock.now()
    due = now + backoff(settings.rerun_backoff_seconds, run.attempt)
    pending = run.but(
        state=RUN.after(run.state, Event.JOB_FAILED), reason=reason, updated_at=now, next_at=due
    )
    try:
        deps.ledger.save_run(current, pending)
    except ConflictError:
        return outcome(Result.STALE, run.run_id)
    log.warning("job failed; rerun scheduled", extra={"reason": reason, "rerun_at": due.isoformat()})
    if due <= now:
        deps.handoff.publish_rerun(run.run_id, run.attempt + 1)
    return outcome(Result.RERUN_SCHEDULED, run.run_id, reason=reason)
