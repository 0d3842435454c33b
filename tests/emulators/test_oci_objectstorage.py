"""Object Storage in the OCI emulator, driven by the real oci SDK over HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import threading
from collections.abc import Iterator
from email.utils import format_datetime
from typing import Any

import oci
import pytest
from oci.object_storage.models import (
    CommitMultipartUploadDetails,
    CommitMultipartUploadPartDetails,
    CreateMultipartUploadDetails,
    RenameObjectDetails,
)

from fusion_extract.oci.multipart import integrity
from tests.emulators import pool
from tests.emulators.oci import OciEmulator

NS, BUCKET = "emuns", "landing"
ObjectStorageClient = oci.object_storage.ObjectStorageClient


@pytest.fixture
def emu(tmp_path, clock) -> Iterator[OciEmulator]:
    etags = (f"etag-{n}" for n in itertools.count(1))
    with pool.OCI.lend() as emu:
        emu.reset(tmp_path / "oci", NS, clock=clock, new_etag=lambda: next(etags))
        emu.create_bucket(BUCKET)
        yield emu


@pytest.fixture
def client(emu) -> Any:
    return ObjectStorageClient(emu.api_key_config(), service_endpoint=emu.endpoint)


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def service_error(call, *args, **kwargs) -> oci.exceptions.ServiceError:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


# -- namespace and single objects ------------------------------------------------------------------


def test_get_namespace_returns_configured_namespace(client):
    # When the namespace is asked for
    namespace = client.get_namespace().data
    # Then it is the emulator's
    assert namespace == NS


def test_put_object_then_get_returns_bytes_and_metadata(emu, client, clock):
    # Given an object put with a content type and user metadata
    put = client.put_object(
        NS, BUCKET, "a/b c.csv", b"id,name\n1,x\n", content_type="text/csv", opc_meta={"run": "r1"}
    )
    # When it is read back
    got = client.get_object(NS, BUCKET, "a/b c.csv")
    # Then bytes, ETag, MD5, type, metadata and time come back as OCI sends them
    assert got.data.content == b"id,name\n1,x\n"
    assert put.headers["etag"] == got.headers["etag"] == "etag-1"
    assert got.headers["opc-content-md5"] == put.headers["opc-content-md5"] == b64md5(b"id,name\n1,x\n")
    assert got.headers["content-type"] == "text/csv"
    assert got.headers["opc-meta-run"] == "r1"
    assert got.headers["last-modified"] == format_datetime(clock.now(), usegmt=True)


def test_put_object_lands_as_plain_file_with_metadata_outside_bucket_folder(emu, client, tmp_path):
    # When an object with a folder-like name is put
    client.put_object(NS, BUCKET, "run=1/data.csv", b"payload")
    # Then a person finds exactly its bytes in the bucket folder, and nothing else there
    assert emu.object_path(BUCKET, "run=1/data.csv").read_bytes() == b"payload"
    bucket_folder = tmp_path / "oci" / BUCKET
    assert [p.relative_to(bucket_folder).as_posix() for p in bucket_folder.rglob("*")] == [
        "run=1",
        "run=1/data.csv",
    ]


def test_head_object_returns_headers_without_body(client):
    # Given an object
    client.put_object(NS, BUCKET, "x.bin", b"12345", opc_meta={"k": "v"})
    # When its head is asked for
    head = client.head_object(NS, BUCKET, "x.bin")
    # Then size, ETag and metadata come back
    assert head.status == 200
    assert head.headers["content-length"] == "5"
    assert head.headers["etag"] == "etag-1"
    assert head.headers["opc-meta-k"] == "v"


def test_get_object_missing_object_or_bucket_is_404(client):
    # When a missing object, then a missing bucket, is read
    missing_object = service_error(client.get_object, NS, BUCKET, "nope")
    missing_bucket = service_error(client.get_object, NS, "nobucket", "nope")
    # Then OCI's 404 codes come back
    assert (missing_object.status, missing_object.code) == (404, "ObjectNotFound")
    assert (missing_bucket.status, missing_bucket.code) == (404, "BucketNotFound")


def test_get_object_with_range_returns_partial_content(client):
    # Given a ten-byte object
    client.put_object(NS, BUCKET, "r.bin", b"0123456789")
    # When byte ranges are read
    middle = client.get_object(NS, BUCKET, "r.bin", range="bytes=2-4")
    tail = client.get_object(NS, BUCKET, "r.bin", range="bytes=7-")
    suffix = client.get_object(NS, BUCKET, "r.bin", range="bytes=-3")
    # Then 206 with exactly those bytes and their content-range
    assert (middle.status, middle.data.content) == (206, b"234")
    assert middle.headers["content-range"] == "bytes 2-4/10"
    assert tail.data.content == b"789"
    assert suffix.data.content == b"789"


def test_get_object_range_beyond_end_is_416(client):
    # Given a ten-byte object
    client.put_object(NS, BUCKET, "r.bin", b"0123456789")
    # When a range past its end is read
    error = service_error(client.get_object, NS, BUCKET, "r.bin", range="bytes=10-20")
    # Then the range is refused
    assert (error.status, error.code) == (416, "InvalidRange")


def test_get_object_large_object_streams_intact(client):
    # Given an object of several chunks
    data = bytes(range(256)) * 20_000
    client.put_object(NS, BUCKET, "big.bin", data)
    # When it is streamed back
    body = b"".join(client.get_object(NS, BUCKET, "big.bin").data.raw.stream(65536))
    # Then every byte arrives
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()


def test_put_object_wrong_content_md5_is_400_and_writes_nothing(emu, client):
    # When the Content-MD5 does not match the body
    error = service_error(client.put_object, NS, BUCKET, "m.bin", b"data", content_md5=b64md5(b"other"))
    # Then the write is refused and nothing lands
    assert (error.status, error.code) == (400, "UnmatchedContentMD5")
    assert not emu.object_path(BUCKET, "m.bin").exists()


# -- conditional writes ----------------------------------------------------------------------------


def test_put_object_if_none_match_on_existing_object_is_412_and_keeps_it(client):
    # Given an object
    client.put_object(NS, BUCKET, "lease.json", b"first")
    # When a create-only put targets the same name
    error = service_error(client.put_object, NS, BUCKET, "lease.json", b"second", if_none_match="*")
    # Then it fails and the first content stays
    assert (error.status, error.code) == (412, "IfNoneMatchFailed")
    assert client.get_object(NS, BUCKET, "lease.json").data.content == b"first"


def test_put_object_if_match_stale_etag_is_412_and_current_etag_succeeds(client):
    # Given an object written twice
    first = client.put_object(NS, BUCKET, "run.json", b"v1").headers["etag"]
    second = client.put_object(NS, BUCKET, "run.json", b"v2", if_match=first).headers["etag"]
    # When a writer still holding the first ETag writes
    error = service_error(client.put_object, NS, BUCKET, "run.json", b"stale", if_match=first)
    # Then it loses, and the holder of the current ETag wins
    assert (error.status, error.code) == (412, "IfMatchFailed")
    assert client.put_object(NS, BUCKET, "run.json", b"v3", if_match=second).status == 200
    assert client.get_object(NS, BUCKET, "run.json").data.content == b"v3"


def test_put_object_if_match_on_missing_object_is_412(client):
    # When a conditional update targets a name that does not exist
    error = service_error(client.put_object, NS, BUCKET, "ghost.json", b"x", if_match="etag-9")
    # Then it fails as a lost condition
    assert (error.status, error.code) == (412, "IfMatchFailed")


def race_create_only(clients: list[Any], name: str) -> dict[int, int]:
    """Each client puts `name` with if-none-match: * at the same moment; returns each one's status."""
    start, outcomes = threading.Barrier(len(clients)), {}

    def write(who: int) -> None:
        start.wait()
        try:
            outcomes[who] = clients[who].put_object(NS, BUCKET, name, f"w{who}", if_none_match="*").status
        except oci.exceptions.ServiceError as error:
            outcomes[who] = error.status

    threads = [threading.Thread(target=write, args=(who,)) for who in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_put_object_two_racing_create_only_writers_exactly_one_wins(emu):
    # Given two clients
    clients = [ObjectStorageClient(emu.api_key_config(), service_endpoint=emu.endpoint) for _ in range(2)]
    for round_ in range(5):
        # When they put the same name create-only at the same moment
        outcomes = race_create_only(clients, f"lease-{round_}.json")
        # Then exactly one wins, the other gets 412, and the object holds the winner's bytes
        assert sorted(outcomes.values()) == [200, 412]
        winner = next(who for who, status in outcomes.items() if status == 200)
        assert emu.object_path(BUCKET, f"lease-{round_}.json").read_bytes() == f"w{winner}".encode()


def test_delete_object_stale_if_match_is_412_and_object_survives(client):
    # Given an object rewritten since a reader saw it
    stale = client.put_object(NS, BUCKET, "d.json", b"v1").headers["etag"]
    client.put_object(NS, BUCKET, "d.json", b"v2")
    # When a delete carries the old ETag
    error = service_error(client.delete_object, NS, BUCKET, "d.json", if_match=stale)
    # Then it fails and the object is still there
    assert (error.status, error.code) == (412, "IfMatchFailed")
    assert client.get_object(NS, BUCKET, "d.json").data.content == b"v2"


def test_delete_object_removes_file_and_empty_folders(emu, client, tmp_path):
    # Given an object in a pseudo-folder
    client.put_object(NS, BUCKET, "tmp/x/part.bin", b"x")
    # When it is deleted
    deleted = client.delete_object(NS, BUCKET, "tmp/x/part.bin")
    # Then it is gone, its folders too, and the folder name can become an object
    assert deleted.status == 204
    assert service_error(client.head_object, NS, BUCKET, "tmp/x/part.bin").status == 404
    assert not (tmp_path / "oci" / BUCKET / "tmp").exists()
    assert client.put_object(NS, BUCKET, "tmp", b"now a file").status == 200


# -- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["ends/with/slash/", "line\nfeed", "a//b", "a/../b", "x" * 1025, "é" * 513],
    ids=["trailing-slash", "line-feed", "empty-segment", "dot-dot", "1025-chars", "1026-utf8-bytes"],
)
def test_put_object_invalid_name_is_400_with_reason(client, name):
    # When an object name OCI (or a file tree) cannot hold is put
    error = service_error(client.put_object, NS, BUCKET, name, b"x")
    # Then it is refused with a message naming the problem
    assert (error.status, error.code) == (400, "InvalidParameter")
    assert "object name" in error.message


