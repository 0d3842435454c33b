"""transfer: land output files, each in pieces of work that fit an invocation (landing.py), and finish the
run when its last file landed.

A file message claims a file in the ledger (a duplicate delivery skips it; a claim left by a crashed
invocation goes stale and the sweep hands the file out again) and fetches it; when the invocation's budget
is spent, the fetch goes on in the next message. An archive, once fetched, is split into units of members,
each with a message of its own (parallel invocations); the unit that completes the set promotes every
member and lands the file. A batch message lands its first file that needs it and hands the rest on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from fusion_extract import logging as jsonlog
from fusion_extract.chain.budget import Budget
from fusion_extract.chain.deps import Deps
from fusion_extract.chain.ledger.machine import FILE, UNIT, Event, claimable, overdue
from fusion_extract.chain.ledger.records import (
    Fetch,
    FileRecord,
    FileState,
    Run,
    RunState,
    Unit,
    UnitState,
    Versioned,
    as_planned,
)
from fusion_extract.chain.ledger.store import Ledger
from fusion_extract.chain.messages import TransferRequest
from fusion_extract.chain.outcomes import Outcome, Result, outcome
from fusion_extract.chain.policy import Kind, backoff, classify, describe
from fusion_extract.chain.runs import concerning, find
from fusion_extract.chain.transfer.landing import Landing
from fusion_extract.errors import (
    ConflictError,
    NotFoundError,
    SupersededError,
    TransientError,
    UnsafeInputError,
)
from fusion_extract.models import OutputFile

log = logging.getLogger(__name__)
UPDATE_TRIES = 20  # units of one file saving at once: each retries its compare-and-swap this often
# A unit at work renews its claim once this share of STEP_OVERDUE_SECONDS has passed since it was taken or
# renewed: a unit that makes progress at least that often is never taken over while it lives.
RENEW_AFTER = 0.25


def transfer(message: TransferRequest, deps: Deps) -> Outcome:
    budget = Budget(deps.clock, deps.settings.transfer_budget_seconds)
    current = find(deps.ledger, message.run_id, "transfer")
    if current is None:
        return outcome(Result.UNKNOWN_RUN, message.run_id)
    run = current.value
    with concerning(run):
        if run.state is not RunState.TRANSFERRING:
            return outcome(Result.STALE, run.run_id, state=run.state.value)
        if message.unit is not None and message.files:
            found = _planned(deps, run, message.files[0])
            if found is None:
                answer = outcome(Result.NOTHING_TO_DO, run.run_id)
            else:
                planned, record = found
                with jsonlog.bind(file=planned.name, unit=message.unit):
                    landing = _landing(deps, run, planned, budget)
                    answer = _unit_step(deps, landing, _Latest(deps.ledger, record), message.unit)
        else:
            answer = _land_next(deps, run, message.files, budget)
        try:
            # Every file's landing marks it before it looks: the last file's invocation sees them all. Only
            # then is the run read again, for the version its finish claims.
            if deps.ledger.landed_count(run.run_id) >= run.file_count:
                deps.finisher.finish_if_complete(deps.ledger.load_run(run.run_id))
        except Exception as exc:  # the files landed; finishing failed: the policy decides when it resumes
            return deps.endings.setback(run.run_id, exc, "finish")
        return answer


def _landing(deps: Deps, run: Run, planned: OutputFile, budget: Budget) -> Landing:
    def still_wanted() -> bool:
        # Read afresh, before and after members are made visible: a run cancelled or failed since this
        # invocation read it gets nothing visible, and what arrived as it ended is taken back.
        return deps.ledger.load_run(run.run_id).value.state is RunState.TRANSFERRING

    def plain() -> list[OutputFile]:
        return deps.ledger.plain_files(run)

    s = deps.settings
    return Landing(s, deps.layout, deps.store, deps.archives, run, planned, plain, budget, still_wanted)


def _planned(deps: Deps, run: Run, name: str) -> tuple[OutputFile, Versioned[FileRecord]] | None:
    """The file as the run planned it, and its record; None (logged) for a name the plan does not have."""
    try:
        current = deps.ledger.load_file(run.run_id, name)
    except NotFoundError:
        current = None  # not planned (or its record not made yet: the sweep makes it, then hands it out)
    planned = None if current is None else as_planned(run, current.value)
    if current is None or planned is None:
        log.warning("file not in the run's plan ignored", extra={"file": name})
        return None
    return planned, current


def _land_next(deps: Deps, run: Run, names: Sequence[str], budget: Budget) -> Outcome:
    """Land the first file of the batch that needs it; hand the rest of the batch on."""
    now = deps.clock.now()
    stale_after = timedelta(seconds=deps.settings.step_overdue_seconds)
    for index, name in enumerate(names):
        found = _planned(deps, run, name)
        if found is None:
            continue
        planned, current = found
        if not claimable(FILE, current.value, FileState.PENDING, now, stale_after):
            continue
        with jsonlog.bind(file=name):
            answer = _land_file(deps, _landing(deps, run, planned, budget), current)
        rest = names[index + 1 :]
        if rest and answer.result is not Result.FAILED:
            deps.handoff.hand_on(run.run_id, rest)
        return answer
    return outcome(Result.NOTHING_TO_DO, run.run_id)


def _land_file(deps: Deps, landing: Landing, current: Versioned[FileRecord]) -> Outcome:
    """Fetch the file (as far as the budget goes); then land it, or plan its units and take the first."""
    run, name = landing.run, landing.planned.name
    now = deps.clock.now()
    attempt = current.value.attempts + 1
    try:
        current = deps.ledger.save_file(
            current,
            current.value.but(
                state=FILE.after(current.value.state, Event.CLAIM), attempts=attempt, claimed_at=now
            ),
        )
    except ConflictError:
        return outcome(Result.IN_PROGRESS, run.run_id, file=name)
    fetch = current.value.fetch
    if fetch is None:
        if attempt + current.value.retries > 1:  # an earlier attempt may have died mid-upload
            deps.store.abort_uploads(deps.layout.file_staging(run, name))
        fetch = Fetch(attempt, "")
    log.info(
        "transfer started", extra={"attempt": attempt, "size": landing.planned.size, "from": fetch.offset}
    )

    def save(progress: Fetch) -> None:
        nonlocal current
        current = deps.ledger.save_file(
            current, current.value.but(fetch=progress, claimed_at=deps.clock.now())
        )

    try:
        fetch = landing.fetch(fetch, save)
        if not fetch.done:  # the budget is spent: the next invocation goes on (not another attempt)
            paused = FILE.after(current.value.state, Event.PAUSE)
            record = current.value.but(state=paused, attempts=attempt - 1, next_at=now, fetch=fetch)
            deps.ledger.save_file(current, record)
            deps.handoff.publish_transfers(run.run_id, [name])
            log.info("transfer continues", extra={"bytes": fetch.offset, "size": landing.planned.size})
            return outcome(Result.CONTINUED, run.run_id, file=name, bytes=fetch.offset)
        fetched = current.value.but(fetch=fetch, sha256=fetch.sha256, size=fetch.offset)
        if landing.is_archive:
            units = tuple(unit.but(next_at=now) for unit in landing.units(landing.entries(fetch)))
            unpacking = FILE.after(fetched.state, Event.FETCHED)
            current = deps.ledger.save_file(current, fetched.but(state=unpacking, units=units))
        else:
            members, manifest = landing.promote_plain(fetch)
    except SupersededError as exc:  # cancelled or failed meanwhile: leave nothing of this attempt behind
        return _abandoned(deps, landing, exc)
    except Exception as exc:
        return _failed(deps, run, current, exc)
    if not landing.is_archive:
        return _landed(deps, landing, current, fetched.but(members=members, manifest=manifest))
    log.info("file fetched", extra={"bytes": fetch.offset, "units": len(units)})
    deps.handoff.publish_units(run.run_id, name, range(1, len(units)))
    return _unit_step(deps, landing, _Latest(deps.ledger, current), 0)


def _unit_step(deps: Deps, landing: Landing, latest: _Latest, index: int) -> Outcome:
    """Claim unit `index` of a fetched archive, unpack what remains of it, and land the file if it was
    the last unit to be done. `latest`: the file's record as this invocation read or saved it a moment ago."""
    run, name = landing.run, landing.planned.name
    current = latest.get()
    record, now = current.value, deps.clock.now()
    fetch = record.fetch
    if record.state is not FileState.UNPACKING or fetch is None or index >= len(record.units):
        return outcome(Result.NOTHING_TO_DO, run.run_id, file=name, unit=index)
    if _all_in(record, UnitState.PROMOTED):
        return _land_archive(deps, landing, current)
    if _all_in(record, *STAGED):
        return _promote(deps, landing, latest, fetch, index, len(record.units), hand_out=False)
    claim = _claim(now, deps.settings.step_overdue_seconds, UnitState.PENDING)
    try:
        # Other units save the same record meanwhile: the claim is tried again on their changes.
        unit = _update_unit(latest, fetch, index, claim).value.units[index]
        unit, done = landing.unpack(fetch, index, unit, _Renewal(deps, latest, fetch, index, unit))
    except _NotClaimable as taken:
        return outcome(Result.NOTHING_TO_DO, run.run_id, file=name, unit=index, state=str(taken))
    except ConflictError:
        return outcome(Result.STALE, run.run_id, file=name, unit=index)
    except SupersededError as exc:
        return _abandoned(deps, landing, exc)
    except Exception as exc:
        return _unit_failed(deps, landing, latest, fetch, index, exc)
    try:
        if not done:
            paused = unit.but(state=UNIT.after(unit.state, Event.PAUSE), next_at=now)
            _update_unit(latest, fetch, index, _becomes(paused))
            deps.handoff.publish_units(run.run_id, name, [index])
            return outcome(Result.CONTINUED, run.run_id, file=name, unit=index, members=unit.staged_count)
        staged = unit.but(state=UNIT.after(unit.state, Event.STAGED))
        current = _update_unit(latest, fetch, index, _becomes(staged))
    except ConflictError:  # the file was started over meanwhile: this attempt's work is moot
        return outcome(Result.STALE, run.run_id, file=name, unit=index)
    log.info("unit unpacked", extra={"members": unit.staged_count})
    if _all_in(current.value, *STAGED):
        return _promote(deps, landing, latest, fetch, index, len(current.value.units), hand_out=True)
    return outcome(Result.UNPACKED, run.run_id, file=name, unit=index, members=unit.staged_count)


