"""upload_stream and promote against the OCI emulator: staged members become visible only on promote."""

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from fusion_extract.errors import (
    IntegrityError,
    NotFoundError,
    TransientError,
    UnsafeInputError,
)
from fusion_extract.oci.clients import OciClients
from fusion_extract.oci.multipart import MultipartUpload
from tests.emulators.oci import OciEmulator
from tests.integration.oci_support import BUCKET, NAMESPACE, clients_for, content_md5, store_for

PART = 64 * 1024


@pytest.fixture
def clients(emu, tmp_path):
    return clients_for(emu, tmp_path)


@pytest.fixture
def store(clients):
    return store_for(clients, part_size=PART, parallelism=3)


def content(size: int) -> bytes:
    """`size` deterministic bytes that differ from one position to the next."""
    block = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(-(-size // 32)))
    return block[:size]


def generated(size: int, chunk: int = 10_000) -> Iterator[bytes]:
    """content(size) in chunks that do not line up with parts, produced lazily like a decompressor's."""
    data = content(size)
    for start in range(0, size, chunk):
        yield data[start : start + chunk]


def multipart_md5(data: bytes, part_size: int) -> str:
    digests = b"".join(hashlib.md5(data[i : i + part_size]).digest() for i in range(0, len(data), part_size))
    return f"{base64.b64encode(hashlib.md5(digests).digest()).decode()}-{-(-len(data) // part_size)}"


def uploads_left(clients: OciClients) -> list[Any]:
    return list(clients.object_storage.list_multipart_uploads(NAMESPACE, BUCKET).data)


def requests_to(emu: OciEmulator, method: str, fragment: str) -> list[str]:
    return [path for m, path, _ in emu.served if m == method and fragment in path]


# -- upload_stream -------------------------------------------------------------------------------


def test_upload_stream_when_empty_writes_an_empty_object_with_one_put(store, emu):
    info = store.upload_stream("_staging/empty.csv", iter([]))

    assert (info.size, info.md5) == (0, content_md5(b""))
    assert store.get_bytes("_staging/empty.csv")[0] == b""
    assert requests_to(emu, "POST", f"/b/{BUCKET}/u") == []


def test_upload_stream_under_one_part_uses_a_single_put(store, emu):
    data = content(PART - 1)

    info = store.upload_stream("_staging/small.csv", generated(PART - 1), content_type="text/csv")

    assert (info.size, info.md5, info.etag) == (len(data), content_md5(data), store.head(info.name).etag)
    assert requests_to(emu, "POST", f"/b/{BUCKET}/u") == []


def test_upload_stream_of_several_parts_lands_the_exact_bytes_with_a_multipart_md5(store, emu, clients):
    # Given a stream of 3.5 parts in chunks that do not line up with part boundaries
    size = PART * 3 + PART // 2
    data = content(size)

    # When it is uploaded
    info = store.upload_stream("_staging/big.csv", generated(size, chunk=9_999))

    # Then the object holds exactly those bytes, uploaded as four parts of the part size
    assert emu.object_path(BUCKET, "_staging/big.csv").read_bytes() == data
    assert (info.size, info.md5) == (size, multipart_md5(data, PART))
    assert store.head("_staging/big.csv").md5 == info.md5
    assert len(requests_to(emu, "PUT", f"/b/{BUCKET}/u/")) == 4
    assert uploads_left(clients) == []


def test_upload_stream_when_the_input_fails_midway_aborts_and_leaves_nothing(store, clients):
    def broken() -> Iterator[bytes]:
        yield from generated(PART * 2)
        raise IntegrityError("archive member is truncated")

    with pytest.raises(IntegrityError, match="truncated"):
        store.upload_stream("_staging/broken.csv", broken())

    assert store.head("_staging/broken.csv") is None
    assert uploads_left(clients) == []


def test_upload_stream_when_a_part_keeps_failing_aborts_and_raises_transient(emu, tmp_path):
    clients = clients_for(emu, tmp_path, HTTP_MAX_ATTEMPTS="1")
    store = store_for(clients, part_size=PART, parallelism=2)
    emu.inject_fault("PUT", rf"/n/{NAMESPACE}/b/{BUCKET}/u/.*", 500, "InternalServerError", times=1)

    with pytest.raises(TransientError, match="upload part"):
        store.upload_stream("_staging/unlucky.csv", generated(PART * 3))

    assert store.head("_staging/unlucky.csv") is None
    assert uploads_left(clients) == []


def test_commit_whose_answer_was_lost_after_it_took_effect_is_recognised_by_the_object_it_left(store, emu):
    # Given an upload of two parts, and Object Storage answering its commit 503 after making the object
    data = content(2 * PART)
    upload_id = store.start_upload("_staging/big.csv")
    parts = [
        (n, store.upload_part("_staging/big.csv", upload_id, n, data[(n - 1) * PART : n * PART]))
        for n in (1, 2)
    ]
    emu.inject_fault(
        "POST", rf"/n/{NAMESPACE}/b/{BUCKET}/u/.+", 503, "ServiceUnavailable", after_handling=True
    )

    # When it is committed (the retry meets NoSuchUpload: the upload is gone, made into the object)
    made = store.commit_upload("_staging/big.csv", upload_id, parts, len(data))

    # Then the commit counts as done, and what it returns is the object made
    assert store.get_bytes("_staging/big.csv")[0] == data
    assert (made.size, made.md5) == (len(data), multipart_md5(data, PART))


def test_commit_of_an_upload_that_is_gone_is_not_found_though_another_object_has_its_name(store):
    # Given an upload that was aborted (no object was made of it), its name held by another object
    upload_id = store.start_upload("_staging/big.csv")
    parts = [(1, store.upload_part("_staging/big.csv", upload_id, 1, content(PART)))]
    store.abort_uploads("_staging/")
    store.put_bytes("_staging/big.csv", b"an older object")

    # When it is committed, Then it is not found, as before
    with pytest.raises(NotFoundError):
        store.commit_upload("_staging/big.csv", upload_id, parts, PART)


# -- promote -------------------------------------------------------------------------------------


def test_promote_makes_a_staged_member_visible_under_its_final_name_only_then(store):
    # Given a member uploaded to staging
    staged = store.upload_stream("_staging/run1/workers.csv", generated(PART * 2 + 5))

    # Then the final name shows nothing yet
    assert store.head("landing/hr/run=1/workers.csv") is None
    assert list(store.list("landing/")) == []

    # When it is promoted
    store.promote("_staging/run1/workers.csv", "landing/hr/run=1/workers.csv")

    # Then it is there, whole, and no longer in staging
    final = store.head("landing/hr/run=1/workers.csv")
    assert final is not None and (final.size, final.md5) == (staged.size, staged.md5)
    assert [o.name for o in store.list("landing/")] == ["landing/hr/run=1/workers.csv"]
    assert store.head("_staging/run1/workers.csv") is None


def test_promote_when_a_rerun_staged_the_same_content_keeps_the_target_and_drops_the_copy(store):
    store.upload_stream("_staging/a.csv", generated(PART * 2))
    store.promote("_staging/a.csv", "landing/a.csv")
    target_etag = store.head("landing/a.csv").etag

    store.upload_stream("_staging/a.csv", generated(PART * 2, chunk=4_321))  # same bytes, other chunking
    store.promote("_staging/a.csv", "landing/a.csv")

    assert store.head("landing/a.csv").etag == target_etag
    assert store.head("_staging/a.csv") is None


def test_promote_refuses_to_overwrite_a_different_object_and_changes_nothing(store):
    store.put_bytes("landing/a.csv", b"the landed data")
    store.put_bytes("_staging/a.csv", b"something else")

    with pytest.raises(UnsafeInputError, match="refusing to overwrite a different object"):
        store.promote("_staging/a.csv", "landing/a.csv")

    assert store.get_bytes("landing/a.csv")[0] == b"the landed data"
    assert store.get_bytes("_staging/a.csv")[0] == b"something else"


def test_promote_when_already_promoted_by_an_earlier_run_is_done(store):
    store.put_bytes("_staging/a.csv", b"data")
    store.promote("_staging/a.csv", "landing/a.csv")

    store.promote("_staging/a.csv", "landing/a.csv")

    assert store.get_bytes("landing/a.csv")[0] == b"data"


def test_promote_when_neither_source_nor_target_exists_raises_not_found(store):
    with pytest.raises(NotFoundError, match=r"cannot promote _staging/ghost\.csv"):
        store.promote("_staging/ghost.csv", "landing/ghost.csv")


def test_promote_of_a_staged_copy_that_changed_since_it_was_made_is_an_integrity_failure(store):
    # Given a staged member, replaced by other bytes after its upload returned
    staged = store.upload_stream("_staging/a.csv", [b"what was verified"])
    store.put_bytes("_staging/a.csv", b"what was not")

    # When it is promoted with what its upload returned, Then it is refused (not put off), and nothing shows
    with pytest.raises(IntegrityError, match="changed or vanished since it was staged"):
        store.promote("_staging/a.csv", "landing/a.csv", staged)
    assert store.head("landing/a.csv") is None


def test_multipart_upload_needing_more_parts_than_allowed_is_refused_and_aborted(clients, emu):
    # Given an upload allowed 3 parts, and 4 parts' worth of data
    upload = MultipartUpload(clients.object_storage, NAMESPACE, BUCKET, "big.csv", parallelism=2, max_parts=3)
    parts = iter([content(PART)] * 4)

    # When it runs, Then it is refused naming the limit and the fix
    with pytest.raises(UnsafeInputError, match="needs more than 3 parts; raise UPLOAD_PART_MB"):
        upload.run(parts, "text/csv")

    # And nothing is left: no object, no open upload
    assert not emu.object_path(BUCKET, "big.csv").exists()
    assert clients.object_storage.list_multipart_uploads(NAMESPACE, BUCKET).data == []