def test_put_object_name_colliding_with_folder_or_file_is_400(client):
    # Given objects "a" (a file) and "b/c" (so "b" is a folder)
    client.put_object(NS, BUCKET, "a", b"file")
    client.put_object(NS, BUCKET, "b/c", b"nested")
    # When names needing "a" as a folder, or "b" as a file, are put
    under_file = service_error(client.put_object, NS, BUCKET, "a/child", b"x")
    over_folder = service_error(client.put_object, NS, BUCKET, "b", b"x")
    # Then both are refused, naming the clash
    assert (under_file.status, over_folder.status) == (400, 400)
    assert "'a' is a file" in under_file.message
    assert "'b/'" in over_folder.message


# -- listing ---------------------------------------------------------------------------------------


def test_list_objects_with_fields_returns_summaries(client, clock):
    # Given one object
    client.put_object(NS, BUCKET, "k/v.csv", b"abc")
    # When listed with fields
    page = client.list_objects(NS, BUCKET, fields="name,size,etag,md5,timeCreated,timeModified").data
    # Then each summary carries them
    [summary] = page.objects
    assert (summary.name, summary.size, summary.etag, summary.md5) == ("k/v.csv", 3, "etag-1", b64md5(b"abc"))
    assert summary.time_created == summary.time_modified == clock.now()
    assert page.next_start_with is None


