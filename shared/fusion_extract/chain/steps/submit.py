"""submit: start a run (schedule, fn invoke), resubmit a failed one (rerun), or re-land a succeeded job.

Under the extract's lease, so a scheduled and a manual run of one extract never run at once. The job
is submitted once per attempt: the run token `<run_id>-a<attempt>` travels in the job description and,
when a submit may have reached Fusion without us learning the job id, the client finds the job by it.
Nothing is asked of Fusion by a container that could not land the result (chain/readiness.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from fusion_extract import logging as jsonlog
from fusion_extract.chain.deps import Deps
from fusion_extract.chain.ledger.machine import RUN, Event, due, overdue
from fusion_extract.chain.ledger.records import Run, RunState, Versioned, new_run_id
from fusion_extract.chain.messages import (
    CancelRequest,
    RelandRequest,
    RerunRequest,
    RunRequest,
    SubmitMessage,
)
from fusion_extract.chain.outcomes import Outcome, Result, outcome
from fusion_extract.chain.runs import concerning
from fusion_extract.errors import (
    ConfigError,
    ConflictError,
    FusionExtractError,
    LeaseHeldError,
    MessageError,
    NotFoundError,
)
from fusion_extract.models import ExtractRequest, JobStatus, Mode, Phase

log = logging.getLogger(__name__)
LINK_TRIES = 3  # compare-and-swap tries of a rerun's link on the run it reruns


def submit(message: SubmitMessage, deps: Deps) -> Outcome:
    if isinstance(message, CancelRequest):
        return _cancel(deps, message)
    _can_land(deps)
    if isinstance(message, RunRequest):
        return _start(deps, message.request, rerun_of=None, run_id=message.run_id)
    if isinstance(message, RerunRequest):
        return _rerun(deps, message)
    return _reland(deps, message)


def _can_land(deps: Deps) -> None:
    """Refuse, before any Fusion call, to start work this container's native libraries could not land."""
    problem = deps.readiness.problem()
    if problem is None:
        return
    if deps.readiness.to_tell():
        deps.alerter.notify("runtime_broken", reason=problem)
    raise ConfigError(f"this function image cannot land a run, so nothing was submitted: {problem}")


def _start(deps: Deps, request: ExtractRequest, rerun_of: str | None, run_id: str | None = None) -> Outcome:
    _in_catalog(deps, request.extract)
    if run_id is not None:
        _unused(deps, run_id)
    now = deps.clock.now()
    run = _new_run(deps, Event.START, request.extract, request.mode, now, rerun_of=rerun_of, run_id=run_id)
    deadline = now + timedelta(hours=deps.settings.run_deadline_hours)
    run = run.but(run_at_times=request.run_at_times, attempt=1, deadline=deadline)
    with concerning(run):
        held = _take_lease(deps, run, now)
        if held is not None:
            return held
        current = deps.ledger.create_run(run)
        deps.alerter.started(run)
        log.info("run started", extra={"mode": run.mode, "rerun_of": rerun_of})
        if rerun_of is not None:
            _link_rerun(deps, rerun_of, run.run_id)
        return _submit_job(deps, current, resume=False)


