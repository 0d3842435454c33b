"""The run ledger: JSON documents in the bucket, changed only by conditional writes. No database.

    <state>/runs/<run_id>.json            one per run: its state, job, plan, attempts (see README: run states)
    <state>/files/<run_id>/<file>.json    one per output file of a run: transfer state, landed members
    <state>/landed/<run_id>/<file>        an empty marker per landed file: one listing tells if a run is done
    <state>/leases/<extract>.json         one per extract while a run of it is active

Every write is create-only (`if-none-match: *`) or compare-and-swap on the ETag read (`if-match`), so a
duplicate delivery or a racing invocation can never move a run backwards: the loser gets ConflictError and
re-reads. A retried write whose first attempt landed also reports ConflictError; re-reading shows the
caller its own write. Documents are indented, key-sorted JSON (codec.py) so a person can read them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

from fusion_extract.chain.codec import (
    Doc,
    file_from_doc,
    file_to_doc,
    lease_from_doc,
    lease_to_doc,
    run_from_doc,
    run_to_doc,
)
from fusion_extract.chain.records import FileRecord, Lease, Run, Versioned
from fusion_extract.errors import ConflictError, IntegrityError, LeaseHeldError, NotFoundError
from fusion_extract.ports import ObjectStore

JSON = "application/json"
R = TypeVar("R", Run, FileRecord, Lease)


class Ledger:
    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    # runs
    def create_run(self, run: Run) -> Versioned[Run]:
        return Versioned(run, self._create(self._run_name(run.run_id), run_to_doc(run)))

    def load_run(self, run_id: str) -> Versioned[Run]:
        return self._read(self._run_name(run_id), run_from_doc)

    def save_run(self, current: Versioned[Run], run: Run) -> Versioned[Run]:
        """Compare-and-swap: ConflictError if the run changed since `current` was read."""
        return Versioned(run, self._replace(self._run_name(run.run_id), run_to_doc(run), current.etag))

    def runs(self) -> Iterator[Versioned[Run]]:
        for info in self.store.list(f"{self.prefix}/runs/"):
            if info.name.endswith(".json"):
                yield self._read(info.name, run_from_doc)

    # files
    def create_file(self, record: FileRecord) -> Versioned[FileRecord]:
        name = self._file_name(record.run_id, record.name)
        return Versioned(record, self._create(name, file_to_doc(record)))

    def load_file(self, run_id: str, name: str) -> Versioned[FileRecord]:
        return self._read(self._file_name(run_id, name), file_from_doc)

    def save_file(self, current: Versioned[FileRecord], record: FileRecord) -> Versioned[FileRecord]:
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
        except NotFoundError:
            return
        if held.value.run_id == run_id:
            # Taken over or released by a duplicate meanwhile: either way no longer ours.
            with contextlib.suppress(ConflictError, NotFoundError):
                self.store.delete(name, if_match=held.etag)

    def lease_holder(self, extract: str) -> str | None:
        try:
            return self._read(self._lease_name(extract), lease_from_doc).value.run_id
        except NotFoundError:
            return None

    def _run_state(self, run_id: str) -> str:
        try:
            return "final" if self.load_run(run_id).value.state.final else "active"
        except NotFoundError:
            return "missing"

    # documents
    def _create(self, name: str, doc: Doc) -> str:
        """Write a new document; ConflictError if one exists already. Returns its ETag."""
        return self.store.put_bytes(name, encode(doc), if_none_match=True, content_type=JSON)

    def _replace(self, name: str, doc: Doc, etag: str) -> str:
        """Overwrite the version read as `etag`; ConflictError if it changed since. Returns the new ETag."""
        return self.store.put_bytes(name, encode(doc), if_match=etag, content_type=JSON)

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

    def _lease_name(self, extract: str) -> str:
        return f"{self.prefix}/leases/{extract}.json"


def encode(doc: Doc) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def read_run(data: bytes) -> Run:
    """A run document as stored (for readers of the bucket: the operator CLI, tests)."""
    return run_from_doc(json.loads(data))