def test_list_objects_default_fields_is_name_only(client):
    # Given one object
    client.put_object(NS, BUCKET, "n.csv", b"abc")
    # When listed without fields
    [summary] = client.list_objects(NS, BUCKET).data.objects
    # Then only the name is there
    assert (summary.name, summary.size, summary.etag) == ("n.csv", None, None)


def test_list_objects_prefix_and_delimiter_fold_folders(client):
    # Given objects at several depths
    for name in ("r/a.csv", "r/sub/b.csv", "r/sub/c.csv", "r/z/d.csv", "s/e.csv"):
        client.put_object(NS, BUCKET, name, b"x")
    # When listed under a prefix with the '/' delimiter
    page = client.list_objects(NS, BUCKET, prefix="r/", delimiter="/").data
    # Then direct objects and folder prefixes come back
    assert [o.name for o in page.objects] == ["r/a.csv"]
    assert page.prefixes == ["r/sub/", "r/z/"]


def test_list_objects_pages_with_limit_and_next_start_with(client):
    # Given five objects
    names = [f"p/{i}.csv" for i in range(5)]
    for name in names:
        client.put_object(NS, BUCKET, name, b"x")
    # When listed two at a time
    first = client.list_objects(NS, BUCKET, prefix="p/", limit=2).data
    second = client.list_objects(NS, BUCKET, prefix="p/", limit=2, start=first.next_start_with).data
    everything = oci.pagination.list_call_get_all_results(
        client.list_objects, NS, BUCKET, prefix="p/", limit=2
    )
    # Then pages follow on from nextStartWith, and the SDK's paginator gathers them all
    assert [o.name for o in first.objects] == names[:2]
    assert first.next_start_with == names[2]
    assert [o.name for o in second.objects] == names[2:4]
    assert [o.name for o in everything.data.objects] == names


