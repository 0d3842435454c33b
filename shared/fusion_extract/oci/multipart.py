"""Upload a stream of unknown length as a multipart upload, with parallel parts and bounded memory.

Parts are cut at exactly `part_size` bytes whatever the chunking of the input, so the same content always
gives the same multipart MD5 ('<b64>-<parts>'); promote relies on that to recognise a re-run's copy.
Memory: a new part is only read once a worker is free, so at most `parallelism` parts are in flight and
one is being filled: about (parallelism + 1) * part_size. Any failure, including one raised by the input
itself, aborts the upload, so no half-written object is left behind.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import crc32c
from oci.object_storage.models import (
    CommitMultipartUploadDetails,
    CommitMultipartUploadPartDetails,
    CreateMultipartUploadDetails,
)

from fusion_extract.errors import NotFoundError, UnsafeInputError
from fusion_extract.oci.calls import translated
from fusion_extract.ports import ObjectInfo

MAX_PARTS = 10_000
log = logging.getLogger(__name__)


def integrity(data: bytes | memoryview) -> dict[str, str]:
    """The request options that make Object Storage check a body on arrival: a CRC32C (opc-content-crc32c),
    a fraction of the CPU of an MD5 over every byte; the service still computes its own MD5 to report."""
    checksum = crc32c.crc32c(data).to_bytes(4, "big")
    return {"opc_checksum_algorithm": "CRC32C", "opc_content_crc32c": base64.b64encode(checksum).decode()}


def body(data: bytes | memoryview) -> bytes | ViewBody:
    """What the SDK is handed to send `data`: bytes as they are; a view (of a buffer filled again once the
    call returns) as a ViewBody, since the SDK refuses a memoryview and copying it would cost its bytes."""
    return data if isinstance(data, bytes) else ViewBody(data)


class ViewBody:
    """A request body read from a view without copying it, in the blocks the connection asks for; a retry
    seeks it back to where it started (calls.BoundedRetry)."""

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._at = 0

    def __len__(self) -> int:
        return len(self._view) - self._at  # what `requests` sends as its length

    def read(self, size: int = -1) -> memoryview:
        end = len(self._view) if size is None or size < 0 else min(self._at + size, len(self._view))
        block, self._at = self._view[self._at : end], end
        return block

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0 or not 0 <= offset <= len(self._view):
            raise ValueError(
                f"a request body seeks only to a position from its start, not {offset}, {whence}"
            )
        self._at = offset
        return offset


class MultipartUpload:
    """One multipart upload of `name` (bucket and client from the store that starts it)."""

    def __init__(
        self,
        client: Any,
        namespace: str,
        bucket: str,
        name: str,
        parallelism: int,
        max_parts: int = MAX_PARTS,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.bucket = bucket
        self.name = name
        self.parallelism = parallelism
        self.max_parts = max_parts  # Object Storage's limit; lower only in tests

    def run(self, parts: Iterator[bytes], content_type: str) -> ObjectInfo:
        upload_id = start(self.client, self.namespace, self.bucket, self.name, content_type)
        try:
            size, committed = self._upload_parts(upload_id, parts)
            return commit(self.client, self.namespace, self.bucket, self.name, upload_id, committed, size)
        except BaseException:
            self._abort(upload_id)
            raise

    def _upload_parts(self, upload_id: str, parts: Iterator[bytes]) -> tuple[int, list[tuple[int, str]]]:
        committed: list[tuple[int, str]] = []
        pending: set[Future[tuple[int, str]]] = set()
        size = number = 0
        with ThreadPoolExecutor(self.parallelism, thread_name_prefix="upload-part") as pool:
            try:
                while True:
                    pending = _settle(pending, committed, until_below=self.parallelism)
                    part = next(parts, None)  # read only once a worker is free: this bounds memory
                    if part is None:
                        break
                    number += 1
                    if number > self.max_parts:
                        raise UnsafeInputError(
                            f"{self.name} needs more than {self.max_parts} parts; raise UPLOAD_PART_MB"
                        )
                    size += len(part)
                    pending.add(pool.submit(self._upload_part, upload_id, number, part))
                    del part
                _settle(pending, committed, until_below=1)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return size, sorted(committed)

    def _upload_part(self, upload_id: str, number: int, part: bytes) -> tuple[int, str]:
        return number, put_part(self.client, self.namespace, self.bucket, self.name, upload_id, number, part)

    def _abort(self, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(self.namespace, self.bucket, self.name, upload_id)
        except Exception:  # the original failure matters more; a lifecycle rule reaps leftovers
            log.warning("could not abort multipart upload", extra={"object": self.name}, exc_info=True)


def _settle(
    pending: set[Future[tuple[int, str]]], committed: list[tuple[int, str]], *, until_below: int
) -> set[Future[tuple[int, str]]]:
    """Wait until fewer than `until_below` parts are in flight; re-raise the first part that failed."""
    while pending and len(pending) >= until_below:
        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
        committed.extend(future.result() for future in finished)
    return pending


# The three calls of one upload, also used directly by callers that keep the parts between invocations.


def start(client: Any, namespace: str, bucket: str, name: str, content_type: str) -> str:
    details = CreateMultipartUploadDetails(object=name, content_type=content_type)
    with translated(f"start multipart upload of {name}"):
        return str(client.create_multipart_upload(namespace, bucket, details).data.upload_id)


def put_part(
    client: Any, namespace: str, bucket: str, name: str, upload_id: str, number: int, part: bytes | memoryview
) -> str:
    """Upload (or upload again: the last one wins) part `number`; its ETag."""
    with translated(f"upload part {number} of {name}"):
        response = client.upload_part(
            namespace,
            bucket,
            name,
            upload_id,
            number,
            body(part),
            content_length=len(part),
            **integrity(part),
        )
    return str(response.headers["etag"])


def commit(
    client: Any,
    namespace: str,
    bucket: str,
    name: str,
    upload_id: str,
    parts: Iterable[tuple[int, str]],
    size: int,
) -> ObjectInfo:
    """The object made of `parts` ((number, etag), in order), `size` bytes in all.

    A commit that took effect but whose answer was lost is retried into NoSuchUpload (the upload is gone,
    made into the object): the object it left, of that size and that many parts, is recognised as its own.
    """
    committed = list(parts)
    done = CommitMultipartUploadDetails(
        parts_to_commit=[CommitMultipartUploadPartDetails(part_num=n, etag=e) for n, e in committed]
    )
    try:
        with translated(f"commit multipart upload of {name}"):
            response = client.commit_multipart_upload(namespace, bucket, name, upload_id, done)
    except NotFoundError:
        made = _made(client, namespace, bucket, name)
        if made is None or made.size != size or not (made.md5 or "").endswith(f"-{len(committed)}"):
            raise
        log.info("multipart commit recognised by its object", extra={"object": name})
        return made
    return ObjectInfo(name, size, response.headers["etag"], response.headers.get("opc-multipart-md5"))


def _made(client: Any, namespace: str, bucket: str, name: str) -> ObjectInfo | None:
    try:
        with translated(f"head object {name}"):
            headers = client.head_object(namespace, bucket, name).headers
    except NotFoundError:
        return None
    md5 = headers.get("opc-multipart-md5") or headers.get("opc-content-md5")
    return ObjectInfo(name, int(headers["content-length"]), str(headers["etag"]), md5)