def _rerun(deps: Deps, message: RerunRequest) -> Outcome:
    """The chain's reruns name the attempt they ask for, so a late duplicate of one finds nothing to do;
    an operator's rerun (no attempt) of a run that failed for good starts a new run."""
    try:
        current = deps.ledger.load_run(message.run_id)
    except NotFoundError:
        raise MessageError(f"no run {message.run_id!r} to rerun") from None
    run, now, asked = current.value, deps.clock.now(), message.attempt
    with concerning(run):
        if run.state is RunState.RERUN_PENDING and asked in (None, run.attempt + 1):
            if not due(run.next_at, now):
                return _answer(Result.NOT_DUE, run, next_at=run.next_at.isoformat())
            rerun = run.but(state=RUN.after(run.state, Event.RERUN), attempt=run.attempt + 1)
            claimed = _claim(deps, current, rerun)
            return _submit_job(deps, claimed, resume=False) if claimed else _answer(Result.IN_PROGRESS, run)
        if run.state is RunState.SUBMITTING and asked in (None, run.attempt):
            if run.failures and not due(run.next_at, now):
                return _answer(Result.NOT_DUE, run, next_at=run.next_at.isoformat())
            limit = timedelta(seconds=deps.settings.step_overdue_seconds)
            if not run.failures and not overdue(run.updated_at, now, limit):
                return _answer(Result.IN_PROGRESS, run)
            # A submit died midway: resume it, finding its job first.
            claimed = _claim(deps, current, run.but(state=RUN.after(run.state, Event.RESUME)))
            return _submit_job(deps, claimed, resume=True) if claimed else _answer(Result.IN_PROGRESS, run)
        if asked is None and run.state in (RunState.FAILED, RunState.TIMED_OUT) and not run.reland:
            request = ExtractRequest(run.extract, Mode(run.mode), run.run_at_times)
            return _start(deps, request, rerun_of=run.run_id)
        return _answer(Result.NOTHING_TO_DO, run, state=run.state.value)


def _link_rerun(deps: Deps, rerun_of: str, run_id: str) -> None:
    """Note the rerun on the run it reruns, so that run's history says what came of it (a link only:
    the rerun goes on whether or not it is written)."""
    for _ in range(LINK_TRIES):
        try:
            current = deps.ledger.load_run(rerun_of)
            deps.ledger.save_run(current, current.value.but(reruns=(*current.value.reruns, run_id)))
            return
        except ConflictError:
            continue  # a person set it aside or another rerun linked meanwhile: read it again
        except FusionExtractError as exc:
            log.warning("rerun not linked to the run it reruns", extra={"problem": str(exc)[:500]})
            return
    log.warning("rerun not linked to the run it reruns", extra={"problem": f"{LINK_TRIES} conflicts"})


def _cancel(deps: Deps, message: CancelRequest) -> Outcome:
    """Cancel a run by its id, or the active run of an extract (the one holding its lease)."""
    run_id = message.run_id or deps.ledger.lease_holder(message.extract or "")
    if run_id is None:
        raise MessageError(f"extract {message.extract!r} has no active run to cancel")
    try:
        current = deps.ledger.load_run(run_id)
    except NotFoundError:
        raise MessageError(f"no run {run_id!r} to cancel") from None
    with concerning(current.value):
        return deps.endings.cancel(current, by="an operator")


def _unused(deps: Deps, run_id: str) -> None:
    """A run id the caller chose must name no run yet (a duplicate of the request is refused too)."""
    try:
        deps.ledger.load_run(run_id)
    except NotFoundError:
        return
    raise MessageError(f"run id {run_id!r} is taken: a run has it already")


def _in_catalog(deps: Deps, extract: str) -> None:
    """A name the catalog does not declare (a typo) costs no Fusion job: refused before anything."""
    refusal = deps.catalog.refusal(extract)
    if refusal is not None:
        raise MessageError(refusal)


def _reland(deps: Deps, message: RelandRequest) -> Outcome:
    _in_catalog(deps, message.extract)
    # The job must exist and have succeeded before anything is held or recorded for it.
    try:
        status = deps.fusion.job_status(message.job_id)
    except NotFoundError:
        raise MessageError(f"job {message.job_id} does not exist in Fusion: nothing to re-land") from None
    if status.phase is not Phase.SUCCEEDED:
        raise MessageError(f"job {message.job_id} is {status.status}, not succeeded: nothing to re-land")
    _same_job(message, status)
    now = deps.clock.now()
    run = _new_run(deps, Event.RELAND, message.extract, message.mode, now, rerun_of=None)
    run = run.but(
        reland=True,
        job_id=message.job_id,
        job_ids=(message.job_id,),
        deadline=now + timedelta(hours=deps.settings.run_deadline_hours),
        poll_seq=1,
    )
    with concerning(run):
        held = _take_lease(deps, run, now)
        if held is not None:
            return held
        deps.ledger.create_run(run)
        deps.handoff.publish_poll(run.run_id, run.poll_seq)
        log.info("re-land started")
        return _answer(Result.RELANDING, run)


