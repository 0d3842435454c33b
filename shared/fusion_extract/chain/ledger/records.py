"""What the run ledger records: runs, their output files, and the extract leases (docs/architecture.md)."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, overload

from fusion_extract.clock import IdFactory
from fusion_extract.models import OutputFile, RunAtTimes


class RunState(enum.StrEnum):
    SUBMITTING = "SUBMITTING"  # lease taken, job being submitted
    RUNNING = "RUNNING"  # job submitted; poll follows it
    RERUN_PENDING = "RERUN_PENDING"  # job failed; a new job is submitted when next_at comes
    TRANSFERRING = "TRANSFERRING"  # job succeeded; files planned and being landed
    FINISHING = "FINISHING"  # every file landed; one finisher writes _manifest.json, then _SUCCESS
    LANDED = "LANDED"  # every file landed, _manifest.json and _SUCCESS written
    FAILED = "FAILED"  # attempts spent or a permanent error; alert sent
    TIMED_OUT = "TIMED_OUT"  # the job passed its deadline; alert sent
    CANCELLED = "CANCELLED"  # an operator cancelled it; alert sent

    @property
    def final(self) -> bool:
        return self in (RunState.LANDED, RunState.FAILED, RunState.TIMED_OUT, RunState.CANCELLED)


class FileState(enum.StrEnum):
    PENDING = "PENDING"  # to fetch (or to go on fetching: see FileRecord.fetch)
    TRANSFERRING = "TRANSFERRING"  # an invocation is copying it into the staging area
    UNPACKING = "UNPACKING"  # fetched and verified; its units of members are being unpacked
    LANDED = "LANDED"
    FAILED = "FAILED"


class UnitState(enum.StrEnum):
    PENDING = "PENDING"
    WORKING = "WORKING"
    DONE = "DONE"  # every member of the unit staged and verified
    PROMOTING = "PROMOTING"  # every unit of the archive DONE: an invocation makes this one's members visible
    PROMOTED = "PROMOTED"  # its members are in the landing folder


PLAN_PAGE_FILES = 500  # planned files per plan page: a page stays near 100 KB whatever the listing's length


@dataclass(frozen=True)
class Plan:
    """Where a run's planned files are kept: `pages` documents of up to PLAN_PAGE_FILES each, in listing
    order, written once before the run refers to them (so the run document stays small, however many)."""

    id: str  # of the poll that wrote the pages (a duplicate poll's pages are another plan, never mixed in)
    files: int
    pages: int
    plain: int  # its first files, landed as they are (not archives): read alone, from the first pages


@dataclass(frozen=True)
class PlanPage:
    """One page of a run's plan."""

    run_id: str
    plan: str  # Plan.id
    index: int
    files: tuple[OutputFile, ...]


def new_run_id(now: datetime, new_id: IdFactory) -> str:
    """`<UTC start, to the second>-<random>`: sorts by start; the CLI makes one for a detached submit."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{new_id()}"


HISTORY_KEPT = 64  # entries a document keeps of its history (a run makes a few dozen); older ones dropped
Fact = str | int


class What(enum.StrEnum):
    """The kinds of entry in a history (chain/ledger/history.py: which change of a document notes each)."""

    CHANGED = "changed"  # the run's state moved
    JOB = "job"  # a Fusion job submitted (or taken to re-land)
    ATTEMPT = "attempt"  # a step, a file or a unit failed; it is tried again (or given up)
    REDRIVE = "redrive"  # the sweep re-drove the run
    ALERT = "alert"  # an alert about the run went out
    RERUN = "rerun"  # the run is a rerun of another, or another reruns it
    CLAIM = "claim"  # an invocation took a file or a unit of its members


@dataclass(frozen=True)
class Entry:
    """One event of a history: when, what, by which invocation, and what else there is to know of it."""

    at: datetime
    what: What
    call_id: str | None = None  # the function invocation that made it, when known
    to: RunState | None = None  # CHANGED: the state it moved to
    source: RunState | None = None  # CHANGED: the state it left (None: created)
    facts: dict[str, Fact] = dataclasses.field(default_factory=dict)  # the job id, the file, the alert...


def changed(
    at: datetime, to: RunState, source: RunState | None = None, call_id: str | None = None, **facts: Fact
) -> Entry:
    """A state change's entry: to `to` from `source` (None: created)."""
    return Entry(at, What.CHANGED, call_id, to, source, dict(facts))