def test_list_objects_start_end_and_start_after_bound_the_window(client):
    # Given objects a..e
    for name in "abcde":
        client.put_object(NS, BUCKET, name, b"x")
    # When listed in windows
    window = client.list_objects(NS, BUCKET, start="b", end="d").data.objects
    after = client.list_objects(NS, BUCKET, start_after="c").data.objects
    # Then start is inclusive, end and startAfter exclusive
    assert [o.name for o in window] == ["b", "c"]
    assert [o.name for o in after] == ["d", "e"]


def test_list_objects_limit_over_1000_is_400(client):
    # When a page larger than OCI allows is asked for
    error = service_error(client.list_objects, NS, BUCKET, limit=1001)
    # Then it is refused
    assert (error.status, error.code) == (400, "InvalidParameter")


# -- multipart -------------------------------------------------------------------------------------


def test_upload_stream_assembles_parts_with_multipart_md5(emu, client, tmp_path):
    # Given three parts' worth of data sent through the SDK's UploadManager
    data = bytes(range(256)) * 10_000  # 2,560,000 bytes -> parts of 1,000,000
    manager = oci.object_storage.UploadManager(client, allow_parallel_uploads=True, parallel_process_count=3)
    # When it is uploaded as a stream
    result = manager.upload_stream(NS, BUCKET, "zip/out.zip", io.BytesIO(data), part_size=1_000_000)
    # Then the object is whole, with OCI's multipart MD5 of the part MD5s
    parts = [data[i : i + 1_000_000] for i in range(0, len(data), 1_000_000)]
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).digest()
    expected = f"{base64.b64encode(digest).decode()}-3"
    assert result.headers["opc-multipart-md5"] == expected
    assert emu.object_path(BUCKET, "zip/out.zip").read_bytes() == data
    head = client.head_object(NS, BUCKET, "zip/out.zip")
    assert head.headers["opc-multipart-md5"] == expected
    assert not any((tmp_path / "oci" / ".uploads").iterdir())


def test_multipart_operations_create_upload_list_and_abort(client):
    # Given a multipart upload with two parts
    upload = client.create_multipart_upload(
        NS, BUCKET, CreateMultipartUploadDetails(object="m/big.bin", content_type="application/zip")
    ).data
    for number, part in ((1, b"aaaa"), (2, b"bb")):
        client.upload_part(NS, BUCKET, "m/big.bin", upload.upload_id, number, part, content_md5=b64md5(part))
    # When its parts and the bucket's uploads are listed
    parts = client.list_multipart_upload_parts(NS, BUCKET, "m/big.bin", upload.upload_id).data
    uploads = client.list_multipart_uploads(NS, BUCKET).data
    # Then both show, and after an abort the upload is gone
    assert [(p.part_number, p.size, p.md5) for p in parts] == [(1, 4, b64md5(b"aaaa")), (2, 2, b64md5(b"bb"))]
    assert [(u.object, u.upload_id) for u in uploads] == [("m/big.bin", upload.upload_id)]
    assert client.abort_multipart_upload(NS, BUCKET, "m/big.bin", upload.upload_id).status == 204
    assert client.list_multipart_uploads(NS, BUCKET).data == []
    gone = service_error(client.upload_part, NS, BUCKET, "m/big.bin", upload.upload_id, 3, b"c")
    assert (gone.status, gone.code) == (404, "NoSuchUpload")