def _promote(
    deps: Deps, landing: Landing, latest: _Latest, fetch: Fetch, first: int, count: int, *, hand_out: bool
) -> Outcome:
    """Every unit staged and verified: make unit `first`'s members visible. The invocation that staged the
    last unit (`hand_out`) goes on with the other units while its budget lasts and hands the rest out, one
    message each, so a large archive is promoted by parallel invocations; a unit's own message promotes that
    unit alone. Whoever then sees every unit promoted lands the file."""
    run, name = landing.run, landing.planned.name
    now = deps.clock.now()
    claim = _claim(now, deps.settings.step_overdue_seconds, UnitState.DONE)
    order = [first, *(index for index in range(count) if index != first and hand_out)]
    taken: set[int] = set()  # units another invocation holds, or whose retry is not due yet
    for position, index in enumerate(order):
        if position and landing.budget.spent():
            break
        try:
            unit = _update_unit(latest, fetch, index, claim).value.units[index]
            unit, done = landing.promote_unit(fetch, index, unit, _Renewal(deps, latest, fetch, index, unit))
        except _NotClaimable:
            taken.add(index)
            continue
        except ConflictError:
            return outcome(Result.STALE, run.run_id, file=name, unit=index)
        except SupersededError as exc:
            return _abandoned(deps, landing, exc)
        except Exception as exc:
            return _unit_failed(deps, landing, latest, fetch, index, exc)
        state = UNIT.after(unit.state, Event.PROMOTED if done else Event.PAUSE)  # paused: it goes on later
        try:
            _update_unit(latest, fetch, index, _becomes(unit.but(state=state, next_at=now)))
        except ConflictError:
            return outcome(Result.STALE, run.run_id, file=name, unit=index)
        if not done:
            break  # the budget is spent
    # As this invocation last saved (or read) it: whoever saves a unit after it decides on its own save.
    current = latest.get()
    if current.value.state is not FileState.UNPACKING:
        return outcome(Result.NOTHING_TO_DO, run.run_id, file=name, unit=first)
    # What this invocation paused or did not reach goes on in invocations of its own.
    left = [i for i in order if i not in taken and current.value.units[i].state is UnitState.DONE]
    if left:
        deps.handoff.publish_units(run.run_id, name, left)
        visible = current.value.units[first].promoted
        return outcome(
            Result.PROMOTED, run.run_id, file=name, unit=first, promoted=visible, handed_out=len(left)
        )
    if _all_in(current.value, UnitState.PROMOTED):
        return _land_archive(deps, landing, current)
    return outcome(Result.PROMOTED, run.run_id, file=name, unit=first)


