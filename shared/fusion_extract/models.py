"""The domain's value types: extracts, jobs, output files, credentials.

Shared by every layer (chain, fusion, oci); imports nothing of ours.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date


class Mode(enum.StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"

    @property
    def argument(self) -> str:
        """The value Fusion expects in `submit.argument2`."""
        return "Full Data Extract" if self is Mode.FULL else "Incremental Data Extract"


@dataclass(frozen=True)
class RunAtTimes:
    """Fusion's optional recurrence window (`runAtTimes`); dates go out as MM/DD/YYYY, times as HHMM."""

    interval: int
    time_unit: str
    start_date: date
    end_date: date
    start_time: str
    end_time: str


@dataclass(frozen=True)
class ExtractRequest:
    extract: str
    mode: Mode
    run_at_times: RunAtTimes | None = None


class Phase(enum.StrEnum):
    """What a job status means for us (see the scheduler states in the README)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NEEDS_HUMAN = "needs_human"


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    status: str  # as Fusion reported it, upper-cased
    phase: Phase
    warning: bool = False  # succeeded with warnings
    known: bool = True  # False: a status string we have never seen (treated as running)
    message: str | None = None


@dataclass(frozen=True)
class OutputFile:
    """One output file of a finished job, as listed by the job file manager."""

    job_id: str
    name: str  # reduced to a safe name
    size: int
    sha256: str | None  # lower-case hex, from `checksum: sha-256=<hex>`
    time_created: str | None
    url: str  # the download (`enclosure`) link, already checked against the URL rules


@dataclass(frozen=True)
class FusionCredentials:
    """The JSON credentials secret. repr never shows the values."""

    client_id: str
    client_secret: str = field(repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
