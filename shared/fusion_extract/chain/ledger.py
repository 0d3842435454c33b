"""The run ledger: JSON documents in the bucket, changed only by conditional writes. No database.

    <state>/runs/<run_id>.json            one per run: its state, job, plan, attempts (see README: run states)
    <state>/files/<run_id>/<file>.json    one per output file of a run: transfer state, landed members
    <state>/landed/<run_id>/<file>        an empty marker per landed file: one listing tells if a run is done
    <state>/leases/<extract>.json         one per extract while a run of it is active

Every write is create-only (`if-none-match: *`) or compare-and-swap on the ETag read, so a duplicate
delivery or a racing invocation can never move a run backwards: the loser gets ConflictError and
re-reads. Documents are indented JSON so a person (and the operator CLI) can read them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from fusion_extract.clock import isoformat, parse_iso
from fusion_extract.errors import ConflictError, IntegrityError, LeaseHeldError, NotFoundError


class Documents(Protocol):
    def create(self, name: str, doc: dict[str, Any]) -> str: ...
    def read(self, name: str) -> tuple[dict[str, Any], str]: ...
    def replace(self, name: str, doc: dict[str, Any], etag: str) -> str: ...
    def delete(self, name: str, etag: str) -> None: ...
    def list(self, prefix: str) -> Iterator[str]: ...


class RunState(enum.StrEnum):
    SUBMITTING = "SUBMITTING"  # lease taken, job being submitted
    RUNNING = "RUNNING"  # job submitted; poll follows it
    RERUN_PENDING = "RERUN_PENDING"  # job failed; a new job is submitted when next_at comes
    TRANSFERRING = "TRANSFERRING"  # job succeeded; files planned and being landed
    LANDED = "LANDED"  # every file landed, _manifest.json and _SUCCESS written
    FAILED = "FAILED"  # attempts spent or a permanent error; alert sent
    TIMED_OUT = "TIMED_OUT"  # the job passed its deadline; alert sent

    @property
    def final(self) -> bool:
        return self in (RunState.LANDED, RunState.FAILED, RunState.TIMED_OUT)


class FileState(enum.StrEnum):
    PENDING = "PENDING"
    TRANSFERRING = "TRANSFERRING"
    LANDED = "LANDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class PlannedFile:
    name: str
    size: int
    sha256: str | None
    url: str  # where the archive is read from (checked against the URL rules when listed)


@dataclass(frozen=True)
class Run:
    run_id: str
    extract: str
    mode: str
    state: RunState
    created_at: datetime
    updated_at: datetime
    next_at: datetime  # when the next step is due; the sweep re-drives runs well past it
    run_at_times: dict[str, Any] | None = None  # as sent to Fusion, for resubmits
    attempt: int = 0  # jobs submitted for this run
    job_id: str | None = None
    job_ids: tuple[str, ...] = ()
    deadline: datetime | None = None  # of the current job
    poll_seq: int = 0
    polls: int = 0  # status checks of the current job
    status: str | None = None  # last Fusion status seen
    status_since: datetime | None = None  # when that status was first seen
    reason: str | None = None
    files: tuple[PlannedFile, ...] = ()
    landed_at: datetime | None = None
    reland: bool = False
    rerun_of: str | None = None
    alerts: tuple[str, ...] = ()  # alert kinds already sent (sent once each)

    def but(self, **changes: Any) -> Run:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class LandedMember:
    path: str
    size: int
    sha256: str
    rows: int | None = None


@dataclass(frozen=True)
class FileRecord:
    run_id: str
    name: str
    state: FileState
    next_at: datetime
    attempts: int = 0
    claimed_at: datetime | None = None
    reason: str | None = None
    sha256: str | None = None  # verified archive digest
    size: int | None = None
    members: tuple[LandedMember, ...] = ()
    metadata: dict[str, Any] | None = None  # Fusion's metadata member, when this archive carried it
    manifest: dict[str, str] | None = None  # parsed .mf (zip name -> sha256), when this file is the manifest

    def but(self, **changes: Any) -> FileRecord:
        return dataclasses.replace(self, **changes)


T = TypeVar("T", Run, FileRecord)


@dataclass(frozen=True)
class Versioned(Generic[T]):
    value: T
    etag: str


@dataclass(frozen=True)
class Lease:
    extract: str
    run_id: str
    taken_at: datetime


@dataclass
class Ledger:
    docs: Documents
    prefix: str

    # runs
    def create_run(self, run: Run) -> Versioned[Run]:
        return Versioned(run, self.docs.create(self._run_name(run.run_id), _encode(run)))

    def load_run(self, run_id: str) -> Versioned[Run]:
        doc, etag = self.docs.read(self._run_name(run_id))
        return Versioned(_decode(Run, doc), etag)

    def save_run(self, current: Versioned[Run], run: Run) -> Versioned[Run]:
        """Compare-and-swap: ConflictError if the run changed since `current` was read."""
        return Versioned(run, self.docs.replace(self._run_name(run.run_id), _encode(run), current.etag))

    def runs(self) -> Iterator[Versioned[Run]]:
        for name in self.docs.list(f"{self.prefix}/runs/"):
            if name.endswith(".json"):
                doc, etag = self.docs.read(name)
                yield Versioned(_decode(Run, doc), etag)

    # files
    def create_file(self, record: FileRecord) -> Versioned[FileRecord]:
        return Versioned(
            record, self.docs.create(self._file_name(record.run_id, record.name), _encode(record))
        )

    def load_file(self, run_id: str, name: str) -> Versioned[FileRecord]:
        doc, etag = self.docs.read(self._file_name(run_id, name))
        return Versioned(_decode(FileRecord, doc), etag)

    def save_file(self, current: Versioned[FileRecord], record: FileRecord) -> Versioned[FileRecord]:
        name = self._file_name(record.run_id, record.name)
        return Versioned(record, self.docs.replace(name, _encode(record), current.etag))

    def files(self, run_id: str) -> list[Versioned[FileRecord]]:
        found = []
        for name in self.docs.list(f"{self.prefix}/files/{run_id}/"):
            doc, etag = self.docs.read(name)
            found.append(Versioned(_decode(FileRecord, doc), etag))
        return found

    def mark_landed(self, run_id: str, name: str) -> None:
        with contextlib.suppress(ConflictError):  # marked by a duplicate already
            self.docs.create(f"{self.prefix}/landed/{run_id}/{name}", {})

    def landed_count(self, run_id: str) -> int:
        return sum(1 for _ in self.docs.list(f"{self.prefix}/landed/{run_id}/"))

    # leases
    def take_lease(
        self, extract: str, run_id: str, now: datetime, stale_after: timedelta, missing_grace: timedelta
    ) -> None:
        """Take the extract's lease, or take over a stale one; LeaseHeldError while another run holds it.

        A lease is stale when its run is final, when it is older than `stale_after`, or when its run
        document is missing past `missing_grace` (a submit writes the lease just before the run).
        """
        name = self._lease_name(extract)
        lease = {"extract": extract, "run_id": run_id, "taken_at": isoformat(now)}
        try:
            self.docs.create(name, lease)
            return
        except ConflictError:
            pass
        try:
            held, etag = self.docs.read(name)
        except NotFoundError:
            self.docs.create(name, lease)  # released meanwhile; a second loser gets ConflictError
            return
        holder = held.get("run_id")
        if holder == run_id:
            return
        try:
            since = str(held["taken_at"])
            age = now - parse_iso(since)
        except (KeyError, ValueError) as exc:
            raise IntegrityError(f"lease document {name} is malformed: {exc}") from exc
        state = self._run_state(str(holder))
        stale = state == "final" or age >= stale_after or (state == "missing" and age >= missing_grace)
        if not stale:
            raise LeaseHeldError(f"extract {extract!r} is already running (run {holder} since {since})")
        self.docs.replace(name, lease, etag)  # stale: take it over; a racing taker loses with ConflictError

    def release_lease(self, extract: str, run_id: str) -> None:
        name = self._lease_name(extract)
        try:
            held, etag = self.docs.read(name)
        except NotFoundError:
            return
        if held.get("run_id") == run_id:
            # Taken over or released by a duplicate meanwhile: either way no longer ours.
            with contextlib.suppress(ConflictError, NotFoundError):
                self.docs.delete(name, etag)

    def lease_holder(self, extract: str) -> str | None:
        try:
            held, _ = self.docs.read(self._lease_name(extract))
        except NotFoundError:
            return None
        return str(held.get("run_id"))

    def _run_state(self, run_id: str) -> str:
        try:
            return "final" if self.load_run(run_id).value.state.final else "active"
        except NotFoundError:
            return "missing"

    def _run_name(self, run_id: str) -> str:
        return f"{self.prefix}/runs/{run_id}.json"

    def _file_name(self, run_id: str, name: str) -> str:
        return f"{self.prefix}/files/{run_id}/{name}.json"

    def _lease_name(self, extract: str) -> str:
        return f"{self.prefix}/leases/{extract}.json"


# --- (de)serialisation: dataclasses <-> JSON-friendly dicts -------------------------------------------

_NESTED: dict[str, type[Any]] = {"files": PlannedFile, "members": LandedMember}


def _encode(value: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def read_run(doc: dict[str, Any]) -> Run:
    """A run document as stored (for readers of the bucket: the operator CLI, tests)."""
    return _decode(Run, doc)


def _decode(cls: type[T], doc: dict[str, Any]) -> T:
    """Rebuild a ledger document; a document that does not fit is an IntegrityError naming the field."""
    try:
        built: T = _build(cls, doc)
        return built
    except (TypeError, ValueError, KeyError) as exc:
        raise IntegrityError(f"ledger document for {cls.__name__} is malformed: {exc}") from exc


def _build(cls: type[Any], doc: Any) -> Any:
    if not isinstance(doc, dict):
        raise TypeError(f"{cls.__name__} must be a JSON object")
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    return cls(**{name: _typed(name, fields[name], raw) for name, raw in doc.items() if name in fields})


_SCALARS: dict[str, type[Any]] = {"str": str, "int": int, "bool": bool, "float": float}


def _typed(name: str, annotation: str, raw: Any) -> Any:
    """Check one field against its annotation (the few shapes ledger documents use) and convert it."""
    base = annotation.removesuffix(" | None")
    if raw is None:
        if base != annotation:
            return None
        raise TypeError(f"{name} must not be null")
    if base == "datetime":
        return parse_iso(_expect(name, raw, str))
    if base in ("RunState", "FileState"):
        return (RunState if base == "RunState" else FileState)(raw)
    if base.startswith("tuple["):
        items = _expect(name, raw, list)
        if name in _NESTED:
            return tuple(_build(_NESTED[name], item) for item in items)
        return tuple(_typed(name, base[len("tuple[") : -len(", ...]")], item) for item in items)
    if base.startswith("dict["):
        return _expect(name, raw, dict)
    return _expect(name, raw, _SCALARS[base])


def _expect(name: str, raw: Any, kind: type[Any]) -> Any:
    if not isinstance(raw, kind) or (kind is int and isinstance(raw, bool)):
        raise TypeError(f"{name} must be {kind.__name__}, got {type(raw).__name__}")
    return raw