STAGED = (UnitState.DONE, UnitState.PROMOTING, UnitState.PROMOTED)  # every member verified, in staging or out


def _all_in(record: FileRecord, *states: UnitState) -> bool:
    return all(unit.state in states for unit in record.units)


class _NotClaimable(Exception):
    """The unit is done, or another invocation holds a fresh claim on it."""


def _claim(now: datetime, overdue: float, waiting: UnitState) -> Callable[[Unit], Unit]:
    """A unit's claim: `waiting` and due, or at work under a claim gone stale (its invocation died)."""
    stale_after = timedelta(seconds=overdue)

    def claim(unit: Unit) -> Unit:
        if not claimable(UNIT, unit, waiting, now, stale_after):
            raise _NotClaimable(unit.state.value)
        return unit.but(state=UNIT.after(unit.state, Event.CLAIM), claimed_at=now, claims=unit.claims + 1)

    return claim


class _Renewal:
    """A unit's claim kept fresh while its invocation works: called at each piece of progress (a member or a
    part on its way to staging, members promoted), it renews the claim (one conditional write) once
    RENEW_AFTER of the step's overdue time has passed since the claim was taken or last renewed. A unit that
    goes on making progress never looks overdue to `claimable`; one that stalls stops renewing, and is taken
    over once its claim is overdue. A claim found taken over meanwhile stops this invocation (ConflictError:
    its work is moot)."""

    def __init__(self, deps: Deps, latest: _Latest, fetch: Fetch, index: int, held: Unit) -> None:
        assert held.claimed_at is not None
        self._deps, self._latest, self._fetch, self._index = deps, latest, fetch, index
        self._since = held.claimed_at
        self._every = timedelta(seconds=deps.settings.step_overdue_seconds * RENEW_AFTER)

    def __call__(self) -> None:
        now, since = self._deps.clock.now(), self._since
        if not overdue(since, now, self._every):
            return

        def renew(unit: Unit) -> Unit:
            if unit.claimed_at != since:  # another invocation claimed it (each claim is at its own time)
                raise ConflictError(f"{self._latest.name}: unit {self._index} was taken over")
            return unit.but(claimed_at=now)

        _update_unit(self._latest, self._fetch, self._index, renew)
        self._since = now