@dataclass(frozen=True)
class History:
    """A document's latest entries, oldest first, and how many older ones it dropped to stay bounded."""

    entries: tuple[Entry, ...] = ()
    dropped: int = 0

    def add(self, *entries: Entry) -> History:
        kept = (*self.entries, *entries)
        cut = max(len(kept) - HISTORY_KEPT, 0)
        return History(kept[cut:], self.dropped + cut)

    @property
    def changes(self) -> tuple[Entry, ...]:
        return tuple(entry for entry in self.entries if entry.what is What.CHANGED)

    @property
    def noted(self) -> int:
        """Entries ever added, dropped ones included (a reader that saw `n` of them wants `since(n)`)."""
        return self.dropped + len(self.entries)

    def since(self, noted: int) -> tuple[Entry, ...]:
        """The entries added after the first `noted` (as many as are still kept)."""
        return self.entries[max(noted - self.dropped, 0) :]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True)
class Run:
    run_id: str
    extract: str
    mode: str
    state: RunState
    created_at: datetime
    updated_at: datetime
    next_at: datetime  # when the next step is due; the sweep re-drives runs well past it
    run_at_times: RunAtTimes | None = None  # Fusion's recurrence window, kept for resubmits
    attempt: int = 0  # jobs submitted for this run
    job_id: str | None = None
    job_ids: tuple[str, ...] = ()
    deadline: datetime | None = None  # of the current job
    poll_seq: int = 0
    polls: int = 0  # status checks of the current job
    status: str | None = None  # last Fusion status seen
    status_since: datetime | None = None  # when that status was first seen
    submitted_at: datetime | None = None  # when the current job was submitted
    job_started_at: datetime | None = None  # when the poller first saw the current job past its queue
    reason: str | None = None
    plan: Plan | None = None  # where its planned files are (ledger.planned_files reads them)
    files: tuple[OutputFile, ...] = ()  # the plan itself, in runs planned before plan pages existed
    landed_at: datetime | None = None
    reland: bool = False
    rerun_of: str | None = None
    alerts: tuple[str, ...] = ()  # alert kinds already sent (sent once each)
    failures: int = 0  # invocations in a row that failed transiently (reset by progress)
    problem: str | None = None  # the latest of those failures, for the operator
    redrives: int = 0  # sweeps in a row that had to re-drive the run (reset by progress)
    progress: int = 0  # files landed when the sweep last looked (TRANSFERRING)
    assumed_complete: bool = False  # COMPLETED never confirmed; taken as success after the grace
    parked: bool = False  # poll's next check is longer off than a step: the sweep brings it at next_at
    reruns: tuple[str, ...] = ()  # the runs started as reruns of this one
    history: History = History()  # what happened to it (chain/ledger/history.py)

    def but(self, **changes: Any) -> Run:
        return dataclasses.replace(self, **changes)

    @property
    def file_count(self) -> int:
        """How many files the run planned (none before its job succeeded)."""
        return self.plan.files if self.plan is not None else len(self.files)


@dataclass(frozen=True, slots=True)  # slots: an archive's record may hold 50,000 of these
class Member:
    """An archive's member as its bytes were verified: the same whether just unpacked, staged or landed (a
    file that is not an archive lands as its own member)."""

    path: str  # safe relative path inside the archive
    size: int
    sha256: str  # hex
    rows: int | None = None  # .csv: records minus header; .json {"items": [...]}: items; otherwise None


@dataclass(frozen=True)
class Fetch:
    """A file on its way into the staging area, as a multipart upload that outlives invocations."""

    attempt: int  # the file attempt that started it: its staging folder
    upload_id: str
    offset: int = 0  # bytes copied: every part before this offset is uploaded
    parts: tuple[tuple[int, str], ...] = ()  # (part number, ETag)
    hashing: str = (
        ""  # the SHA-256 state after `offset` bytes, sealed with its checksum (hex of resumable.seal)
    )
    sha256: str | None = None  # once done: the digest of the whole file, verified against the listing
    etag: str | None = None  # once done: the staged copy's ETag; every read of it is conditional on it
    source_etag: str | None = None  # the version of the file the fetch reads (models.SourceVersion):
    source_modified: str | None = None  # a resume in any invocation is conditional on it
    whole: bool = False  # the server ignores Range: one whole read, not stopped by the budget
    tail_start: int | None = None  # where the archive's tail, read first and kept in staging, begins: the
    # fetch takes those bytes from there (layout.staged_tail), so Fusion sends them once

    @property
    def done(self) -> bool:
        return self.sha256 is not None


@dataclass(frozen=True, slots=True)
class StagedMember:
    """A member unpacked into the staging area, with what its upload returned (promotion reuses it)."""

    member: Member
    etag: str
    md5: str | None


M = TypeVar("M", Member, StagedMember)


