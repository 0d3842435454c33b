"""The run ledger: JSON documents in the bucket, changed only by conditional writes, and the extract lease."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, cast

import pytest

from fusion_extract import logging as jsonlog
from fusion_extract.chain.ledger.codec import run_to_doc
from fusion_extract.chain.ledger.machine import IllegalMove
from fusion_extract.chain.ledger.records import (
    HISTORY_KEPT,
    Fetch,
    FileRecord,
    FileState,
    History,
    Run,
    RunState,
    Versioned,
    changed,
)
from fusion_extract.chain.ledger.store import Ledger, Unreadable, encode
from fusion_extract.errors import ConflictError, IntegrityError, LeaseHeldError
from fusion_extract.models import OutputFile, RunAtTimes
from fusion_extract.ports import ObjectStore
from tests.clocks import EPOCH
from tests.emulators.oci.direct import SeedBucket
from tests.steps.conftest import BUCKET, EXTRACT, Steps

LEASE = timedelta(hours=12)
GRACE = timedelta(minutes=15)  # a missing holder run counts only after this


def a_run(run_id: str = "r1", state: RunState = RunState.RUNNING, extract: str = EXTRACT) -> Run:
    return Run(run_id, extract, "full", state, created_at=EPOCH, updated_at=EPOCH, next_at=EPOCH, attempt=1)


def race(*writers: Callable[[], object]) -> list[object]:
    """Run the writers at the same moment, one thread each; each result is a value or the exception raised."""
    start = threading.Barrier(len(writers))
    results: list[object] = [None] * len(writers)

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = writers[index]()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


# -- runs: create, read, compare-and-swap ---------------------------------------------------------------


def test_ledger_created_run_reads_back_equal_with_its_etag(ledger_steps: Steps) -> None:
    # Given an empty ledger
    ledger = ledger_steps.deps.ledger
    run = a_run().but(
        job_id="44046",
        job_ids=("44046",),
        alerts=("needs_human",),
        run_at_times=RunAtTimes(1, "HOUR", date(2026, 3, 1), date(2026, 3, 2), "0800", "0900"),
    )

    # When a run is created and read back
    created = ledger.create_run(run)
    loaded = ledger.load_run(run.run_id)

    # Then it reads back field for field, with the ETag the create returned and its creation in its history
    assert loaded.value == created.value == run.but(history=created.value.history)
    assert [entry.what.value for entry in created.value.history] == ["changed", "job", "alert"]
    assert created.value.history.entries[0] == changed(EPOCH, RunState.RUNNING)
    assert loaded.etag == created.etag
    assert ledger_steps.objects("_state/runs/") == ["_state/runs/r1.json"]


def test_ledger_create_of_an_existing_run_raises_conflict_and_keeps_the_first(ledger_steps: Steps) -> None:
    # Given a run in the ledger
    ledger = ledger_steps.deps.ledger
    ledger.create_run(a_run())

    # When another create of the same run id happens (a duplicate delivery), Then it loses
    with pytest.raises(ConflictError):
        ledger.create_run(a_run(state=RunState.SUBMITTING))

    # And the first version stays
    assert ledger.load_run("r1").value.state is RunState.RUNNING


def test_ledger_save_with_a_stale_etag_raises_conflict_and_keeps_the_newer_run(ledger_steps: Steps) -> None:
    # Given a run read by two invocations, and the first one saved a change
    ledger = ledger_steps.deps.ledger
    ledger.create_run(a_run())
    first, second = ledger.load_run("r1"), ledger.load_run("r1")
    saved = ledger.save_run(first, first.value.but(state=RunState.TRANSFERRING))

    # When the second saves over the version it read, Then it loses
    with pytest.raises(ConflictError):
        ledger.save_run(second, second.value.but(state=RunState.RERUN_PENDING))

    # And the first one's change stays, under a new ETag
    loaded = ledger.load_run("r1")
    assert loaded.value.state is RunState.TRANSFERRING
    assert loaded.etag == saved.etag != first.etag


def test_ledger_two_writers_racing_on_one_run_exactly_one_wins(ledger_steps: Steps) -> None:
    # Given two function containers (their own clients) that read the same version of a run
    ledgers = [ledger_steps.container().ledger, ledger_steps.container().ledger]
    ledgers[0].create_run(a_run())
    for round_ in range(5):
        read = [ledger.load_run("r1") for ledger in ledgers]
        changes = [read[i].value.but(polls=round_ * 10 + i + 1) for i in range(2)]

        # When both save their change at the same moment
        results = race(*(partial(ledgers[i].save_run, read[i], changes[i]) for i in range(2)))

        # Then exactly one wins, the other gets ConflictError, and the ledger holds the winner's change
        winners = [i for i, result in enumerate(results) if not isinstance(result, Exception)]
        assert len(winners) == 1, results
        assert isinstance(results[1 - winners[0]], ConflictError)
        assert ledgers[0].load_run("r1").value == changes[winners[0]]


def test_ledger_records_each_state_change_of_a_run_with_its_time_and_call(ledger_steps: Steps) -> None:
    # Given a run created by an invocation
    ledger = ledger_steps.deps.ledger
    with jsonlog.bind(call_id="call-1"):
        current = ledger.create_run(a_run(state=RunState.SUBMITTING))

    # When another invocation saves it twice: once without a state change, then moving it on
    later = EPOCH + timedelta(minutes=3)
    with jsonlog.bind(call_id="call-2"):
        current = ledger.save_run(
            current, current.value.but(polls=1, updated_at=EPOCH + timedelta(minutes=1))
        )
        ledger.save_run(current, current.value.but(state=RunState.RUNNING, updated_at=later))

    # Then its document lists its creation and the one move, each at the time it was saved, by its call
    assert ledger.load_run("r1").value.history.entries == (
        changed(EPOCH, RunState.SUBMITTING, None, "call-1"),
        changed(later, RunState.RUNNING, RunState.SUBMITTING, "call-2"),
    )


def test_ledger_keeps_a_bounded_history_of_the_latest_changes(ledger_steps: Steps) -> None:
    # Given a run whose job fails and is rerun again and again (three moves a round)
    ledger = ledger_steps.deps.ledger
    current = ledger.create_run(a_run())
    rounds = HISTORY_KEPT
    for n in range(rounds):
        for state in (RunState.RERUN_PENDING, RunState.SUBMITTING, RunState.RUNNING):
            at = EPOCH + timedelta(minutes=n)
            current = ledger.save_run(current, current.value.but(state=state, updated_at=at))

    # Then its document keeps the latest HISTORY_KEPT changes, the last one the latest move
    history = ledger.load_run("r1").value.history
    assert len(history) == HISTORY_KEPT < 1 + 3 * rounds
    assert history.entries[-1] == changed(
        EPOCH + timedelta(minutes=rounds - 1), RunState.RUNNING, RunState.SUBMITTING
    )
    # And it counts the older ones it dropped
    assert history.dropped == 1 + 3 * rounds - HISTORY_KEPT


def test_ledger_reads_a_run_document_written_before_runs_kept_a_history(ledger_steps: Steps) -> None:
    # Given a run document as an earlier release wrote it: no history field
    ledger = ledger_steps.deps.ledger
    doc = run_to_doc(a_run())
    del doc["history"]
    ledger.store.put_bytes("_state/runs/r1.json", json.dumps(doc).encode())

    # When it is read and moved on, Then it reads with an empty history, and the move starts one
    current = ledger.load_run("r1")
    assert current.value.history == History()
    moved = ledger.save_run(current, current.value.but(state=RunState.TRANSFERRING))
    assert moved.value.history.entries == (changed(EPOCH, RunState.TRANSFERRING, RunState.RUNNING),)


def test_ledger_runs_lists_every_run(ledger_steps: Steps) -> None:
    # Given three runs
    ledger = ledger_steps.deps.ledger
    for run_id in ("r1", "r2", "r3"):
        ledger.create_run(a_run(run_id))

    # When the ledger is scanned (as the sweep does), Then it yields each once
    assert sorted(current.value.run_id for current in ledger.runs()) == ["r1", "r2", "r3"]


def test_ledger_file_records_read_back_and_compare_and_swap(ledger_steps: Steps) -> None:
    # Given a planned file
    ledger = ledger_steps.deps.ledger
    record = FileRecord("r1", "a_1.zip", FileState.PENDING, next_at=EPOCH)
    created = ledger.create_file(record)

    # When one invocation claims it and a second tries with the version it read before
    claimed = ledger.save_file(
        created, record.but(state=FileState.TRANSFERRING, attempts=1, claimed_at=EPOCH)
    )
    with pytest.raises(ConflictError):
        ledger.save_file(created, record.but(state=FileState.TRANSFERRING, attempts=1))

    # Then the first claim stands
    assert ledger.files("r1") == [claimed]


def test_ledger_file_record_keeps_every_field_of_a_fetch_under_way(ledger_steps: Steps) -> None:
    # Given a fetch part-way, pinned to its source's version, in the whole-read mode, its staged ETag known,
    # the archive's tail kept in staging
    fetch = Fetch(
        attempt=2,
        upload_id="upload-1",
        offset=3 * 2**20,
        parts=((1, "p1"), (2, "p2"), (3, "p3")),
        hashing="ab" * 144,
        sha256=None,
        etag='"staged-etag"',
        source_etag='"source-etag"',
        source_modified="Sun, 01 Mar 2026 08:00:05 GMT",
        whole=True,
        tail_start=5 * 2**20,
    )
    record = FileRecord("r1", "a_1.zip", FileState.TRANSFERRING, next_at=EPOCH, fetch=fetch)

    # When it is saved and read back, Then nothing of it is lost
    ledger = ledger_steps.deps.ledger
    ledger.create_file(record)
    assert ledger.load_file("r1", "a_1.zip").value.fetch == fetch


# -- the extract lease ----------------------------------------------------------------------------------


def test_ledger_lease_held_by_an_active_run_refuses_a_second_taker_naming_the_holder(
    ledger_steps: Steps,
) -> None:
    # Given run r1 of Sales running and holding the lease
    ledger = ledger_steps.deps.ledger
    ledger.create_run(a_run("r1"))
    ledger.take_lease(EXTRACT, "r1", EPOCH, LEASE, GRACE)

    # When run r2 of Sales asks for it an hour later, Then it is refused, naming the holder
    with pytest.raises(LeaseHeldError, match=r"Sales.*run r1"):
        ledger.take_lease(EXTRACT, "r2", EPOCH + timedelta(hours=1), LEASE, GRACE)

    # And the holder keeps it
    assert ledger.lease_holder(EXTRACT) == "r1"


def test_ledger_lease_taken_again_by_its_holder_is_kept(ledger_steps: Steps) -> None:
    # Given r1 holding the lease
    ledger = ledger_steps.deps.ledger
    ledger.create_run(a_run("r1"))
    ledger.take_lease(EXTRACT, "r1", EPOCH, LEASE, GRACE)

    # When r1 takes it again (a duplicate delivery), Then nothing changes
    ledger.take_lease(EXTRACT, "r1", EPOCH + timedelta(minutes=1), LEASE, GRACE)
    assert ledger.lease_holder(EXTRACT) == "r1"


def test_ledger_lease_older_than_lease_seconds_is_taken_over(ledger_steps: Steps) -> None:
    # Given r1 still RUNNING in the ledger, holding the lease since EPOCH
    ledger = ledger_steps.deps.ledger
    ledger.create_run(a_run("r1"))
    ledger.take_lease(EXTRACT, "r1", EPOCH, LEASE, GRACE)

    # When r2 asks once the lease is older than LEASE_SECONDS
    ledger.take_lease(EXTRACT, "r2", EPOCH + LEASE + timedelta(seconds=1), LEASE, GRACE)

    # Then r2 holds it
    assert ledger.lease_holder(EXTRACT) == "r2"


@pytest.mark.parametrize("holder", ["landed", "failed", "timed_out", "missing"])
def test_ledger_lease_whose_holder_run_is_final_or_missing_is_taken_over(
    ledger_steps: Steps, holder: str
) -> None:
    # Given a lease held by r1, which has ended (or whose run document is gone past the grace)
    ledger = ledger_steps.deps.ledger
    if holder != "missing":
        ledger.create_run(a_run("r1", state=RunState(holder.upper())))
    ledger.take_lease(EXTRACT, "r1", EPOCH, LEASE, GRACE)

    # When r2 asks once the grace has passed
    ledger.take_lease(EXTRACT, "r2", EPOCH + GRACE, LEASE, GRACE)

    # Then r2 holds it
    assert ledger.lease_holder(EXTRACT) == "r2"


def test_ledger_two_takers_racing_for_a_free_lease_exactly_one_gets_it(ledger_steps: Steps) -> None:
    # Given two active runs of Sales in two containers, and no lease
    ledgers = [ledger_steps.container().ledger, ledger_steps.container().ledger]
    for run_id in ("r1", "r2"):
        ledgers[0].create_run(a_run(run_id))

    # When both take the lease at the same moment
    results = race(
        *(partial(ledgers[i].take_lease, EXTRACT, f"r{i + 1}", EPOCH, LEASE, GRACE) for i in range(2))
    )

    # Then one holds it and the other was refused
    refused = [result for result in results if isinstance(result, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], LeaseHeldError | ConflictError), results
    assert ledgers[0].lease_holder(EXTRACT) == f"r{results.index(None) + 1}"


def test_ledger_lease_released_by_another_run_stays_with_its_holder(ledger_steps: Steps) -> None:
    # Given r1 holding the lease
    ledger = ledger_steps.deps.ledger
    ledger.create_run(a_run("r1"))
    ledger.take_lease(EXTRACT, "r1", EPOCH, LEASE, GRACE)

    # When r2 releases it (a late step of an older run), Then r1 still holds it
    ledger.release_lease(EXTRACT, "r2")
    assert ledger.lease_holder(EXTRACT) == "r1"

    # When r1 releases it, Then it is free
    ledger.release_lease(EXTRACT, "r1")
    assert ledger.lease_holder(EXTRACT) is None
    assert ledger_steps.objects("_state/leases/") == []


@dataclass
class DeletingMeanwhile:
    """A store that does `action` once, just before it deletes an object."""

    inner: ObjectStore
    action: Callable[[], object]
    done: bool = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def delete(self, name: str, *, if_match: str | None = None) -> None:
        if not self.done:
            self.done = True
            self.action()
        self.inner.delete(name, if_match=if_match)


def test_ledger_release_that_meets_a_takeover_leaves_the_lease_with_the_new_holder(
    ledger_steps: Steps,
) -> None:
    # Given r1 holding the lease, and r2 taking it over (r1's gone stale) just as r1's late release deletes it
    ledger = ledger_steps.deps.ledger
    for run_id in ("r1", "r2"):
        ledger.create_run(a_run(run_id))
    ledger.take_lease(EXTRACT, "r1", EPOCH, LEASE, GRACE)
    takeover = partial(ledger.take_lease, EXTRACT, "r2", EPOCH + LEASE, LEASE, GRACE)
    releasing = Ledger(DeletingMeanwhile(ledger_steps.deps.store, takeover), ledger.prefix)

    # When r1's release goes on, Then it ends quietly, and r2 holds the lease
    releasing.release_lease(EXTRACT, "r1")
    assert ledger.lease_holder(EXTRACT) == "r2"


# -- malformed documents ----------------------------------------------------------------------------


_DROP = object()  # a field left out of the document


def _put_run_document(ledger_steps: Steps, body: bytes, run_id: str = "r1") -> None:
    ledger_steps.deps.store.put_bytes(f"_state/runs/{run_id}.json", body)


def _encoded_run(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "run_id": "r1",
        "extract": EXTRACT,
        "mode": "full",
        "state": "RUNNING",
        "created_at": "2026-03-01T08:00:00.000000Z",
        "updated_at": "2026-03-01T08:00:00.000000Z",
        "next_at": "2026-03-01T08:00:00.000000Z",
    }
    doc.update(changes)
    return {key: value for key, value in doc.items() if value is not _DROP}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"state": "PAUSED"}, "state"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"run_id": _DROP}, "run_id"),
        ({"files": [{"name": "a.zip", "bytes": 3}]}, r"files\[0\]: size"),
        ({"v": 3}, "version"),
    ],
    ids=["unknown-state", "bad-date", "missing-field", "bad-planned-file", "newer-version"],
)
def test_ledger_malformed_run_document_raises_integrity_error_naming_the_field(
    ledger_steps: Steps, changes: dict[str, Any], field: str
) -> None:
    # Given a run document that does not fit a Run
    _put_run_document(ledger_steps, json.dumps(_encoded_run(**changes)).encode())

    # When it is loaded, Then IntegrityError names the document and the field
    with pytest.raises(IntegrityError, match=rf"ledger document _state/runs/r1\.json.*{field}"):
        ledger_steps.deps.ledger.load_run("r1")


def test_ledger_run_document_written_before_versions_reads_as_version_1(ledger_steps: Steps) -> None:
    # Given a run document as the first release wrote it: no "v", optional fields left out
    _put_run_document(ledger_steps, json.dumps(_encoded_run(attempt=2, job_id="44046")).encode())

    # When it is loaded
    run = ledger_steps.deps.ledger.load_run("r1").value

    # Then it reads with every field the document has, and defaults for the rest
    assert (run.run_id, run.state, run.attempt, run.job_id, run.job_ids) == (
        "r1",
        RunState.RUNNING,
        2,
        "44046",
        (),
    )


def test_ledger_documents_are_stored_as_readable_versioned_json(ledger_steps: Steps) -> None:
    # Given a run written by the ledger
    ledger_steps.deps.ledger.create_run(a_run())

    # When a person opens the object
    stored = ledger_steps.read("_state/runs/r1.json").decode()

    # Then it is indented, key-sorted JSON that says its version
    doc = json.loads(stored)
    assert doc["v"] == 1 and doc["state"] == "RUNNING"
    assert stored == json.dumps(doc, indent=2, sort_keys=True) + "\n"


def test_ledger_run_document_that_is_not_json_raises_integrity_error_naming_it(ledger_steps: Steps) -> None:
    # Given a run document cut short
    _put_run_document(ledger_steps, b'{"run_id": "r1", "sta')

    # When it is loaded, Then IntegrityError names the document
    with pytest.raises(IntegrityError, match=r"_state/runs/r1\.json is not valid JSON"):
        ledger_steps.deps.ledger.load_run("r1")


def test_ledger_malformed_file_record_raises_integrity_error_naming_the_field(ledger_steps: Steps) -> None:
    # Given a file record whose state is unknown
    ledger_steps.deps.store.put_bytes(
        "_state/files/r1/a_1.zip.json",
        b'{"run_id": "r1", "name": "a_1.zip", "state": "LOST", "next_at": "2026-03-01T08:00:00Z"}',
    )

    # When it is loaded, Then IntegrityError names the document and the field
    with pytest.raises(IntegrityError, match=r"_state/files/r1/a_1\.zip\.json: state"):
        ledger_steps.deps.ledger.load_file("r1", "a_1.zip")


@pytest.mark.parametrize(
    "changes", [{"attempt": "two"}, {"job_ids": "44046"}, {"poll_seq": None}], ids=["text", "string", "null"]
)
def test_ledger_run_document_with_a_wrongly_typed_field_raises_integrity_error(
    ledger_steps: Steps, changes: dict[str, Any]
) -> None:
    # Given a run document whose field has the wrong JSON type
    _put_run_document(ledger_steps, json.dumps(_encoded_run(**changes)).encode())

    # When it is loaded, Then IntegrityError names the document
    with pytest.raises(IntegrityError, match=r"ledger document _state/runs/r1\.json: "):
        ledger_steps.deps.ledger.load_run("r1")


@pytest.mark.parametrize(
    "damaged",
    [b'{"run_id": "r1", "taken_at": "soon"}', b"{not json", b"[]"],
    ids=["bad-time", "not-json", "list"],
)
def test_ledger_unreadable_lease_is_replaced_by_the_next_taker(ledger_steps: Steps, damaged: bytes) -> None:
    # Given r1 running, and its lease document damaged (left alone it would refuse every later run)
    ledger: Ledger = ledger_steps.deps.ledger
    ledger.create_run(a_run("r1"))
    ledger_steps.deps.store.put_bytes("_state/leases/Sales.json", damaged)

    # When r2 asks for the lease
    ledger.take_lease(EXTRACT, "r2", EPOCH, LEASE, GRACE)

    # Then r2 holds it, and r1's late release cannot take it away
    ledger.release_lease(EXTRACT, "r1")
    assert ledger.lease_holder(EXTRACT) == "r2"


# -- the index of every run: `fusion-extract runs` costs what it shows ----------------------------------


def _history(ledger: Ledger, count: int, start: datetime = EPOCH) -> list[Run]:
    """`count` runs a minute apart, oldest first; every third of Orders; the last three still RUNNING,
    the others ended LANDED, FAILED or CANCELLED in turn."""
    endings = itertools.cycle((RunState.LANDED, RunState.FAILED, RunState.CANCELLED))
    runs = []
    for number in range(count):
        created = start + timedelta(minutes=number)
        extract = "Orders" if number % 3 == 0 else EXTRACT
        ending = next(endings) if number < count - 3 else None
        state = RunState.FINISHING if ending is RunState.LANDED else RunState.RUNNING  # a move to its end
        run = a_run(f"r{number:05d}", state, extract).but(created_at=created, updated_at=created)
        current = ledger.create_run(run)
        if ending is not None:
            run = run.but(state=ending)
            ledger.save_run(current, run)
        runs.append(run)
    return runs


def _ids(found: Any) -> list[str]:
    return [current.value.run_id for current in found if isinstance(current, Versioned)]


def test_ledger_recent_runs_come_newest_first_filtered_by_extract_state_and_time(ledger_steps: Steps) -> None:
    # Given twelve runs a minute apart, of two extracts, nine ended and three running
    ledger = ledger_steps.deps.ledger
    runs = _history(ledger, 12)
    newest_first = [run.run_id for run in reversed(runs)]

    # When they are listed, Then newest first
    assert _ids(ledger.recent_runs()) == newest_first
    # And by extract, by states (final ones told by name, active ones by their document), by time
    assert _ids(ledger.recent_runs(extract="Orders")) == ["r00009", "r00006", "r00003", "r00000"]
    served = len(ledger_steps.oci.served)
    assert _ids(ledger.recent_runs(states={RunState.FAILED})) == ["r00007", "r00004", "r00001"]
    read = [
        path for method, path, _ in ledger_steps.oci.served[served:] if method == "GET" and "runs%2F" in path
    ]
    assert len(read) == 3 + 3  # the FAILED ones and the three running: the others' state is in their names
    assert _ids(ledger.recent_runs(states={RunState.RUNNING, RunState.CANCELLED})) == [
        "r00011",
        "r00010",
        "r00009",
        "r00008",
        "r00005",
        "r00002",
    ]
    since, until = EPOCH + timedelta(minutes=4), EPOCH + timedelta(minutes=6)  # both ends included
    assert _ids(ledger.recent_runs(since=since, until=until)) == ["r00006", "r00005", "r00004"]
    assert _ids(ledger.recent_runs(since=EPOCH + timedelta(minutes=20))) == []


def test_ledger_recent_runs_over_10000_final_runs_read_only_what_they_show(ledger_steps: Steps) -> None:
    # Given a ledger of 10,000 runs that ended (written straight into the emulator's bucket), the
    # newest of which cannot be read
    seed = SeedBucket()
    seeded = Ledger(cast(ObjectStore, seed), "_state")  # the ledger uses only the calls SeedBucket has
    _history(seeded, 10_003)
    next(seeded.recent_runs())  # listed once before: the index is built
    damaged = "_state/runs/r10002.json"
    seed.put_bytes(damaged, b'{"run_id": "r10002", "sta')
    seed.plant(ledger_steps.oci.objectstorage.store, BUCKET)
    ledger = ledger_steps.deps.ledger
    served = len(ledger_steps.oci.served)

    # When the three newest runs are listed through the SDK
    found = list(itertools.islice(ledger.recent_runs(), 4))

    # Then the unreadable one is told apart and the three after it are read, and nothing else
    assert isinstance(found[0], Unreadable) and found[0].name == damaged
    assert "not valid JSON" in found[0].problem
    assert found[0].about["run_id"] == "r10002"  # whose it was, as the index tells (an alert names it)
    assert _ids(found[1:]) == ["r10001", "r10000", "r09999"]
    requests = [(method, path.split("?")[0]) for method, path, _ in ledger_steps.oci.served[served:]]
    documents = [path for method, path in requests if method == "GET" and "%2Fruns%2F" in path]
    assert len(documents) == 4
    assert len(requests) <= 6  # the index's marker (HEAD), one page of the listing, the four documents


def test_ledger_history_written_before_the_index_is_indexed_once(ledger_steps: Steps) -> None:
    # Given run documents written before the index existed (no markers), one of them ended
    ledger = ledger_steps.deps.ledger
    for number, state in enumerate((RunState.LANDED, RunState.RUNNING)):
        created = EPOCH + timedelta(minutes=number)
        run = a_run(f"old{number}", state).but(created_at=created)
        _put_run_document(ledger_steps, encode(run_to_doc(run)), f"old{number}")

    # When runs are listed, twice
    assert _ids(ledger.recent_runs()) == ["old1", "old0"]
    served = len(ledger_steps.oci.served)
    assert _ids(ledger.recent_runs(states={RunState.LANDED})) == ["old0"]

    # Then the second listing indexed nothing again: it read the one LANDED document and the active one
    reads = [
        path for method, path, _ in ledger_steps.oci.served[served:] if method == "GET" and "runs%2F" in path
    ]
    assert len(reads) == 2
    assert len(ledger_steps.objects("_state/index/")) == 3  # two created, one ended


def test_ledger_run_that_ended_without_its_end_indexed_is_indexed_when_listed(ledger_steps: Steps) -> None:
    # Given a run that ended, its end marker lost (as if the invocation died right after saving it)
    ledger = ledger_steps.deps.ledger
    assert _ids(ledger.recent_runs()) == []  # the index is built
    current = ledger.create_run(a_run(state=RunState.FINISHING))
    ledger.save_run(current, a_run(state=RunState.LANDED))
    (ended,) = [name for name in ledger_steps.objects("_state/index/") if name.endswith("~LANDED")]
    ledger_steps.deps.store.delete(ended)

    # When runs are listed, Then it is listed by its document, and its end is indexed again
    assert _ids(ledger.recent_runs(states={RunState.LANDED})) == ["r1"]
    assert ended in ledger_steps.objects("_state/index/")


def test_ledger_refuses_a_state_change_its_machine_does_not_have_and_writes_nothing(
    ledger_steps: Steps,
) -> None:
    # Given a running run
    ledger = ledger_steps.deps.ledger
    current = ledger.create_run(a_run())

    # When a step would save it LANDED straight away (no finish)
    with pytest.raises(IllegalMove, match="run: no move from RUNNING to LANDED"):
        ledger.save_run(current, a_run(state=RunState.LANDED))

    # Then the document is as it was
    assert ledger.load_run("r1") == current


def test_ledger_plan_of_25000_files_keeps_the_run_document_small_and_reads_only_the_pages_asked(
    ledger_steps: Steps,
) -> None:
    # Given a job that listed 25,000 files (Fusion's manifest and 24,999 archives), planned in a seeded
    # ledger and planted in the emulator's bucket
    seed = SeedBucket()
    seeded = Ledger(cast(ObjectStore, seed), "_state")
    url = "https://fusion.example/api/boss/data/objects/ora/jobs/44055/extractedFiles"
    manifest = OutputFile("MANIFEST_EXTRACT_44055.mf", 300, None, f"{url}/0")
    archives = [
        OutputFile(f"44055_S_Sales_invoices_1772352000000_{n:05d}.zip", 9000 + n, f"{n:064x}", f"{url}/{n}")
        for n in range(1, 25_000)
    ]
    current = seeded.create_run(a_run())
    plan = seeded.save_plan("r1", [manifest], archives)
    seeded.save_run(current, current.value.but(state=RunState.TRANSFERRING, plan=plan))
    seed.plant(ledger_steps.oci.objectstorage.store, BUCKET)
    ledger = ledger_steps.deps.ledger

    # Then the run document names its plan and stays under 2 KiB (holding the files, it was over 6 MB),
    # and the plan is in 50 pages of at most 500 files
    document = ledger_steps.read("_state/runs/r1.json")
    assert len(document) < 2048 and json.loads(document)["plan"]["files"] == 25_000
    pages = ledger_steps.objects("_state/plans/r1/")
    assert len(pages) == 50 and max(len(ledger_steps.read(page)) for page in pages) < 150_000

    # When the files landed as they are are read (an archive's members are checked against them)
    run = ledger.load_run("r1").value
    served = len(ledger_steps.oci.served)
    plain = ledger.plain_files(run)

    # Then that is the manifest, from the first page alone
    assert plain == [manifest]
    assert [method for method, path, _ in ledger_steps.oci.served[served:] if "plans" in path] == ["GET"]
    # And the whole plan reads back in its order: the manifest, then the archives as listed
    assert run.file_count == 25_000 and ledger.planned_files(run) == [manifest, *archives]


def test_ledger_run_planned_in_its_document_before_plan_pages_reads_as_it_was(ledger_steps: Steps) -> None:
    # Given a run document written before plan pages existed: v1, its planned files in it
    planned = [OutputFile("a_1.zip", 10, "a" * 64, "u1"), OutputFile("m.mf", 5, None, "u2")]
    doc = _encoded_run(v=1, state="TRANSFERRING", files=[_planned_doc(p) for p in planned])
    _put_run_document(ledger_steps, json.dumps(doc).encode())

    # When it is loaded and its plan read
    ledger = ledger_steps.deps.ledger
    run = ledger.load_run("r1").value

    # Then its plan is the one in its document, and nothing else is read for it
    assert (run.plan, run.file_count) == (None, 2)
    assert ledger.planned_files(run) == ledger.plain_files(run) == planned
    # And saved again, it keeps that shape (v1, its files in it): a build that reads v1 only still reads it
    ledger.save_run(ledger.load_run("r1"), run.but(redrives=1))
    saved = json.loads(ledger_steps.read("_state/runs/r1.json"))
    assert saved["v"] == 1 and [f["name"] for f in saved["files"]] == ["a_1.zip", "m.mf"]


def test_ledger_plan_page_of_another_run_or_plan_is_refused(ledger_steps: Steps) -> None:
    # Given a run whose plan's page was replaced by a page of another run's plan
    ledger = ledger_steps.deps.ledger
    current = ledger.create_run(a_run())
    plan = ledger.save_plan("r1", [], [OutputFile("a_1.zip", 10, "a" * 64, "u1")])
    ledger.save_run(current, current.value.but(state=RunState.TRANSFERRING, plan=plan))
    other = ledger.save_plan("r2", [], [OutputFile("b_1.zip", 10, "b" * 64, "u2")])
    page = f"_state/plans/r1/{plan.id}/00000.json"
    ledger_steps.deps.store.put_bytes(page, ledger_steps.read(f"_state/plans/r2/{other.id}/00000.json"))

    # When the run's plan is read, Then IntegrityError names the page
    with pytest.raises(IntegrityError, match=rf"{page} is a page of another plan"):
        ledger.planned_files(ledger.load_run("r1").value)


def _planned_doc(planned: OutputFile) -> dict[str, Any]:
    return {"name": planned.name, "size": planned.size, "sha256": planned.sha256, "url": planned.url}
