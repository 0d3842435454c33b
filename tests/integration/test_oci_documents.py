"""Ledger documents over the emulated bucket: create-only, compare-and-swap, and races with one winner."""

import json
import threading
from collections.abc import Callable

import pytest

from fusion_extract.errors import ConflictError, IntegrityError, NotFoundError
from fusion_extract.oci.documents import Documents
from tests.integration.oci_support import BUCKET, clients_for, store_for


@pytest.fixture
def store(emu, tmp_path):
    return store_for(clients_for(emu, tmp_path))


@pytest.fixture
def docs(store):
    return Documents(store)


def race(*writers: Callable[[], str]) -> list[str | Exception | None]:
    """Run the writers at the same instant on their own threads; return what each returned or raised."""
    barrier = threading.Barrier(len(writers))
    outcomes: list[str | Exception | None] = [None] * len(writers)

    def run(index: int, write: Callable[[], str]) -> None:
        barrier.wait()
        try:
            outcomes[index] = write()
        except Exception as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_create_then_read_returns_the_document_and_its_etag_stored_readably(docs, emu):
    etag = docs.create("_state/runs/r1.json", {"state": "SUBMITTED", "attempt": 1, "extract": "hr"})

    doc, read_etag = docs.read("_state/runs/r1.json")

    assert doc == {"state": "SUBMITTED", "attempt": 1, "extract": "hr"}
    assert read_etag == etag
    stored = emu.object_path(BUCKET, "_state/runs/r1.json").read_text()
    assert stored == json.dumps(doc, indent=2, sort_keys=True) + "\n"


def test_create_when_the_document_exists_raises_conflict_and_keeps_the_first(docs):
    docs.create("_state/leases/hr.json", {"run": "r1"})

    with pytest.raises(ConflictError):
        docs.create("_state/leases/hr.json", {"run": "r2"})

    assert docs.read("_state/leases/hr.json")[0] == {"run": "r1"}


def test_replace_with_the_current_etag_writes_and_returns_a_new_etag(docs):
    etag = docs.create("_state/runs/r1.json", {"state": "SUBMITTED"})

    new_etag = docs.replace("_state/runs/r1.json", {"state": "RUNNING"}, etag)

    assert new_etag != etag
    assert docs.read("_state/runs/r1.json") == ({"state": "RUNNING"}, new_etag)


def test_replace_with_a_stale_etag_raises_conflict_and_keeps_the_newer_document(docs):
    stale = docs.create("_state/runs/r1.json", {"state": "SUBMITTED"})
    docs.replace("_state/runs/r1.json", {"state": "RUNNING"}, stale)

    with pytest.raises(ConflictError):
        docs.replace("_state/runs/r1.json", {"state": "FAILED"}, stale)

    assert docs.read("_state/runs/r1.json")[0] == {"state": "RUNNING"}


def test_two_writers_racing_on_one_document_exactly_one_wins(docs):
    # Given a run document both writers read at the same version
    etag = docs.create("_state/runs/r1.json", {"state": "RUNNING"})

    # When they replace it at the same instant
    outcomes = race(
        lambda: docs.replace("_state/runs/r1.json", {"state": "SUCCEEDED", "by": "poll-a"}, etag),
        lambda: docs.replace("_state/runs/r1.json", {"state": "SUCCEEDED", "by": "poll-b"}, etag),
    )

    # Then exactly one wins, the loser gets ConflictError, and the document is the winner's
    winners = [i for i, o in enumerate(outcomes) if isinstance(o, str)]
    losers = [o for o in outcomes if isinstance(o, ConflictError)]
    assert len(winners) == 1 and len(losers) == 1
    assert docs.read("_state/runs/r1.json")[0]["by"] == ("poll-a", "poll-b")[winners[0]]


def test_two_runs_racing_to_create_one_lease_exactly_one_gets_it(docs):
    outcomes = race(
        lambda: docs.create("_state/leases/hr.json", {"run": "scheduled"}),
        lambda: docs.create("_state/leases/hr.json", {"run": "manual"}),
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["ConflictError", "str"]
    holder = docs.read("_state/leases/hr.json")[0]["run"]
    assert holder == ("scheduled", "manual")[[isinstance(o, str) for o in outcomes].index(True)]


def test_read_when_missing_raises_not_found(docs):
    with pytest.raises(NotFoundError):
        docs.read("_state/runs/none.json")


def test_read_when_not_a_json_object_raises_integrity_error_naming_it(docs, store):
    store.put_bytes("_state/runs/bad.json", b"{not json")
    store.put_bytes("_state/runs/list.json", b"[1, 2]")

    with pytest.raises(IntegrityError, match=r"_state/runs/bad\.json is not valid JSON"):
        docs.read("_state/runs/bad.json")
    with pytest.raises(IntegrityError, match=r"_state/runs/list\.json is not a JSON object"):
        docs.read("_state/runs/list.json")


def test_delete_needs_the_current_etag(docs):
    stale = docs.create("_state/leases/hr.json", {"run": "r1"})
    current = docs.replace("_state/leases/hr.json", {"run": "r1", "renewed": True}, stale)

    with pytest.raises(ConflictError):
        docs.delete("_state/leases/hr.json", stale)
    docs.delete("_state/leases/hr.json", current)

    with pytest.raises(NotFoundError):
        docs.read("_state/leases/hr.json")


def test_list_names_every_document_under_the_prefix(docs):
    for run in ("r2", "r1", "r3"):
        docs.create(f"_state/runs/{run}.json", {"run": run})
    docs.create("_state/leases/hr.json", {"run": "r1"})

    assert list(docs.list("_state/runs/")) == [
        "_state/runs/r1.json",
        "_state/runs/r2.json",
        "_state/runs/r3.json",
    ]
