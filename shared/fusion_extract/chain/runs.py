"""Moves every step shares: ending a run, alerting, fanning out transfers, backoff."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

from fusion_extract import logging as jsonlog
from fusion_extract.chain import messages
from fusion_extract.chain.deps import Deps
from fusion_extract.chain.records import Run, RunState, Versioned
from fusion_extract.errors import ConflictError, NotFoundError

log = logging.getLogger(__name__)

# Notifications accepts 60 messages a minute per topic: past this many files, files travel in batches
# and each transfer invocation hands the rest of its batch on.
FANOUT_MESSAGES = 50


def logged(run: Run) -> AbstractContextManager[None]:
    """Every log line inside carries the run's identity."""
    return jsonlog.bind(run_id=run.run_id, extract=run.extract, job_id=run.job_id)


def find_run(deps: Deps, run_id: str, step: str) -> Versioned[Run] | None:
    """The run a message names, or None (logged): a message may outlive the ledger it points into."""
    try:
        return deps.ledger.load_run(run_id)
    except NotFoundError:
        log.warning(f"{step} for an unknown run ignored", extra={"run_id": run_id})
        return None


def alert(deps: Deps, event: str, run: Run, reason: str | None = None, **extra: Any) -> None:
    """Tell people (alerts topic): landed, failed, timed_out, needs_human, overdue."""
    message = messages.encode(
        "alert",
        event=event,
        run_id=run.run_id,
        extract=run.extract,
        job_id=run.job_id,
        reason=reason,
        **extra,
    )
    deps.publisher.publish(deps.settings.alerts_topic_id, message)
    log.info("alert sent", extra={"event": event, "reason": reason})


def end_run(deps: Deps, current: Versioned[Run], state: RunState, reason: str) -> Versioned[Run] | None:
    """Move a run to FAILED or TIMED_OUT, release its lease, alert. None if another invocation was first."""
    now = deps.clock.now()
    try:
        saved = deps.ledger.save_run(current, current.value.but(state=state, reason=reason, updated_at=now))
    except ConflictError:
        log.info("run changed meanwhile; leaving it to the newer step")
        return None
    deps.ledger.release_lease(saved.value.extract, saved.value.run_id)
    discard_staging(deps, saved.value)
    alert(deps, state.value.lower(), saved.value, reason)
    log.error("run ended", extra={"state": state.value, "reason": reason})
    return saved


def discard_staging(deps: Deps, run: Run) -> None:
    """Staged copies are private to a run and never visible; once the run is over they go."""
    for leftover in list(deps.store.list(deps.layout.run_staging(run))):
        deps.store.delete(leftover.name)


def publish_transfers(deps: Deps, run_id: str, names: Sequence[str]) -> None:
    """One message per file; past FANOUT_MESSAGES files, FANOUT_MESSAGES batches of files."""
    if not names:
        return
    batches = min(len(names), FANOUT_MESSAGES)
    for index in range(batches):
        batch = list(names[index::batches])
        deps.publisher.publish(deps.settings.transfer_topic_id, messages.transfer_message(run_id, batch))


def backoff(base_seconds: float, attempt: int) -> timedelta:
    """Exponential: base, 2*base, 4*base ... for attempt 1, 2, 3 ..."""
    return timedelta(seconds=base_seconds * 2 ** max(attempt - 1, 0))