def test_multipart_commit_excluding_a_part_leaves_it_out(emu, client):
    # Given an upload with three parts
    upload_id = client.create_multipart_upload(
        NS, BUCKET, CreateMultipartUploadDetails(object="e.bin")
    ).data.upload_id
    etags = {
        n: client.upload_part(NS, BUCKET, "e.bin", upload_id, n, body).headers["etag"]
        for n, body in ((1, b"one-"), (2, b"two-"), (3, b"three"))
    }
    # When parts 1 and 3 are committed and part 2 excluded
    commit = CommitMultipartUploadDetails(
        parts_to_commit=[CommitMultipartUploadPartDetails(part_num=n, etag=etags[n]) for n in (1, 3)],
        parts_to_exclude=[2],
    )
    client.commit_multipart_upload(NS, BUCKET, "e.bin", upload_id, commit)
    # Then the object is parts 1 and 3
    assert emu.object_path(BUCKET, "e.bin").read_bytes() == b"one-three"


def _upload_parts(client, name: str, bodies: list[bytes]) -> tuple[str, dict[int, str]]:
    upload_id = client.create_multipart_upload(
        NS, BUCKET, CreateMultipartUploadDetails(object=name)
    ).data.upload_id
    etags = {
        number: client.upload_part(NS, BUCKET, name, upload_id, number, body).headers["etag"]
        for number, body in enumerate(bodies, 1)
    }
    return upload_id, etags


def _commit_all(client, name: str, upload_id: str, etags: dict[int, str]) -> Any:
    parts = [CommitMultipartUploadPartDetails(part_num=n, etag=etag) for n, etag in etags.items()]
    return client.commit_multipart_upload(
        NS, BUCKET, name, upload_id, CommitMultipartUploadDetails(parts_to_commit=parts)
    )


def _files(folder) -> dict[int, bytes]:
    """{inode: bytes} of every file under `folder`."""
    return {path.stat().st_ino: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_multipart_commit_moves_the_parts_and_serves_them_in_order_whole_and_in_ranges(emu, client, tmp_path):
    # Given an upload of three parts, their files on disk
    bodies = [b"first-part|", b"second|", b"third-and-last"]
    data = b"".join(bodies)
    upload_id, etags = _upload_parts(client, "s/joined.bin", bodies)
    uploaded = _files(tmp_path / "oci" / ".uploads")

    # When it is committed
    _commit_all(client, "s/joined.bin", upload_id, etags)

    # Then the very files uploaded hold the object (moved, none copied)
    assert _files(tmp_path / "oci" / ".segments") == uploaded
    # And it reads whole, in ranges across the parts' boundaries, with its size and multipart MD5
    whole = client.get_object(NS, BUCKET, "s/joined.bin")
    assert whole.data.content == data
    assert int(whole.headers["content-length"]) == len(data)
    digest = hashlib.md5(b"".join(hashlib.md5(body).digest() for body in bodies)).digest()
    assert whole.headers["opc-multipart-md5"] == f"{base64.b64encode(digest).decode()}-3"
    for first, last in ((0, 10), (5, 20), (11, 17), (10, 11), (17, len(data) - 1), (3, len(data) + 50)):
        ranged = client.get_object(NS, BUCKET, "s/joined.bin", range=f"bytes={first}-{last}")
        assert (ranged.status, ranged.data.content) == (206, data[first : last + 1])
    assert client.get_object(NS, BUCKET, "s/joined.bin", range="bytes=-5").data.content == data[-5:]
    # And a listing gives its size
    listed = client.list_objects(NS, BUCKET, prefix="s/", fields="size").data.objects
    assert [(o.name, o.size) for o in listed] == [("s/joined.bin", len(data))]


def test_a_one_part_commit_becomes_the_object_file_itself(emu, client, tmp_path):
    # Given an upload of one part
    upload_id, etags = _upload_parts(client, "one.bin", [b"only part"])
    uploaded = _files(tmp_path / "oci" / ".uploads")

    # When it is committed, the part's file is the object's
    _commit_all(client, "one.bin", upload_id, etags)

    assert _files(tmp_path / "oci" / BUCKET) == uploaded
    assert client.get_object(NS, BUCKET, "one.bin").data.content == b"only part"


def test_a_joined_object_replaced_renamed_or_deleted_leaves_no_segments_and_opens_whole(
    emu, client, tmp_path
):
    # Given two objects of several parts each
    for name in ("a/x.bin", "a/y.bin"):
        _commit_all(client, name, *_upload_parts(client, name, [b"12345", b"678"]))
    segments = tmp_path / "oci" / ".segments"
    assert len(list(segments.iterdir())) == 2

    # When someone asks for the folder's path, its objects are whole files there
    folder = emu.object_path(BUCKET, "a")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"x.bin": b"12345678", "y.bin": b"12345678"}
    assert list(segments.iterdir()) == []
    assert client.get_object(NS, BUCKET, "a/x.bin").data.content == b"12345678"

    # And replacing, renaming onto or deleting an object of several parts leaves none of its segments
    for name in ("b.bin", "c.bin", "d.bin"):
        _commit_all(client, name, *_upload_parts(client, name, [b"ab", b"cd"]))
    client.put_object(NS, BUCKET, "b.bin", b"replaced")
    client.rename_object(NS, BUCKET, RenameObjectDetails(source_name="a/x.bin", new_name="c.bin"))
    client.delete_object(NS, BUCKET, "d.bin")
    assert list(segments.iterdir()) == []
    assert client.get_object(NS, BUCKET, "c.bin").data.content == b"12345678"