def _becomes(unit: Unit) -> Callable[[Unit], Unit]:
    return lambda _: unit


class _Latest:
    """A file's record as this invocation last read or saved it, with its ETag: the next compare-and-swap
    starts from it instead of reading the record again. Saved by another invocation meanwhile, the record
    has another ETag: that write fails (412) and `_update_unit` reads it afresh."""

    def __init__(self, ledger: Ledger, current: Versioned[FileRecord]) -> None:
        self._ledger = ledger
        self.run_id, self.name = current.value.run_id, current.value.name
        self._current: Versioned[FileRecord] | None = current

    def get(self) -> Versioned[FileRecord]:
        if self._current is None:
            self._current = self._ledger.load_file(self.run_id, self.name)
        return self._current

    @property
    def held(self) -> bool:
        """Whether `get` answers without reading (the record as it was, not as it is)."""
        return self._current is not None

    def forget(self) -> None:
        self._current = None

    def save(self, current: Versioned[FileRecord], record: FileRecord) -> Versioned[FileRecord]:
        self._current = None  # a failed write leaves it to be read again
        self._current = self._ledger.save_file(current, record)
        return self._current


def _update_unit(
    latest: _Latest, fetch: Fetch, index: int, change: Callable[[Unit], Unit]
) -> Versioned[FileRecord]:
    """Change one unit, whatever the other units of the file save meanwhile (compare-and-swap, again). It
    starts from the record as this invocation last knew it; what that refuses (the file started over, or
    `change` raising) is only believed once the record was read afresh."""
    for _ in range(UPDATE_TRIES):
        held = latest.held
        current = latest.get()
        record = current.value
        try:
            if record.state is not FileState.UNPACKING or record.fetch != fetch:
                raise ConflictError(f"{record.name}: started over meanwhile")
            units = list(record.units)
            units[index] = change(units[index])
        except (ConflictError, _NotClaimable):
            if not held:
                raise
            latest.forget()
            continue
        try:
            return latest.save(current, record.but(units=tuple(units)))
        except ConflictError:
            continue  # saved by another invocation meanwhile: read again
    raise TransientError(f"{latest.name}: unit {index} could not be saved ({UPDATE_TRIES} conflicts)")


