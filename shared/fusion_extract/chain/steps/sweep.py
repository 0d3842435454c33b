"""The sweep (poll function, `{"kind": "sweep"}` on a schedule): re-drive every run whose next step is
overdue (a lost message, a crashed invocation) or due (a rerun after its backoff)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from fusion_extract.chain.deps import Deps
from fusion_extract.chain.outcomes import Outcome, Result, outcome
from fusion_extract.chain.records import FileRecord, FileState, Run, RunState, Versioned
from fusion_extract.chain.runs import logged
from fusion_extract.errors import ConflictError

log = logging.getLogger(__name__)


def sweep(deps: Deps) -> Outcome:
    state = _Sweep(deps, deps.clock.now(), timedelta(seconds=deps.settings.step_overdue_seconds))
    redriven: dict[str, str] = {}
    for current in deps.ledger.runs():
        if current.value.state.final:
            continue
        with logged(current.value):
            action = state.run(current)
        if action:
            redriven[current.value.run_id] = action
            log.info("sweep re-drove run", extra={"action": action, "run_id": current.value.run_id})
    return outcome(Result.SWEPT, redriven=redriven)


@dataclass
class _Sweep:
    deps: Deps
    now: datetime
    overdue: timedelta

    def run(self, current: Versioned[Run]) -> str | None:
        run = current.value
        late = self.now > run.next_at + self.overdue
        if run.state is RunState.RUNNING and late:
            return self._repoll(current)
        if run.state is RunState.SUBMITTING and late:
            self.deps.runs.publish_rerun(run.run_id, run.attempt)  # resume the submit that died
            return "rerun"
        if run.state is RunState.RERUN_PENDING and self.now >= run.next_at:
            self.deps.runs.publish_rerun(run.run_id, run.attempt + 1)
            return "rerun"
        if run.state is RunState.TRANSFERRING:
            return self._retransfer(run)
        return None

    def _repoll(self, current: Versioned[Run]) -> str | None:
        run = current.value
        following = run.but(poll_seq=run.poll_seq + 1, updated_at=self.now, next_at=self.now)
        try:
            self.deps.ledger.save_run(current, following)
        except ConflictError:
            return None
        self.deps.runs.publish_poll(run.run_id, following.poll_seq)
        return "poll"

    def _retransfer(self, run: Run) -> str | None:
        records = [v.value for v in self.deps.ledger.files(run.run_id)]
        if all(r.state is FileState.LANDED for r in records):
            if self.now <= run.next_at + self.overdue:
                return None
            self.deps.runs.finish_if_complete(
                self.deps.ledger.load_run(run.run_id)
            )  # the finisher died midway
            return "finish"
        due = [r.name for r in records if self._file_due(r)]
        self.deps.runs.publish_transfers(run.run_id, due)
        return f"transfer x{len(due)}" if due else None

    def _file_due(self, record: FileRecord) -> bool:
        if record.state is FileState.PENDING:
            grace = self.overdue if record.attempts == 0 else timedelta(0)
            return self.now >= record.next_at + grace
        if record.state is FileState.TRANSFERRING and record.claimed_at is not None:
            return self.now > record.claimed_at + self.overdue
        return False
