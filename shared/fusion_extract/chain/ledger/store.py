"""The run ledger: JSON documents in the bucket, changed only by conditional writes. No database.

    <state>/runs/<run_id>.json            one per run: its state, job, plan, attempts, history (history.py)
    <state>/plans/<run_id>/<plan>/<page>.json   its planned files, PLAN_PAGE_FILES a page, written once
    <state>/files/<run_id>/<file>.json    one per output file of a run: transfer state, landed members
    <state>/landed/<run_id>/<file>        an empty marker per landed file: one listing tells if a run is done
    <state>/leases/<extract>.json         one per extract while a run of it is active
    <state>/active/<run_id>               an empty marker per run not yet final: the sweep lists only these
    <state>/index/<newest>~<run_id>~<extract>          an empty marker per run, written when it is created
    <state>/index/<newest>~<run_id>~<extract>~<STATE>  and another when it ends, naming its final state
    <state>/index.built, <state>/active.indexed          the indexes cover runs written before they existed
    <state>/quarantine/...                documents that could not be read, moved aside (and alerted)
    <state>/last-landed/<extract>.json    the extract's latest landed run (a hint for metrics and people)
    <state>/late/<extract>/<scheduled>    an empty marker per scheduled start found late: alerted once

Every write is create-only (`if-none-match: *`) or compare-and-swap on the ETag read (`if-match`), so a
duplicate delivery or a racing invocation can never move a run backwards: the loser gets ConflictError and
re-reads. A write retried after its first attempt took effect (a 503 that was not a failure) meets its own
document: each write carries a tag of its own (`write`), so that is recognised and counts as success, while
another writer of the same content still loses. Documents are indented, key-sorted JSON (codec.py).

The index serves `fusion-extract runs`: `<newest>` is the run's creation time, its digits complemented
(9 - d), so that an ordinary listing, which is in name order, goes from the newest run to the oldest and can
stop as soon as enough runs are found. The names tell the time, extract and final state, so a listing reads
the documents of the runs it shows and of the runs still active, never the whole history.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from fusion_extract import logging as jsonlog
from fusion_extract.chain.ledger.codec import (
    Doc,
    file_from_doc,
    file_to_doc,
    lease_from_doc,
    lease_to_doc,
    page_from_doc,
    page_to_doc,
    run_from_doc,
    run_to_doc,
)
from fusion_extract.chain.ledger.history import noted_file, noted_run
from fusion_extract.chain.ledger.machine import FILE, RUN, UNIT
from fusion_extract.chain.ledger.records import (
    PLAN_PAGE_FILES,
    FileRecord,
    Lease,
    Plan,
    PlanPage,
    Run,
    RunState,
    Versioned,
)
from fusion_extract.clock import Clock, SystemClock, isoformat, new_id, parse_iso
from fusion_extract.errors import ConflictError, IntegrityError, LeaseHeldError, NotFoundError
from fusion_extract.models import OutputFile
from fusion_extract.ports import ObjectStore

JSON = "application/json"
SEP = "~"  # in index names: neither run ids nor extract names may hold it
ENDINGS = {state.value: state for state in RunState if state.final}
R = TypeVar("R", Run, FileRecord, Lease, PlanPage)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unreadable:
    """A run document that could not be read: where it was, and why (and whose, when the index says)."""

    name: str
    problem: str
    run_id: str | None = None
    extract: str | None = None

    @property
    def about(self) -> dict[str, str]:
        """The run and extract it belonged to, as far as they are known (an alert's title names them)."""
        known = {"run_id": self.run_id, "extract": self.extract}
        return {key: value for key, value in known.items() if value is not None}


@dataclass(frozen=True)
class Indexed:
    """A run as its index markers tell it, without reading its document."""

    run_id: str
    extract: str
    ended: RunState | None  # its final state, once it ended


class Ledger:
    def __init__(
        self,
        store: ObjectStore,
        prefix: str,
        new_write: Callable[[], str] = new_id,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self._new_write = new_write
        self.clock = clock or SystemClock()  # the time of each history entry

    # runs
    def create_run(self, run: Run) -> Versioned[Run]:
        self._mark_active(run.run_id)  # first: an active run is never missing from the index
        self._mark(self._index_name(run))  # nor a run from the listing (a marker without its run is skipped)
        run = noted_run(None, run, self.clock.now(), _call_id())
        return Versioned(run, self._create(self._run_name(run.run_id), run_to_doc(run)))

    def load_run(self, run_id: str) -> Versioned[Run]:
        return self._read(self._run_name(run_id), run_from_doc)

    def save_run(self, current: Versioned[Run], run: Run) -> Versioned[Run]:
        """Compare-and-swap: ConflictError if the run changed since `current` was read; IllegalMove (before
        any write) if its state changed in a way the run machine does not have. What the save changes is
        noted in the run's history, in this same write (history.py)."""
        RUN.check(current.value.state, run.state)
        run = noted_run(current.value, run, self.clock.now(), _call_id())
        saved = Versioned(run, self._replace(self._run_name(run.run_id), run_to_doc(run), current.etag))
        if run.state.final:
            self._mark(self._index_name(run, ended=run.state))
            self.store.delete(self._active_name(run.run_id))
        return saved

    def runs(self) -> Iterator[Versioned[Run]]:
        """Every run ever recorded, each document read (operators list `recent_runs`; the sweep reads
        `active_runs`)."""
        for info in self.store.list(f"{self.prefix}/runs/"):
            if info.name.endswith(".json"):
                yield self._read(info.name, run_from_doc)

    def recent_runs(
        self,
        *,
        extract: str | None = None,
        states: Collection[RunState] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[Versioned[Run] | Unreadable]:
        """Runs newest first, created in [since, until], of `extract` and in one of `states` (if given).

        Lazy, from the index: the filters are applied to the markers' names, so a document is read only
        for a run that passes them, or that is still active (its state is in its document alone). A run
        document that cannot be read is yielded as Unreadable, for the caller to set aside; the rest go on.
        """
        self._index_history_once()
        root = f"{self.prefix}/index/"
        start = None if until is None else root + _newest_first(until)
        oldest = None if since is None else _newest_first(since)
        names = (info.name.removeprefix(root) for info in self.store.list(root, start=start))
        for _, group in itertools.groupby(names, key=lambda name: name.split(SEP, 2)[:2]):
            markers = list(group)
            if oldest is not None and markers[0].split(SEP, 1)[0] > oldest:
                return  # created before `since`, and so is every run after it
            found = _indexed(markers)
            if found is None or extract not in (None, found.extract):
                continue
            if found.ended is not None and states and found.ended not in states:
                continue
            try:
                current = self.load_run(found.run_id)
            except NotFoundError:
                continue  # created meanwhile, quarantined, or past the ledger's retention
            except IntegrityError as exc:
                yield Unreadable(self._run_name(found.run_id), str(exc), found.run_id, found.extract)
                continue
            run = current.value
            if found.ended is None and run.state.final:
                self._mark(self._index_name(run, ended=run.state))  # its end was not indexed: now it is
            if not states or run.state in states:
                yield current

    def active_runs(self) -> Iterator[Versioned[Run] | Unreadable]:
        """Every run not yet final, from the index: the cost follows the active runs, not the history.

        A run document that cannot be read is yielded as Unreadable, so one bad document never stops the
        others. Markers left by a run that went final meanwhile are cleared as they are met.
        """
        self._index_once()
        for info in self.store.list(f"{self.prefix}/active/"):
            run_id = info.name.rsplit("/", 1)[-1]
            try:
                current = self.load_run(run_id)
            except NotFoundError:
                continue  # a submit between its marker and its run document, or a quarantined run
            except IntegrityError as exc:
                yield Unreadable(self._run_name(run_id), str(exc), run_id)
                continue
            if current.value.state.final:
                self.store.delete(info.name)
                continue
            yield current

    def quarantine(self, name: str) -> str:
        """Move an unreadable document aside (kept for a person to read), so it stops blocking anything."""
        data, etag = self.store.get_bytes(name)
        moved = f"{self.prefix}/quarantine/{name.removeprefix(self.prefix + '/')}"
        self.store.put_bytes(moved, data)
        self.store.delete(name, if_match=etag)
        run_id = name.rsplit("/", 1)[-1].removesuffix(".json")
        self.store.delete(self._active_name(run_id))
        log.warning("ledger document quarantined", extra={"document": name, "moved_to": moved})
        return moved

    # the plan
    def save_plan(self, run_id: str, plain: Sequence[OutputFile], archives: Sequence[OutputFile]) -> Plan:
        """Write a run's planned files in pages of PLAN_PAGE_FILES, each once, before the run names them (a
        run saved with the Plan returned): the files landed as they are first, then the archives."""
        files = (*plain, *archives)
        plan = Plan(self._new_write(), len(files), -(-len(files) // PLAN_PAGE_FILES), len(plain))
        for index in range(plan.pages):
            page = PlanPage(
                run_id, plan.id, index, files[index * PLAN_PAGE_FILES : (index + 1) * PLAN_PAGE_FILES]
            )
            self._create(self._page_name(run_id, plan, index), page_to_doc(page))
        return plan

    def planned_files(self, run: Run) -> list[OutputFile]:
        """The run's planned files, those landed as they are first: from its plan pages, or from its document
        for a run planned before plan pages existed."""
        return list(run.files) if run.plan is None else self._planned(run, run.plan, run.plan.files)

    def plain_files(self, run: Run) -> list[OutputFile]:
        """The run's files landed as they are, from the pages that hold them alone (an archive's members are
        checked against them); for a run planned in its document, every file (the caller tells them apart)."""
        return list(run.files) if run.plan is None else self._planned(run, run.plan, run.plan.plain)

    def _planned(self, run: Run, plan: Plan, count: int) -> list[OutputFile]:
        """The plan's first `count` files, reading only the pages that hold them; IntegrityError if a page
        does not belong where it is, or the pages hold another count than the plan says."""
        files: list[OutputFile] = []
        for index in range(plan.pages):
            if len(files) >= count:
                break
            name = self._page_name(run.run_id, plan, index)
            page = self._read(name, page_from_doc).value
            if (page.run_id, page.plan, page.index) != (run.run_id, plan.id, index):
                raise IntegrityError(f"ledger document {name} is a page of another plan")
            files.extend(page.files)
        if len(files) < count or (count == plan.files and len(files) != count):
            raise IntegrityError(
                f"run {run.run_id}: its plan pages hold {len(files)} files, not {plan.files}"
            )
        return files[:count]

    # files
    def create_file(self, record: FileRecord) -> Versioned[FileRecord]:
        name = self._file_name(record.run_id, record.name)
        return Versioned(record, self._create(name, file_to_doc(record)))

    def load_file(self, run_id: str, name: str) -> Versioned[FileRecord]:
        return self._read(self._file_name(run_id, name), file_from_doc)

    def save_file(self, current: Versioned[FileRecord], record: FileRecord) -> Versioned[FileRecord]:
        """Compare-and-swap, as save_run; the file's and each of its units' state moves are checked."""
        FILE.check(current.value.state, record.state)
        for before, after in zip(current.value.units, record.units, strict=False):
            if before.first == after.first:  # the same unit (a file started over plans its units anew)
                UNIT.check(before.state, after.state)
        record = noted_file(current.value, record, self.clock.now(), _call_id())
        name = self._file_name(record.run_id, record.name)
        return Versioned(record, self._replace(name, file_to_doc(record), current.etag))

    def files(self, run_id: str) -> list[Versioned[FileRecord]]:
        return [
            self._read(info.name, file_from_doc) for info in self.store.list(f"{self.prefix}/files/{run_id}/")
        ]

    def mark_landed(self, run_id: str, name: str) -> None:
        with contextlib.suppress(ConflictError):  # marked by a duplicate already
            self.store.put_bytes(f"{self.prefix}/landed/{run_id}/{name}", b"", if_none_match=True)

    def landed_count(self, run_id: str) -> int:
        return sum(1 for _ in self.store.list(f"{self.prefix}/landed/{run_id}/"))

    # leases
    def take_lease(
        self, extract: str, run_id: str, now: datetime, stale_after: timedelta, missing_grace: timedelta
    ) -> None:
        """Take the extract's lease, or take over a stale one; LeaseHeldError while another run holds it.

        A lease is stale when its run is final, when it is older than `stale_after`, or when its run
        document is missing past `missing_grace` (a submit writes the lease just before the run).
        """
        name = self._lease_name(extract)
        lease = lease_to_doc(Lease(extract, run_id, now))
        try:
            self._create(name, lease)
            return
        except ConflictError:
            pass
        try:
            held = self._read(name, lease_from_doc)
        except NotFoundError:
            self._create(name, lease)  # released meanwhile; a second loser gets ConflictError
            return
        except IntegrityError as exc:
            # A lease nobody can read protects nothing; left alone it would refuse every later run.
            log.warning("unreadable lease replaced", extra={"lease": name, "problem": str(exc)})
            self._replace(name, lease, self.store.get_bytes(name)[1])
            return
        holder = held.value
        if holder.run_id == run_id:
            return
        age = now - holder.taken_at
        state = self._run_state(holder.run_id)
        stale = state == "final" or age >= stale_after or (state == "missing" and age >= missing_grace)
        if not stale:
            since = holder.taken_at.isoformat()
            raise LeaseHeldError(
                f"extract {extract!r} is already running (run {holder.run_id} since {since})"
            )
        self._replace(name, lease, held.etag)  # stale: take it over; a racing taker loses with ConflictError

    def release_lease(self, extract: str, run_id: str) -> None:
        name = self._lease_name(extract)
        try:
            held = self._read(name, lease_from_doc)
        except (NotFoundError, IntegrityError):
            return  # nothing of ours to release (an unreadable lease is replaced by the next taker)
        if held.value.run_id == run_id:
            # Taken over or released by a duplicate meanwhile: either way no longer ours.
            with contextlib.suppress(ConflictError, NotFoundError):
                self.store.delete(name, if_match=held.etag)

    # the latest landing of each extract (Monitoring's HoursSinceLanded; the CLI)
    def note_landed(self, extract: str, run_id: str, landed_at: datetime) -> None:
        """Remember the extract's latest landed run (last writer wins: it is a hint, not a record)."""
        doc = {"v": 1, "extract": extract, "run_id": run_id, "landed_at": isoformat(landed_at)}
        self.store.put_bytes(f"{self.prefix}/last-landed/{extract}.json", encode(doc), content_type=JSON)

    def last_landed(self, extract: str) -> datetime | None:
        try:
            data, _ = self.store.get_bytes(f"{self.prefix}/last-landed/{extract}.json")
            return parse_iso(str(json.loads(data)["landed_at"]))
        except (NotFoundError, ValueError, KeyError, TypeError):
            return None

    def watched_since(self, extract: str, now: datetime) -> datetime:
        """When the sweep first watched an extract that has not landed yet (noted now, if never): its
        HoursSinceLanded counts from there, so an extract that never lands is still overdue in time."""
        name = f"{self.prefix}/watched/{extract}.json"
        etag = None  # of an unreadable note, replaced below (kept, it would count from now every sweep)
        try:
            data, etag = self.store.get_bytes(name)
            return parse_iso(str(json.loads(data)["since"]))
        except NotFoundError:
            pass
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable watch note replaced", extra={"document": name})
        note = encode({"v": 1, "extract": extract, "since": isoformat(now)})
        with contextlib.suppress(ConflictError):  # another sweep noted it first: a minute apart at most
            if etag is None:
                self.store.put_bytes(name, note, if_none_match=True, content_type=JSON)
            else:
                self.store.put_bytes(name, note, if_match=etag, content_type=JSON)
        return now

    def last_landing(self, extract: str) -> tuple[datetime | None, str | None]:
        """The extract's latest landing and its run id (None, None when none is noted)."""
        try:
            data, _ = self.store.get_bytes(f"{self.prefix}/last-landed/{extract}.json")
            doc = json.loads(data)
            return parse_iso(str(doc["landed_at"])), str(doc["run_id"])
        except (NotFoundError, ValueError, KeyError, TypeError):
            return None, None

    def first_watched(self, extract: str) -> datetime | None:
        """When the sweep first watched an extract that never landed, without noting anything."""
        try:
            data, _ = self.store.get_bytes(f"{self.prefix}/watched/{extract}.json")
            return parse_iso(str(json.loads(data)["since"]))
        except (NotFoundError, ValueError, KeyError, TypeError):
            return None

    def runs_of(self, extract: str) -> Iterator[Versioned[Run]]:
        """Every run of one extract (`history`); the index of runs by extract serves this once it lands."""
        return (current for current in self.runs() if current.value.extract == extract)

    def note_late(self, extract: str, scheduled: datetime) -> bool:
        """Mark the scheduled start of `extract` as found late; True only for the first to mark it (who
        alerts), so each expected landing is alerted once whatever the sweeps' overlap."""
        name = f"{self.prefix}/late/{extract}/{scheduled.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        try:
            self.store.put_bytes(name, b"", if_none_match=True)
        except ConflictError:
            return False
        return True

    def lease_holder(self, extract: str) -> str | None:
        try:
            return self._read(self._lease_name(extract), lease_from_doc).value.run_id
        except (NotFoundError, IntegrityError):
            return None

    def _run_state(self, run_id: str) -> str:
        try:
            return "final" if self.load_run(run_id).value.state.final else "active"
        except NotFoundError:
            return "missing"

    # the indexes: active runs (the sweep), every run by time (the CLI)
    def _mark_active(self, run_id: str) -> None:
        self._mark(self._active_name(run_id))

    def _mark(self, name: str) -> None:
        with contextlib.suppress(ConflictError):  # marked already (a duplicate, or a retried write)
            self.store.put_bytes(name, b"", if_none_match=True)

    def _index_history_once(self) -> None:
        """Ledgers written before the index of every run existed: index their runs once."""
        done = f"{self.prefix}/index.built"
        if self.store.head(done) is not None:
            return
        for info in self.store.list(f"{self.prefix}/runs/"):
            try:
                run = self._read(info.name, run_from_doc).value
            except (NotFoundError, IntegrityError):
                continue  # the sweep quarantines it if it is active; else nobody could list it anyway
            self._mark(self._index_name(run))
            if run.state.final:
                self._mark(self._index_name(run, ended=run.state))
        self._mark(done)

    def _index_once(self) -> None:
        """Ledgers written before the index existed: index their active runs once."""
        done = f"{self.prefix}/active.indexed"
        if self.store.head(done) is not None:
            return
        for info in self.store.list(f"{self.prefix}/runs/"):
            run_id = info.name.rsplit("/", 1)[-1].removesuffix(".json")
            try:
                final = self.load_run(run_id).value.state.final
            except (NotFoundError, IntegrityError):
                final = False  # let the sweep meet it, and quarantine it if it cannot be read
            if not final:
                self._mark_active(run_id)
        with contextlib.suppress(ConflictError):
            self.store.put_bytes(done, b"", if_none_match=True)

    # documents
    def _create(self, name: str, doc: Doc) -> str:
        """Write a new document; ConflictError if another exists already. Returns its ETag."""
        data = encode(doc, write=self._new_write())
        try:
            return self.store.put_bytes(name, data, if_none_match=True, content_type=JSON)
        except ConflictError:
            return self._own_write(name, data)

    def _replace(self, name: str, doc: Doc, etag: str) -> str:
        """Overwrite the version read as `etag`; ConflictError if it changed since. Returns the new ETag."""
        data = encode(doc, write=self._new_write())
        try:
            return self.store.put_bytes(name, data, if_match=etag, content_type=JSON)
        except ConflictError:
            return self._own_write(name, data)

    def _own_write(self, name: str, data: bytes) -> str:
        """After a conflict: the ETag if the document now holds exactly `data` (our own write took effect
        before the answer was lost); else the conflict stands."""
        try:
            stored, etag = self.store.get_bytes(name)
        except NotFoundError:
            raise ConflictError(f"{name} changed meanwhile") from None
        if stored != data:
            raise ConflictError(f"{name} changed meanwhile")
        return etag

    def _read(self, name: str, decode: Callable[[Any, str], R]) -> Versioned[R]:
        """The record and its ETag; NotFoundError if absent, IntegrityError if it does not decode."""
        data, etag = self.store.get_bytes(name)
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise IntegrityError(f"ledger document {name} is not valid JSON: {exc}") from None
        return Versioned(decode(doc, f"ledger document {name}"), etag)

    def _run_name(self, run_id: str) -> str:
        return f"{self.prefix}/runs/{run_id}.json"

    def _file_name(self, run_id: str, name: str) -> str:
        return f"{self.prefix}/files/{run_id}/{name}.json"

    def _page_name(self, run_id: str, plan: Plan, index: int) -> str:
        return f"{self.prefix}/plans/{run_id}/{plan.id}/{index:05d}.json"

    def _lease_name(self, extract: str) -> str:
        return f"{self.prefix}/leases/{extract}.json"

    def _active_name(self, run_id: str) -> str:
        return f"{self.prefix}/active/{run_id}"

    def _index_name(self, run: Run, ended: RunState | None = None) -> str:
        name = f"{self.prefix}/index/{_newest_first(run.created_at)}{SEP}{run.run_id}{SEP}{run.extract}"
        return name if ended is None else f"{name}{SEP}{ended.value}"


def _newest_first(moment: datetime) -> str:
    """The moment to the microsecond, each digit complemented: later moments sort first."""
    digits = f"{moment.astimezone(UTC):%Y%m%d%H%M%S%f}"
    return "".join(str(9 - int(digit)) for digit in digits)


def _indexed(markers: list[str]) -> Indexed | None:
    """One run from its markers (`<newest>~<run_id>~<extract>`, and `...~<STATE>` once it ended)."""
    ended: RunState | None = None
    for marker in markers:
        parts = marker.split(SEP)
        if len(parts) == 4 and parts[3] in ENDINGS:
            ended = ENDINGS[parts[3]]
    parts = markers[0].split(SEP)
    return None if len(parts) < 3 else Indexed(parts[1], parts[2], ended)


def encode(doc: Doc, *, write: str | None = None) -> bytes:
    """Indented, key-sorted JSON; `write` tags this one write, so that two writers of the same content stay
    two writers (only a retry of the very same write finds its own bytes)."""
    tagged = doc if write is None else {**doc, "write": write}
    return (json.dumps(tagged, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _call_id() -> str | None:
    """The function invocation at work (fdk's call id, bound to its log lines), if any."""
    call_id = jsonlog.bound().get("call_id")
    return str(call_id) if call_id else None