def _land_archive(deps: Deps, landing: Landing, current: Versioned[FileRecord]) -> Outcome:
    """Every unit promoted: the archive itself under raw/ if kept, and the file landed (a second lander finds
    it landed)."""
    record = current.value
    assert record.fetch is not None
    try:
        members = landing.landed(record.fetch, record.units)
        landing.promote_raw(record.fetch)
    except SupersededError as exc:
        return _abandoned(deps, landing, exc)
    except Exception as exc:
        if classify(exc) is not Kind.TRANSIENT:
            return _failed(deps, landing.run, current, exc)
        log.warning("landing put off; the sweep resumes it", extra={"reason": describe(exc)})
        return outcome(Result.DEFERRED, landing.run.run_id, file=record.name, reason=describe(exc))
    metadata = next((unit.metadata for unit in record.units if unit.metadata), None)
    return _landed(deps, landing, current, record.but(members=members, metadata=metadata))


def _landed(deps: Deps, landing: Landing, current: Versioned[FileRecord], record: FileRecord) -> Outcome:
    run = landing.run
    landed = record.but(state=FILE.after(record.state, Event.LANDED), reason=None, fetch=None, units=())
    try:
        deps.ledger.save_file(current, landed)
    except ConflictError:
        return outcome(Result.NOTHING_TO_DO, run.run_id, file=record.name)  # another finisher landed it
    deps.ledger.mark_landed(run.run_id, record.name)
    size = record.size or 0
    log.info("file landed", extra={"members": len(record.members), "bytes": size})
    return outcome(Result.LANDED, run.run_id, file=record.name, members=len(record.members), bytes=size)


