"""The domain's value types: extracts, jobs, output files, credentials.

Shared by every layer (chain, fusion, oci); below them all (it imports only errors).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fusion_extract.errors import MessageError


class Mode(enum.StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"

    @property
    def label(self) -> str:
        """The word Fusion's job descriptions use: Full or Incremental."""
        return "Full" if self is Mode.FULL else "Incremental"

    @property
    def argument(self) -> str:
        """The value Fusion expects in `submit.argument2`."""
        return "Full Data Extract" if self is Mode.FULL else "Incremental Data Extract"


TIME_UNITS = ("MINUTE", "HOUR", "DAY", "WEEK", "MONTH")
HHMM = re.compile(r"^(?:[01]\d|2[0-3])[0-5]\d$")  # the one pattern for runAtTimes' times
_US_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
_FUSION_KEYS = {"fixedInterval", "startDate", "endDate", "startTime", "endTime"}


@dataclass(frozen=True)
class RunAtTimes:
    """Fusion's optional recurrence window (`runAtTimes`), valid by construction (MessageError otherwise).

    Fusion's documents show dates as MM/DD/YYYY and times as HHMM; that is the form sent.
    """

    interval: int
    time_unit: str
    start_date: date
    end_date: date
    start_time: str
    end_time: str

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.interval, bool) or not isinstance(self.interval, int) or self.interval <= 0:
            problems.append(f"interval {self.interval!r} must be a positive whole number")
        if self.time_unit not in TIME_UNITS:
            problems.append(f"timeUnit {str(self.time_unit)[:20]!r} must be one of {', '.join(TIME_UNITS)}")
        for label, value in (("startTime", self.start_time), ("endTime", self.end_time)):
            if not isinstance(value, str) or not HHMM.match(value):
                problems.append(f"{label} {str(value)[:20]!r} must be a time HHMM (0000-2359)")
        if not problems and (self.end_date, self.end_time) < (self.start_date, self.start_time):
            problems.append("the window ends before it starts")
        if problems:
            raise MessageError("invalid runAtTimes: " + "; ".join(problems))

    @classmethod
    def from_fusion(cls, value: Any) -> RunAtTimes:
        """From Fusion's own shape; dates as MM/DD/YYYY (Fusion's) or YYYY-MM-DD."""
        if not isinstance(value, dict):
            raise MessageError("runAtTimes must be an object")
        if unknown := sorted(set(value) - _FUSION_KEYS):
            raise MessageError(f"runAtTimes has unknown field(s): {', '.join(k[:40] for k in unknown)}")
        if missing := sorted(_FUSION_KEYS - set(value)):
            raise MessageError(f"runAtTimes is missing {', '.join(missing)}")
        interval = value["fixedInterval"]
        if not isinstance(interval, dict) or set(interval) != {"interval", "timeUnit"}:
            raise MessageError("runAtTimes.fixedInterval must be {interval, timeUnit}")
        unit = interval["timeUnit"]
        if not isinstance(unit, str):
            raise MessageError("runAtTimes.fixedInterval.timeUnit must be text")
        return cls(
            interval["interval"],
            unit.upper(),
            _fusion_date(value, "startDate"),
            _fusion_date(value, "endDate"),
            value["startTime"],
            value["endTime"],
        )

    def to_fusion(self) -> dict[str, Any]:
        return {
            "fixedInterval": {"interval": self.interval, "timeUnit": self.time_unit},
            "startDate": self.start_date.strftime("%m/%d/%Y"),
            "endDate": self.end_date.strftime("%m/%d/%Y"),
            "startTime": self.start_time,
            "endTime": self.end_time,
        }


def _fusion_date(doc: dict[str, Any], key: str) -> date:
    text = doc[key]
    if isinstance(text, str):
        if match := _US_DATE.match(text):
            text = f"{match[3]}-{match[1]}-{match[2]}"
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise MessageError(
        f"runAtTimes.{key} must be a date (MM/DD/YYYY or YYYY-MM-DD), got {str(doc[key])[:40]!r}"
    )


@dataclass(frozen=True)
class ExtractRequest:
    extract: str
    mode: Mode
    run_at_times: RunAtTimes | None = None


class Phase(enum.StrEnum):
    """What a job status means for us (docs/architecture.md: failure policy)."""

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
    completed: bool | None = None  # jobProgress.completed, when Fusion reports it
    # Finished by its status, yet not confirmed by jobProgress.completed (COMPLETED without completed=true,
    # or a success with completed=false). Phase stays RUNNING; after COMPLETED_GRACE_SECONDS of this the
    # chain may take output files being listed as success ("assumed complete").
    unconfirmed: bool = False
    # A failure resubmitting cannot fix: VALIDATION_FAILED, or ERROR because the extract definition does not
    # exist (a mistyped extract name). The chain must not rerun it.
    validation_failed: bool = False
    # What the job ran, as its details say (requestParameters, else the four-part description); None when
    # Fusion's answer does not say (its later status examples carry no jobRequest echo).
    extract: str | None = None
    mode: Mode | None = None


@dataclass
class SourceVersion:
    """The version of a file a resumable read is pinned to, as the file's first answer named it: its ETag,
    else its Last-Modified. The read fills it in while it is empty; every later range is conditional on it,
    so bytes of two versions of a file are never joined. Both None: the server names no version."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class OutputFile:
    """One output file of a finished job, as Fusion listed it: what poll plans, the ledger keeps and transfer
    fetches (the job it belongs to is its run's)."""

    name: str  # reduced to a safe name
    size: int
    sha256: str | None  # lower-case hex, from `checksum: sha-256=<hex>`
    url: str  # the download (`enclosure`) link, already checked against the URL rules
    listed_name: str | None = None  # the name exactly as Fusion listed it (what its `.mf` manifest names)

    @property
    def raw_name(self) -> str:
        """The name as listed, falling back to the safe name when the listing's is not known."""
        return self.listed_name if self.listed_name is not None else self.name


@dataclass(frozen=True)
class FusionCredentials:
    """The JSON credentials secret. repr never shows the values."""

    client_id: str
    client_secret: str = field(repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
