"""What `status` and `history` show, apart from how: each extract against its service level, and the runs
of one extract over time (durations, volume, outcome). Read through the Ledger's methods only, so a
faster index of runs serves them as soon as the Ledger offers one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from rich.console import Console

from fusion_extract.catalog import Catalog, Entry
from fusion_extract.chain.ledger.records import FileRecord, Run, RunState
from fusion_extract.chain.ledger.store import Ledger
from fusion_extract.cli.ops import Ops
from fusion_extract.clock import isoformat
from fusion_extract.errors import NotFoundError
from fusion_extract.service_level import Standing, standing

T = TypeVar("T")


class App(Protocol):
    """What the `status` and `history` commands use of the CLI (main.Cli), named here so they need not
    import main, which registers them."""

    ops: Ops
    json: bool
    console: Console

    def emit(self, doc: Any) -> None: ...


@dataclass(frozen=True)
class ExtractStatus:
    """One row of `status`."""

    entry: Entry
    standing: Standing
    last_run: str | None  # the run id of its latest landing
    now: datetime

    @property
    def age_hours(self) -> float | None:
        landed = self.standing.landed
        return None if landed is None else (self.now - landed).total_seconds() / 3600

    @property
    def verdict(self) -> str:
        """on time / LATE / no expectation / disabled / never landed."""
        if not self.entry.enabled:
            return "disabled"
        if self.standing.within is None:
            return "no expectation"
        if self.standing.late:
            return "LATE"
        return "on time" if self.standing.landed is not None else "waiting"

    def to_json(self) -> dict[str, Any]:
        found, entry = self.standing, self.entry
        return {
            "extract": entry.name,
            "mode": entry.mode.value,
            "schedule": entry.schedule,
            "time_zone": entry.time_zone,
            "expected_within_hours": entry.expected_within_hours,
            "last_landed": _iso(found.landed),
            "last_run": self.last_run,
            "age_hours": None if self.age_hours is None else round(self.age_hours, 2),
            "verdict": self.verdict,
            "late": found.late,
            "hours_late": round(found.hours_late(self.now), 2),
            "scheduled": _iso(found.scheduled),
            "expected_by": _iso(found.expected_by),
            "next_run": _iso(found.next_run),
        }


def statuses(catalog: Catalog, ledger: Ledger, now: datetime) -> list[ExtractStatus]:
    """Every catalog extract against its service level. An extract never landed is held to the starts since
    the sweep first watched it (read, never noted here: `status` changes nothing)."""
    rows = []
    for entry in catalog:
        landed, run_id = ledger.last_landing(entry.name)
        watched = landed or ledger.first_watched(entry.name) or now
        rows.append(ExtractStatus(entry, standing(entry, landed, watched, now), run_id, now))
    return rows


@dataclass(frozen=True)
class RunHistory:
    """One run of `history`: when, how long each part took, how much it landed, how it ended."""

    run_id: str
    started: datetime
    state: RunState
    earlier: float | None  # seconds before its last job's submission: earlier jobs that failed, backoffs
    queue: float | None  # seconds from its last job's submission to Fusion running it
    job: float | None  # seconds Fusion ran it
    transfer: float | None  # seconds from the job's success to the run's landing
    total: float | None  # seconds from the run's creation to its end
    files: int
    bytes: int
    rows: int
    attempts: int
    reason: str | None

    @classmethod
    def of(cls, run: Run, files: Iterable[FileRecord]) -> RunHistory:
        members = [m for f in files for m in f.members]
        succeeded = run.status_since if run.state in (RunState.LANDED, RunState.FINISHING) else None
        return cls(
            run_id=run.run_id,
            started=run.created_at,
            state=run.state,
            earlier=_seconds(run.created_at, run.submitted_at) if run.attempt > 1 else None,
            queue=_seconds(run.submitted_at, run.job_started_at),
            job=_seconds(run.job_started_at, succeeded),
            transfer=_seconds(succeeded, run.updated_at if run.state is RunState.LANDED else None),
            total=_seconds(run.created_at, run.updated_at if run.state.final else None),
            files=run.file_count,
            bytes=sum(m.size for m in members),
            rows=sum(m.rows or 0 for m in members),
            attempts=run.attempt,
            reason=run.reason,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started": isoformat(self.started),
            "state": self.state.value,
            "earlier_jobs_seconds": self.earlier,
            "queue_seconds": self.queue,
            "job_seconds": self.job,
            "transfer_seconds": self.transfer,
            "total_seconds": self.total,
            "files": self.files,
            "bytes": self.bytes,
            "rows": self.rows,
            "attempts": self.attempts,
            "reason": self.reason,
        }


def history(catalog: Catalog, ledger: Ledger, extract: str, limit: int) -> list[RunHistory]:
    """The latest `limit` runs of `extract`, oldest first; NotFoundError when neither the catalog nor the
    ledger knows the extract."""
    runs = sorted((v.value for v in ledger.runs_of(extract)), key=lambda run: run.created_at)[-limit:]
    if not runs and catalog and extract not in catalog:
        raise NotFoundError(
            f"no extract {extract!r}: the catalog has {', '.join(catalog.names)}, and the ledger no run of it"
        )
    return [RunHistory.of(run, (v.value for v in ledger.files(run.run_id))) for run in runs]


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max((end - start).total_seconds(), 0.0), 3)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else isoformat(moment)
