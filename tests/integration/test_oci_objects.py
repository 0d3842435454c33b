"""OciObjectStore against the OCI emulator, through the real SDK over HTTP."""

import hashlib
from collections.abc import Callable

import pytest

from fusion_extract.errors import ConflictError, NotFoundError, TransientError, UnsafeInputError
from tests.clocks import ManualClock
from tests.emulators.oci import OciEmulator
from tests.integration.oci_support import BUCKET, NAMESPACE, clients_for, content_md5, store_for


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def store(emu, tmp_path, clock):
    return store_for(clients_for(emu, tmp_path, clock))


def requests_to(emu: OciEmulator, method: str, fragment: str = "") -> list[str]:
    return [path for m, path, _ in emu.served if m == method and fragment in path]


# -- small objects -------------------------------------------------------------------------------


def test_put_bytes_then_get_bytes_returns_content_and_the_same_etag(store, emu):
    etag = store.put_bytes("runs/a b.json", b'{"x": 1}', content_type="application/json")

    data, read_etag = store.get_bytes("runs/a b.json")

    assert (data, read_etag) == (b'{"x": 1}', etag)
    assert emu.object_path(BUCKET, "runs/a b.json").read_bytes() == b'{"x": 1}'


def test_put_bytes_create_only_when_object_exists_raises_conflict_and_keeps_it(store):
    store.put_bytes("lease.json", b"first")

    with pytest.raises(ConflictError, match="412"):
        store.put_bytes("lease.json", b"second", if_none_match=True)

    assert store.get_bytes("lease.json")[0] == b"first"


def test_put_bytes_with_stale_etag_raises_conflict_and_keeps_the_newer_content(store):
    stale = store.put_bytes("run.json", b"v1")
    store.put_bytes("run.json", b"v2", if_match=stale)

    with pytest.raises(ConflictError):
        store.put_bytes("run.json", b"v3", if_match=stale)

    assert store.get_bytes("run.json")[0] == b"v2"


def test_read_range_with_if_match_reads_only_the_object_of_that_etag(store):
    # Given an object written twice: the ETag of its first version is stale
    stale = store.put_bytes("staged/fetched", b"0123456789")
    current = store.put_bytes("staged/fetched", b"abcdefghij")

    # When a range is read conditional on each ETag
    # Then the current one reads its bytes; the stale one is refused before any byte
    assert b"".join(store.read_range("staged/fetched", 2, 5, if_match=current)) == b"cde"
    with pytest.raises(ConflictError, match="412"):
        store.read_range("staged/fetched", 2, 5, if_match=stale)


def test_get_bytes_and_open_when_missing_raise_not_found_at_once(store):
    with pytest.raises(NotFoundError, match=r"get object nothing\.csv: 404"):
        store.get_bytes("nothing.csv")
    with pytest.raises(NotFoundError):
        store.open("nothing.csv")  # raised by the call itself, before any iteration


def test_head_reports_size_etag_and_md5_or_none_when_missing(store):
    etag = store.put_bytes("a.csv", b"hello")

    info = store.head("a.csv")

    assert info is not None
    assert (info.name, info.size, info.etag, info.md5) == ("a.csv", 5, etag, content_md5(b"hello"))
    assert store.head("b.csv") is None


def test_open_streams_a_large_object_in_bounded_chunks(store):
    data = hashlib.sha256(b"seed").digest() * 100_000  # 3.2 MB
    store.put_bytes("big.bin", data)

    chunks = list(store.open("big.bin"))

    assert b"".join(chunks) == data
    assert len(chunks) > 1 and max(len(c) for c in chunks) <= 2**20


def test_delete_when_missing_is_a_no_op_and_with_stale_etag_keeps_the_object(store):
    store.delete("never-there.json")
    stale = store.put_bytes("doc.json", b"1")
    store.put_bytes("doc.json", b"2")

    with pytest.raises(ConflictError):
        store.delete("doc.json", if_match=stale)

    assert store.get_bytes("doc.json")[0] == b"2"


def test_list_returns_every_page_in_name_order_with_sizes_and_md5(emu, tmp_path):
    store = store_for(clients_for(emu, tmp_path), page_size=2)
    for name in ("s/3", "s/1", "s/5", "s/2", "s/4", "t/1"):
        store.put_bytes(name, name.encode())

    listed = list(store.list("s/"))

    assert [o.name for o in listed] == ["s/1", "s/2", "s/3", "s/4", "s/5"]
    assert all(o.size == 3 and o.md5 == content_md5(o.name.encode()) for o in listed)
    assert len(requests_to(emu, "GET", f"/b/{BUCKET}/o")) == 3


def test_calls_with_a_bad_name_are_refused_before_any_request(store, emu):
    served = len(emu.served)

    calls: list[Callable[[], object]] = [
        lambda: store.put_bytes("a\nb", b""),
        lambda: store.get_bytes("x" * 1025),
        lambda: store.head("nul\x00"),
        lambda: store.upload_stream("cr\r", [b"x"]),
        lambda: store.promote("ok", "bad\n"),
        lambda: store.list("p\r"),
    ]
    for call in calls:
        with pytest.raises(UnsafeInputError):
            call()

    assert len(emu.served) == served


# -- retries -------------------------------------------------------------------------------------


def test_get_bytes_after_one_server_error_retries_and_succeeds(store, emu, clock):
    store.put_bytes("flaky.json", b"ok")
    emu.inject_fault("GET", rf"/n/{NAMESPACE}/b/{BUCKET}/o/flaky.json", 503, "ServiceUnavailable")

    assert store.get_bytes("flaky.json")[0] == b"ok"

    assert len(clock.sleeps) == 1


def test_get_bytes_when_throttled_past_the_attempts_raises_transient(emu, tmp_path, clock):
    store = store_for(clients_for(emu, tmp_path, clock, HTTP_MAX_ATTEMPTS="2"))
    store.put_bytes("busy.json", b"ok")
    emu.inject_fault("GET", r".*/o/busy.json", 429, "TooManyRequests", times=5)

    with pytest.raises(TransientError, match="429 TooManyRequests") as caught:
        store.get_bytes("busy.json")

    assert caught.value.retryable
    assert len(clock.sleeps) == 1


def test_calls_when_the_service_is_unreachable_raise_transient(emu, tmp_path):
    clients = clients_for(
        emu,
        tmp_path,
        HTTP_MAX_ATTEMPTS="1",
        BUCKET_NAMESPACE=NAMESPACE,
        OCI_OBJECTSTORAGE_ENDPOINT="http://127.0.0.1:9",
    )
    store = store_for(clients)

    with pytest.raises(TransientError, match="connection failed"):
        store.head("anything")
