"""transfer: land one output file per invocation (landing.py), and finish the run when its last file landed.

A file is claimed in the ledger first, so a duplicate delivery skips it; a claim left by a crashed
invocation goes stale and the sweep hands the file out again. A batch message (more files than
Notifications can carry one by one) lands its first file that needs it and hands the rest on.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from fusion_extract import logging as jsonlog
from fusion_extract.chain.deps import Deps
from fusion_extract.chain.landing import Lander
from fusion_extract.chain.messages import TransferRequest
from fusion_extract.chain.outcomes import Outcome, Result, outcome
from fusion_extract.chain.policy import Kind, classify, describe
from fusion_extract.chain.records import FileRecord, FileState, PlannedFile, Run, RunState, Versioned
from fusion_extract.chain.runs import backoff, logged
from fusion_extract.errors import ConflictError, SupersededError, UnsafeInputError

log = logging.getLogger(__name__)


def transfer(message: TransferRequest, deps: Deps) -> Outcome:
    current = deps.runs.find(message.run_id, "transfer")
    if current is None:
        return outcome(Result.UNKNOWN_RUN, message.run_id)
    run = current.value
    with logged(run):
        if run.state is not RunState.TRANSFERRING:
            return outcome(Result.STALE, run.run_id, state=run.state.value)
        planned = {f.name: f for f in run.files}
        unknown = [name for name in message.files if name not in planned]
        if unknown:
            log.warning("files not in the run's plan ignored", extra={"files": unknown})
        names = [name for name in message.files if name in planned]
        answer = _land_next(deps, run, planned, names)
        try:
            deps.runs.finish_if_complete(deps.ledger.load_run(run.run_id))
        except Exception as exc:  # the files landed; finishing failed: the policy decides when it resumes
            return deps.runs.setback(run.run_id, exc, "finish")
        return answer


def _land_next(deps: Deps, run: Run, planned: dict[str, PlannedFile], names: list[str]) -> Outcome:
    """Land the first file of the batch that needs it; hand the rest of the batch on."""
    now = deps.clock.now()
    stale_after = deps.settings.step_overdue_seconds
    for index, name in enumerate(names):
        current = deps.ledger.load_file(run.run_id, name)
        record = current.value
        claimable = (record.state is FileState.PENDING and now >= record.next_at) or (
            record.state is FileState.TRANSFERRING
            and record.claimed_at is not None
            and (now - record.claimed_at).total_seconds() > stale_after
        )
        if not claimable:
            continue
        with jsonlog.bind(file=name):
            answer = _land_file(deps, run, planned[name], current)
        rest = names[index + 1 :]
        if rest and answer.result is not Result.FAILED:
            deps.runs.hand_on(run.run_id, rest)
        return answer
    return outcome(Result.NOTHING_TO_DO, run.run_id)


def _land_file(deps: Deps, run: Run, planned: PlannedFile, current: Versioned[FileRecord]) -> Outcome:
    now = deps.clock.now()
    attempt = current.value.attempts + 1
    try:
        current = deps.ledger.save_file(
            current, current.value.but(state=FileState.TRANSFERRING, attempts=attempt, claimed_at=now)
        )
    except ConflictError:
        return outcome(Result.IN_PROGRESS, run.run_id, file=planned.name)
    log.info("transfer started", extra={"attempt": attempt, "size": planned.size})
    if attempt + current.value.retries > 1:  # an earlier attempt may have died mid-upload
        deps.store.abort_uploads(deps.layout.file_staging(run, planned.name))

    def still_wanted() -> bool:
        return deps.ledger.load_run(run.run_id).value.state is RunState.TRANSFERRING

    lander = Lander(
        deps.settings, deps.layout, deps.store, deps.archives, run, planned, attempt, still_wanted
    )
    try:
        landed = lander.land()
    except SupersededError as exc:  # cancelled or failed meanwhile: leave nothing of this attempt behind
        deps.runs.discard_staging(run)
        log.info("transfer abandoned", extra={"reason": str(exc)})
        return outcome(Result.STALE, run.run_id, file=planned.name)
    except Exception as exc:
        return _failed(deps, run, current, exc)
    elapsed = max((deps.clock.now() - now).total_seconds(), 1e-6)
    deps.ledger.save_file(current, landed.record(current.value))
    deps.ledger.mark_landed(run.run_id, planned.name)
    rate = round(landed.size / elapsed / 1e6, 1)
    log.info("file landed", extra={"members": len(landed.members), "bytes": landed.size, "mb_per_s": rate})
    return outcome(
        Result.LANDED, run.run_id, file=planned.name, members=len(landed.members), bytes=landed.size
    )


def _failed(deps: Deps, run: Run, current: Versioned[FileRecord], exc: Exception) -> Outcome:
    """The failure policy for one file: a security rule fails the run at once; a transient failure waits
    (an outage is not the file's fault: it does not count against its attempts); anything else is tried
    FILE_MAX_ATTEMPTS times."""
    name, attempt = current.value.name, current.value.attempts
    kind = classify(exc)
    if isinstance(exc, UnsafeInputError) or (
        kind is Kind.PERMANENT and attempt >= deps.settings.file_max_attempts
    ):
        suffix = "" if isinstance(exc, UnsafeInputError) else f" (after {attempt} attempts)"
        return _give_up(deps, run, current, f"{name}: {describe(exc)}{suffix}")
    record = current.value
    if kind is Kind.PERMANENT:
        delay = backoff(deps.settings.file_retry_seconds, record.attempts)
    else:
        record = record.but(attempts=record.attempts - 1, retries=record.retries + 1)
        delay = deps.runs.patience.delay(record.retries)
    return _retry_later(deps, run, current, record, delay, describe(exc))


def _retry_later(
    deps: Deps, run: Run, current: Versioned[FileRecord], record: FileRecord, delay: timedelta, reason: str
) -> Outcome:
    now = deps.clock.now()
    due = now + delay
    deps.ledger.save_file(current, record.but(state=FileState.PENDING, next_at=due, reason=reason))
    log.warning("transfer failed; retry scheduled", extra={"reason": reason, "retry_at": due.isoformat()})
    if record.retries >= deps.runs.patience.stall_alert_after:
        stuck = f"{record.name}: {record.retries} transient failures in a row; the latest: {reason}"
        deps.runs.alert_once(deps.ledger.load_run(run.run_id), "stuck", stuck)
    if due <= now:
        deps.runs.publish_transfers(run.run_id, [record.name])
    return outcome(Result.RETRY_SCHEDULED, run.run_id, file=record.name, reason=reason)


def _give_up(deps: Deps, run: Run, current: Versioned[FileRecord], reason: str) -> Outcome:
    deps.ledger.save_file(current, current.value.but(state=FileState.FAILED, reason=reason))
    deps.runs.end(deps.ledger.load_run(run.run_id), RunState.FAILED, reason)
    return outcome(Result.FAILED, run.run_id, file=current.value.name, reason=reason)