def _same_job(message: RelandRequest, status: JobStatus) -> None:
    """A re-land lands the job's files under the extract and mode it names: they must be the ones the job ran,
    as Fusion reports them. What Fusion does not report cannot be compared; the re-land goes on
    (docs/landing.md)."""
    job = f"job {message.job_id}"
    if status.extract is not None and status.extract != message.extract:
        raise MessageError(
            f"{job} ran extract {status.extract!r}, not {message.extract!r}: nothing re-landed"
        )
    if status.mode is not None and status.mode is not message.mode:
        ran, asked = _article(status.mode), _article(message.mode)
        raise MessageError(f"{job} ran {ran} extract, not {asked} one: nothing re-landed")
    if status.extract is None or status.mode is None:
        log.warning("re-land: Fusion does not say which extract or mode the job ran; not compared")


def _article(mode: Mode) -> str:
    return f"an {mode.value}" if mode is Mode.INCREMENTAL else f"a {mode.value}"


def _submit_job(deps: Deps, current: Versioned[Run], resume: bool) -> Outcome:
    run = current.value
    request = ExtractRequest(run.extract, Mode(run.mode), run.run_at_times)
    token = f"{run.run_id}-a{run.attempt}"
    try:
        job_id = deps.fusion.submit(request, token, resume=resume)
    except Exception as exc:  # permanent: FAILED and alerted; transient: SUBMITTING, resumed by the sweep
        return deps.endings.setback(run.run_id, exc, "submit")
    now = deps.clock.now()
    running = run.but(
        state=RUN.after(run.state, Event.SUBMITTED),
        job_id=job_id,
        job_ids=(*run.job_ids, job_id),
        deadline=now + timedelta(hours=deps.settings.run_deadline_hours),
        poll_seq=run.poll_seq + 1,
        polls=0,
        status=None,
        status_since=None,
        submitted_at=now,
        job_started_at=None,
        updated_at=now,
        next_at=now,
        failures=0,
        problem=None,
        redrives=0,
    )
    jsonlog.about(job_id=job_id)
    with jsonlog.bind(job_id=job_id):
        deps.ledger.save_run(current, running)
        deps.handoff.publish_poll(run.run_id, running.poll_seq)
        log.info("job submitted", extra={"attempt": run.attempt})
    return _answer(Result.SUBMITTED, running)


def _claim(deps: Deps, current: Versioned[Run], run: Run) -> Versioned[Run] | None:
    """Compare-and-swap the run into our hands; None when a duplicate invocation won."""
    now = deps.clock.now()
    try:
        return deps.ledger.save_run(current, run.but(updated_at=now, next_at=now))
    except ConflictError:
        return None


def _take_lease(deps: Deps, run: Run, now: datetime) -> Outcome | None:
    try:
        settings = deps.settings
        deps.ledger.take_lease(
            run.extract,
            run.run_id,
            now,
            stale_after=timedelta(seconds=settings.lease_seconds),
            missing_grace=timedelta(seconds=settings.step_overdue_seconds),
        )
    except (LeaseHeldError, ConflictError) as exc:
        log.warning("extract already running", extra={"detail": str(exc)})
        holder = deps.ledger.lease_holder(run.extract)
        return outcome(Result.ALREADY_RUNNING, holder, extract=run.extract, detail=str(exc))
    return None


def _new_run(
    deps: Deps,
    created_by: Event,
    extract: str,
    mode: Mode,
    now: datetime,
    rerun_of: str | None,
    run_id: str | None = None,
) -> Run:
    return Run(
        run_id=run_id or new_run_id(now, deps.new_id),
        extract=extract,
        mode=mode.value,
        state=RUN.after(None, created_by),
        created_at=now,
        updated_at=now,
        next_at=now,
        rerun_of=rerun_of,
    )


def _answer(result: Result, run: Run, **extra: Any) -> Outcome:
    return outcome(result, run.run_id, extract=run.extract, job_id=run.job_id, **extra)