def test_multipart_commit_with_unaccounted_part_is_400(client):
    # Given an upload with two parts
    upload_id = client.create_multipart_upload(
        NS, BUCKET, CreateMultipartUploadDetails(object="u.bin")
    ).data.upload_id
    first = client.upload_part(NS, BUCKET, "u.bin", upload_id, 1, b"1").headers["etag"]
    client.upload_part(NS, BUCKET, "u.bin", upload_id, 2, b"2")
    # When the commit names only part 1 and excludes nothing
    commit = CommitMultipartUploadDetails(
        parts_to_commit=[CommitMultipartUploadPartDetails(part_num=1, etag=first)]
    )
    error = service_error(client.commit_multipart_upload, NS, BUCKET, "u.bin", upload_id, commit)
    # Then it is refused, naming the forgotten part
    assert (error.status, error.code) == (400, "InvalidParameter")
    assert "[2]" in error.message


def test_upload_part_wrong_content_md5_is_400(client):
    # Given an upload
    upload_id = client.create_multipart_upload(
        NS, BUCKET, CreateMultipartUploadDetails(object="p.bin")
    ).data.upload_id
    # When a part's Content-MD5 does not match its bytes
    error = service_error(
        client.upload_part, NS, BUCKET, "p.bin", upload_id, 1, b"data", content_md5=b64md5(b"x")
    )
    # Then the part is refused
    assert (error.status, error.code) == (400, "UnmatchedContentMD5")
    assert client.list_multipart_upload_parts(NS, BUCKET, "p.bin", upload_id).data == []


def test_create_multipart_upload_if_none_match_on_existing_object_is_412(client):
    # Given an object
    client.put_object(NS, BUCKET, "done.zip", b"x")
    # When a create-only multipart upload targets it
    details = CreateMultipartUploadDetails(object="done.zip")
    error = service_error(client.create_multipart_upload, NS, BUCKET, details, if_none_match="*")
    # Then it fails at create
    assert (error.status, error.code) == (412, "IfNoneMatchFailed")


def test_upload_stream_create_only_onto_existing_object_fails_and_keeps_it(client):
    # Given an object
    client.put_object(NS, BUCKET, "keep.zip", b"original")
    manager = oci.object_storage.UploadManager(client)
    # When a create-only stream upload targets it
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        manager.upload_stream(NS, BUCKET, "keep.zip", io.BytesIO(b"new"), if_none_match="*")
    # Then it fails and the object is unchanged
    assert caught.value.status == 412
    assert client.get_object(NS, BUCKET, "keep.zip").data.content == b"original"


# -- rename ----------------------------------------------------------------------------------------