class MemberLines(Sequence[M]):
    """Members as their record's document keeps them, one line each (codec.py), each read only when it is
    asked for: an archive's record may hold 50,000, and most steps only count them, take a slice of them or
    write them back. The lines were checked when the document was read."""

    __slots__ = ("_read", "lines")
    lines: tuple[str, ...]
    _read: Callable[[str], M]

    def __init__(self, lines: tuple[str, ...], read: Callable[[str], M]) -> None:
        self.lines = lines
        self._read = read

    def __len__(self) -> int:
        return len(self.lines)

    @overload
    def __getitem__(self, index: int) -> M: ...
    @overload
    def __getitem__(self, index: slice) -> MemberLines[M]: ...
    def __getitem__(self, index: int | slice) -> M | MemberLines[M]:
        if isinstance(index, slice):
            return MemberLines(self.lines[index], self._read)
        return self._read(self.lines[index])

    def __iter__(self) -> Iterator[M]:
        return map(self._read, self.lines)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MemberLines):
            return self.lines == other.lines
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(self.lines)

    def __repr__(self) -> str:
        return f"MemberLines({len(self.lines)} members)"


@dataclass(frozen=True)
class DirectorySlice:
    """Where a unit's members sit in its archive's central directory: its invocations read that run of
    records alone (transfer/zipdir.read_slice), and what they read must give the entries the whole directory
    gave when the archive was planned."""

    start: int  # archive offset of the unit's first directory record
    end: int  # just past its last
    bound: int  # its members' bytes end here at the latest (the limit of its last member in the archive)
    digest: str  # SHA-256 of its entries as planned (zipdir.entries_digest), hex


@dataclass(frozen=True)
class KeptMembers:
    """A unit's staged members kept out of its file's record, in an object of the unit's own
    (transfer/kept.py): the record of an archive of 50,000 members stays a few KB that every unit
    rewrites, and each unit reads only its own members. The object is named by the claim that wrote it,
    in the file attempt's staging folder, so an earlier claim's or attempt's is never taken for it."""

    claim: int  # the unit's claim (Unit.claims) that wrote it
    count: int  # members in it
    size: int  # their bytes (what progress reports)
    sha256: str  # of the object's bytes, hex: what is read back must be what was written


@dataclass(frozen=True)
class Unit:
    """A run of consecutive members of one archive, unpacked by one invocation at a time."""

    first: int  # index of its first member in the archive's directory
    count: int
    state: UnitState = UnitState.PENDING
    next_at: datetime | None = None  # PENDING (or DONE, to promote): not before
    claimed_at: datetime | None = None  # WORKING or PROMOTING: since, or since its claim was last renewed
    claims: int = 0  # times an invocation took it up (renewing a claim is not taking it)
    retries: int = 0  # put off by transient failures
    staged: Sequence[StagedMember] = ()  # its first members, done, held here (in records written before
    # `kept`, and in memory between an unpacking and its save)
    kept: KeptMembers | None = None  # where its staged members are (then `staged` is empty)
    metadata: dict[str, Any] | None = None  # Fusion's metadata member, when this unit holds it
    promoted: int = 0  # its first staged members already in the landing folder (a promotion that paused)
    directory: DirectorySlice | None = None  # its run of the central directory (None: read the whole one)

    def but(self, **changes: Any) -> Unit:
        return dataclasses.replace(self, **changes)

    @property
    def staged_count(self) -> int:
        """Its members staged so far, held or kept."""
        return len(self.staged) if self.kept is None else self.kept.count


@dataclass(frozen=True)
class FileRecord:
    run_id: str
    name: str
    state: FileState
    next_at: datetime
    attempts: int = 0  # transfers that failed for a reason of the file's own (transient outages not counted)
    retries: int = 0  # transfers put off by a transient failure
    claimed_at: datetime | None = None
    reason: str | None = None
    sha256: str | None = None  # verified archive digest
    size: int | None = None
    members: Sequence[Member] = ()
    metadata: dict[str, Any] | None = None  # Fusion's metadata member, when this archive carried it
    manifest: dict[str, str] | None = None  # parsed .mf (zip name -> sha256), when this file is the manifest
    fetch: Fetch | None = None
    units: tuple[Unit, ...] = ()
    planned: OutputFile | None = None  # as listed (None in records of runs whose document holds the plan)
    history: History = History()  # its claims and failed attempts (chain/ledger/history.py)

    def but(self, **changes: Any) -> FileRecord:
        return dataclasses.replace(self, **changes)


def as_planned(run: Run, record: FileRecord) -> OutputFile | None:
    """The file as its run planned it: in its record, or in the document of a run planned before pages."""
    if record.planned is not None:
        return record.planned
    return next((planned for planned in run.files if planned.name == record.name), None)


@dataclass(frozen=True)
class Lease:
    """One extract's lease: the run that holds it, and since when."""

    extract: str
    run_id: str
    taken_at: datetime


T = TypeVar("T", Run, FileRecord, Lease, PlanPage)


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A record as read, with the ETag a compare-and-swap write must match."""

    value: T
    etag: str
