"""The one owner of what every step does to a run besides its own work: find it, end it, alert people,
hand work on (poll, rerun and transfer messages), discard its staging, finish it once its files landed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fusion_extract import logging as jsonlog
from fusion_extract.chain import finish, messages
from fusion_extract.chain.layout import Layout
from fusion_extract.chain.ledger import Ledger
from fusion_extract.chain.outcomes import Outcome, Result, outcome
from fusion_extract.chain.records import FileState, Run, RunState, Versioned
from fusion_extract.clock import Clock
from fusion_extract.errors import ConflictError, NotFoundError
from fusion_extract.ports import ObjectStore, Publisher

log = logging.getLogger(__name__)

# Notifications accepts 60 messages a minute per topic: past this many files, files travel in batches
# and each transfer invocation hands the rest of its batch on.
FANOUT_MESSAGES = 50


@dataclass(frozen=True)
class Topics:
    poll: str
    transfer: str
    rerun: str
    alerts: str


def logged(run: Run) -> AbstractContextManager[None]:
    """Every log line inside carries the run's identity."""
    return jsonlog.bind(run_id=run.run_id, extract=run.extract, job_id=run.job_id)


def backoff(base_seconds: float, attempt: int) -> timedelta:
    """Exponential: base, 2*base, 4*base ... for attempt 1, 2, 3 ..."""
    return timedelta(seconds=base_seconds * 2 ** max(attempt - 1, 0))


class Runs:
    def __init__(
        self,
        ledger: Ledger,
        store: ObjectStore,
        layout: Layout,
        publisher: Publisher,
        topics: Topics,
        clock: Clock,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.layout = layout
        self.publisher = publisher
        self.topics = topics
        self.clock = clock

    def find(self, run_id: str, step: str) -> Versioned[Run] | None:
        """The run a message names, or None (logged): a message may outlive the ledger it points into."""
        try:
            return self.ledger.load_run(run_id)
        except NotFoundError:
            log.warning(f"{step} for an unknown run ignored", extra={"run_id": run_id})
            return None

    def alert(self, event: str, run: Run, reason: str | None = None, **extra: Any) -> None:
        """Tell people (alerts topic): landed, failed, timed_out, needs_human, unknown_status."""
        message = messages.encode(
            "alert",
            event=event,
            run_id=run.run_id,
            extract=run.extract,
            job_id=run.job_id,
            reason=reason,
            **extra,
        )
        self.publisher.publish(self.topics.alerts, message)
        log.info("alert sent", extra={"event": event, "reason": reason})

    def end(self, current: Versioned[Run], state: RunState, reason: str) -> Versioned[Run] | None:
        """Move a run to a final state, release its lease, alert. None if another invocation was first."""
        now = self.clock.now()
        try:
            saved = self.ledger.save_run(
                current, current.value.but(state=state, reason=reason, updated_at=now)
            )
        except ConflictError:
            log.info("run changed meanwhile; leaving it to the newer step")
            return None
        self.ledger.release_lease(saved.value.extract, saved.value.run_id)
        self.discard_staging(saved.value)
        self.alert(state.value.lower(), saved.value, reason)
        log.error("run ended", extra={"state": state.value, "reason": reason})
        return saved

    def discard_staging(self, run: Run) -> None:
        """Staged copies are private to a run and never visible; once the run is over they go."""
        for leftover in list(self.store.list(self.layout.run_staging(run))):
            self.store.delete(leftover.name)

    def publish_poll(self, run_id: str, seq: int) -> None:
        self.publisher.publish(self.topics.poll, messages.poll_message(run_id, seq))

    def publish_rerun(self, run_id: str, attempt: int) -> None:
        self.publisher.publish(self.topics.rerun, messages.rerun_message(run_id, attempt))

    def publish_transfers(self, run_id: str, names: Sequence[str]) -> None:
        """One message per file; past FANOUT_MESSAGES files, FANOUT_MESSAGES batches of files."""
        if not names:
            return
        batches = min(len(names), FANOUT_MESSAGES)
        for index in range(batches):
            self.publisher.publish(
                self.topics.transfer, messages.transfer_message(run_id, list(names[index::batches]))
            )

    def hand_on(self, run_id: str, names: Sequence[str]) -> None:
        """The rest of a batch, in one message, for the next transfer invocation."""
        self.publisher.publish(self.topics.transfer, messages.transfer_message(run_id, list(names)))

    def finish_if_complete(self, current: Versioned[Run]) -> Outcome | None:
        """When every file of the run landed: cross-check, write _manifest.json then _SUCCESS, mark LANDED."""
        run = current.value
        if run.state is not RunState.TRANSFERRING or self.ledger.landed_count(run.run_id) < len(run.files):
            return None
        records = [v.value for v in self.ledger.files(run.run_id)]
        if len(records) < len(run.files) or any(r.state is not FileState.LANDED for r in records):
            return None
        with logged(run):
            problems = finish.cross_check(records)
            if problems:
                self.end(current, RunState.FAILED, "landed files do not verify: " + "; ".join(problems))
                return outcome(Result.FAILED, run.run_id, problems=problems)
            now = self.clock.now()
            landed = run.but(state=RunState.LANDED, landed_at=now, updated_at=now, reason=None)
            document = finish.manifest(landed, records, self.layout)
            self.store.put_bytes(self.layout.manifest(run), document, content_type="application/json")
            # _SUCCESS last: its presence says the run is complete.
            self.store.put_bytes(self.layout.success(run), b"", content_type="text/plain")
            try:
                self.ledger.save_run(current, landed)
            except ConflictError:
                return None  # a duplicate finished it
            self.ledger.release_lease(run.extract, run.run_id)
            self.discard_staging(run)
            totals = finish.totals(records)
            self.alert("landed", landed, None, folder=self.layout.run_folder(run), **totals)
            log.info("run landed", extra=totals)
            return outcome(Result.LANDED, run.run_id, **totals)