def test_rename_object_moves_bytes_and_metadata(emu, client, clock):
    # Given a staged object
    client.put_object(NS, BUCKET, "stage/f.csv", b"rows", opc_meta={"sha": "1"})
    clock.advance(30)
    # When it is renamed to its final name
    client.rename_object(NS, BUCKET, RenameObjectDetails(source_name="stage/f.csv", new_name="final/f.csv"))
    # Then it is only under the new name, with its metadata, and the staging folder is gone
    got = client.get_object(NS, BUCKET, "final/f.csv")
    assert (got.data.content, got.headers["opc-meta-sha"]) == (b"rows", "1")
    assert got.headers["last-modified"] == format_datetime(clock.now(), usegmt=True)
    assert service_error(client.head_object, NS, BUCKET, "stage/f.csv").status == 404
    assert not emu.object_path(BUCKET, "final/f.csv").parent.with_name("stage").exists()


def test_rename_object_create_only_onto_existing_target_is_412_and_changes_nothing(client):
    # Given a source and an existing target
    client.put_object(NS, BUCKET, "src.csv", b"new")
    client.put_object(NS, BUCKET, "dst.csv", b"old")
    # When the source is renamed create-only onto the target
    details = RenameObjectDetails(source_name="src.csv", new_name="dst.csv", new_obj_if_none_match_e_tag="*")
    error = service_error(client.rename_object, NS, BUCKET, details)
    # Then it fails and both objects are as they were
    assert (error.status, error.code) == (412, "IfNoneMatchFailed")
    assert client.get_object(NS, BUCKET, "src.csv").data.content == b"new"
    assert client.get_object(NS, BUCKET, "dst.csv").data.content == b"old"


def test_rename_object_stale_source_etag_is_412(client):
    # Given a source rewritten since its ETag was read
    stale = client.put_object(NS, BUCKET, "s.csv", b"1").headers["etag"]
    client.put_object(NS, BUCKET, "s.csv", b"2")
    # When renamed on the stale ETag
    details = RenameObjectDetails(source_name="s.csv", new_name="t.csv", src_obj_if_match_e_tag=stale)
    error = service_error(client.rename_object, NS, BUCKET, details)
    # Then it fails and nothing moved
    assert (error.status, error.code) == (412, "IfMatchFailed")
    assert service_error(client.head_object, NS, BUCKET, "t.csv").status == 404


def test_rename_object_missing_source_is_404(client):
    # When a missing object is renamed
    error = service_error(
        client.rename_object, NS, BUCKET, RenameObjectDetails(source_name="no", new_name="x")
    )
    # Then it is not found
    assert (error.status, error.code) == (404, "ObjectNotFound")


# -- emulator behaviour ----------------------------------------------------------------------------


def test_injected_fault_answers_next_matching_request_then_clears(emu, client):
    # Given a one-shot 503 on reading one object
    client.put_object(NS, BUCKET, "f.bin", b"x")
    emu.inject_fault("GET", rf"/n/{NS}/b/{BUCKET}/o/f\.bin", 503, "ServiceUnavailable")
    # When the object is read twice
    error = service_error(client.get_object, NS, BUCKET, "f.bin")
    # Then the first read fails as injected and the second succeeds
    assert (error.status, error.code) == (503, "ServiceUnavailable")
    assert client.get_object(NS, BUCKET, "f.bin").data.content == b"x"


@pytest.mark.parametrize("part", [False, True], ids=["object", "part"])
def test_put_with_a_crc32c_that_disagrees_is_400_and_one_that_agrees_is_stored(emu, client, part):
    # Given the CRC32C of other bytes, and of the right ones
    wrong, right = integrity(b"other"), integrity(b"data")

    def put(checksum):
        if not part:
            return client.put_object(NS, BUCKET, "c.bin", b"data", **checksum)
        upload = client.create_multipart_upload(NS, BUCKET, CreateMultipartUploadDetails(object="c.bin")).data
        return client.upload_part(NS, BUCKET, "c.bin", upload.upload_id, 1, b"data", **checksum)

    # When each is sent with the body, Then the wrong one is refused and the right one accepted
    error = service_error(put, wrong)
    assert (error.status, error.code) == (400, "UnmatchedContentCRC32C")
    assert put(right).status == 200