def _abandoned(deps: Deps, landing: Landing, exc: SupersededError) -> Outcome:
    deps.endings.discard_staging(landing.run)
    log.info("transfer abandoned", extra={"reason": str(exc)})
    return outcome(Result.STALE, landing.run.run_id, file=landing.planned.name)


def _unit_failed(
    deps: Deps,
    landing: Landing,
    latest: _Latest,
    fetch: Fetch,
    index: int,
    exc: Exception,
) -> Outcome:
    """A transient failure puts the unit off (back to the state it was claimed from); anything else fails
    the file's attempt (the file starts over, or the run fails)."""
    run, name = landing.run, landing.planned.name
    if classify(exc) is not Kind.TRANSIENT or isinstance(exc, UnsafeInputError):
        current = deps.ledger.load_file(run.run_id, name)
        if current.value.fetch != fetch:  # the file started over meanwhile: not this attempt's to fail
            return outcome(Result.STALE, run.run_id, file=name, unit=index)
        return _failed(deps, run, current, exc)
    reason, now = describe(exc), deps.clock.now()

    def later(unit: Unit) -> Unit:
        delay = deps.patience.delay(unit.retries + 1)
        back = UNIT.after(unit.state, Event.RETRY) if UNIT.allows(unit.state, Event.RETRY) else unit.state
        return unit.but(state=back, next_at=now + delay, retries=unit.retries + 1, claimed_at=None)

    try:
        current = _update_unit(latest, fetch, index, later)
    except ConflictError:
        return outcome(Result.STALE, run.run_id, file=name, unit=index)
    unit = current.value.units[index]
    log.warning("unit failed; retry scheduled", extra={"reason": reason, "retry_at": unit.next_at})
    if unit.retries >= deps.patience.stall_alert_after:
        stuck = f"{name} unit {index}: {unit.retries} transient failures in a row; the latest: {reason}"
        deps.alerter.alert_once(deps.ledger.load_run(run.run_id), "stuck", stuck)
    if unit.next_at is not None and unit.next_at <= now:
        deps.handoff.publish_units(run.run_id, name, [index])
    return outcome(Result.RETRY_SCHEDULED, run.run_id, file=name, unit=index, reason=reason)


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
    if kind is Kind.PERMANENT:  # the file starts over, in a new staging folder
        delay = backoff(deps.settings.file_retry_seconds, record.attempts)
        record = record.but(fetch=None, units=(), sha256=None, size=None)
    else:
        record = record.but(attempts=record.attempts - 1, retries=record.retries + 1)
        delay = deps.patience.delay(record.retries)
    return _retry_later(deps, run, current, record, delay, describe(exc))


def _retry_later(
    deps: Deps, run: Run, current: Versioned[FileRecord], record: FileRecord, delay: timedelta, reason: str
) -> Outcome:
    now = deps.clock.now()
    due = now + delay
    retry = FILE.after(record.state, Event.RETRY)
    deps.ledger.save_file(current, record.but(state=retry, next_at=due, reason=reason))
    log.warning("transfer failed; retry scheduled", extra={"reason": reason, "retry_at": due.isoformat()})
    if record.retries >= deps.patience.stall_alert_after:
        stuck = f"{record.name}: {record.retries} transient failures in a row; the latest: {reason}"
        deps.alerter.alert_once(deps.ledger.load_run(run.run_id), "stuck", stuck)
    if due <= now:
        deps.handoff.publish_transfers(run.run_id, [record.name])
    return outcome(Result.RETRY_SCHEDULED, run.run_id, file=record.name, reason=reason)


def _give_up(deps: Deps, run: Run, current: Versioned[FileRecord], reason: str) -> Outcome:
    failed = FILE.after(current.value.state, Event.GIVE_UP)
    deps.ledger.save_file(current, current.value.but(state=failed, reason=reason))
    deps.endings.end(deps.ledger.load_run(run.run_id), Event.FAIL, reason)
    return outcome(Result.FAILED, run.run_id, file=current.value.name, reason=reason)
