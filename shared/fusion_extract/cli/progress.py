"""How far a run has come, from its documents alone: bytes fetched and unpacked per file and in total,
units done, elapsed time, rate and ETA (what `watch` and `show` report). It reads no clock: `now` is given."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fusion_extract.chain.ledger.codec import entry_to_doc
from fusion_extract.chain.ledger.records import FileRecord, FileState, Run, RunState, UnitState
from fusion_extract.clock import isoformat
from fusion_extract.models import OutputFile

UNPACKED = (UnitState.DONE, UnitState.PROMOTING, UnitState.PROMOTED)


@dataclass(frozen=True)
class FileProgress:
    name: str
    state: str
    size: int  # as Fusion listed it
    fetched: int  # bytes in staging (all of them once fetched)
    unpacked: int  # bytes of its members staged or landed
    units_done: int
    units: int

    @classmethod
    def of(cls, size: int, record: FileRecord | None, name: str) -> FileProgress:
        if record is None:
            return cls(name, FileState.PENDING.value, size, 0, 0, 0, 0)
        fetch = record.fetch
        if record.state is FileState.LANDED or record.state is FileState.UNPACKING:
            fetched = size
        else:
            fetched = 0 if fetch is None else size if fetch.done else min(fetch.offset, size)
        staged = sum(
            unit.kept.size if unit.kept else sum(s.member.size for s in unit.staged) for unit in record.units
        )
        unpacked = max(staged, sum(m.size for m in record.members))
        done = sum(unit.state in UNPACKED for unit in record.units)
        return cls(record.name, record.state.value, size, fetched, unpacked, done, len(record.units))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "size": self.size,
            "fetched": self.fetched,
            "unpacked": self.unpacked,
            "units_done": self.units_done,
            "units": self.units,
        }


@dataclass(frozen=True)
class RunProgress:
    run: Run
    files: tuple[FileProgress, ...]
    now: datetime

    @classmethod
    def of(
        cls, run: Run, plan: Iterable[OutputFile], records: Iterable[FileRecord], now: datetime
    ) -> RunProgress:
        by_name = {record.name: record for record in records}
        files = tuple(FileProgress.of(p.size, by_name.get(p.name), p.name) for p in plan)
        return cls(run, files, now)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def fetched(self) -> int:
        return sum(f.fetched for f in self.files)

    @property
    def unpacked(self) -> int:
        return sum(f.unpacked for f in self.files)

    @property
    def units(self) -> tuple[int, int]:
        return sum(f.units_done for f in self.files), sum(f.units for f in self.files)

    @property
    def landed(self) -> int:
        return sum(f.state == FileState.LANDED.value for f in self.files)

    @property
    def elapsed(self) -> float:
        """Seconds since the run started, to its end once final."""
        end = self.run.updated_at if self.run.state.final else self.now
        return max((end - self.run.created_at).total_seconds(), 0.0)

    @property
    def transfer_elapsed(self) -> float | None:
        """Seconds since the run began transferring (its history says when), to its end once final."""
        began = next((c.at for c in self.run.history.changes if c.to is RunState.TRANSFERRING), None)
        if began is None:
            return None
        end = self.run.updated_at if self.run.state.final else self.now
        return max((end - began).total_seconds(), 0.0)

    @property
    def rate(self) -> float | None:
        """Bytes fetched per second of transfer, once there is any."""
        took = self.transfer_elapsed
        return self.fetched / took if took and self.fetched else None

    @property
    def eta(self) -> float | None:
        """Seconds until every byte is fetched at the rate so far (0 when done)."""
        rate = self.rate
        if self.fetched >= self.size:
            return 0.0 if self.files else None
        return None if rate is None else (self.size - self.fetched) / rate

    def to_json(self) -> dict[str, Any]:
        done, units = self.units
        rate, eta = self.rate, self.eta
        return {
            "run_id": self.run.run_id,
            "extract": self.run.extract,
            "state": self.run.state.value,
            "at": isoformat(self.now),
            "elapsed_seconds": round(self.elapsed, 3),
            "size": self.size,
            "fetched": self.fetched,
            "unpacked": self.unpacked,
            "units_done": done,
            "units": units,
            "files_landed": self.landed,
            "rate_bytes_per_second": None if rate is None else round(rate, 1),
            "eta_seconds": None if eta is None else round(eta, 1),
            "files": [f.to_json() for f in self.files],
            "changes": [entry_to_doc(c) for c in self.run.history.changes],
        }

    def line(self) -> str:
        """One plain line: what a piped `watch` prints per change."""
        done, units = self.units
        rate, eta = self.rate, self.eta
        return (
            f"{self.run.state.value} elapsed {duration(self.elapsed)}; "
            f"fetched {self.fetched:,}/{self.size:,} B, unpacked {self.unpacked:,} B, "
            f"units {done}/{units}, files {self.landed}/{len(self.files)}"
            f"{'' if rate is None else f', {rate / 1e6:.2f} MB/s'}"
            f"{'' if eta is None else f', ETA {duration(eta)}'}"
        )


def duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
