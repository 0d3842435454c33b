"""ports.ObjectStore over one OCI Object Storage bucket.

Names are checked against Object Storage's rules before any call. SDK failures become product errors
(calls.product_error): 404 NotFoundError, 409/412 ConflictError, 429/5xx TransientError.
Deletes are idempotent (a missing object is already deleted), so a retried delete cannot fail a step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import urllib3
from oci.object_storage.models import RenameObjectDetails

from fusion_extract.chunks import exact_parts
from fusion_extract.errors import (
    ConflictError,
    IntegrityError,
    NotFoundError,
    TransientError,
    UnsafeInputError,
)
from fusion_extract.oci import multipart
from fusion_extract.oci.calls import CONNECTION_ERRORS, translated
from fusion_extract.oci.multipart import MultipartUpload, body, integrity
from fusion_extract.oci.names import name_prefix, object_name
from fusion_extract.ports import ObjectInfo

MiB = 2**20
READ_CHUNK = MiB
LIST_FIELDS = "name,size,etag,md5"


class OciObjectStore:
    """One bucket. upload_stream holds about (parallelism + 1) * part_size bytes at most."""

    def __init__(
        self,
        client: Any,
        namespace: str,
        bucket: str,
        part_size: int = 16 * MiB,
        parallelism: int = 3,
        *,
        page_size: int = 1000,
    ) -> None:
        if min(part_size, parallelism, page_size) <= 0:
            raise ValueError("part_size, parallelism and page_size must be positive")
        self.client = client
        self.namespace = namespace
        self.bucket = bucket
        self.part_size = part_size
        self.parallelism = parallelism
        self.page_size = page_size  # objects per list request (OCI's maximum is 1000)

    def get_bytes(self, name: str) -> tuple[bytes, str]:
        with translated(f"get object {object_name(name)}"):
            response = self.client.get_object(self.namespace, self.bucket, name)
            return response.data.content, str(response.headers["etag"])

    def open(self, name: str) -> Iterator[bytes]:
        # The request is made here, so a missing object fails now, not at the first chunk.
        with translated(f"get object {object_name(name)}"):
            response = self.client.get_object(self.namespace, self.bucket, name)
        return _chunks(response.data, name)

    def read_range(self, name: str, start: int, end: int, *, if_match: str | None = None) -> Iterator[bytes]:
        if not 0 <= start < end:
            raise ValueError(f"byte range {start}-{end} of {name} is empty or negative")
        with translated(f"get object {object_name(name)} bytes {start}-{end - 1}"):
            response = self.client.get_object(
                self.namespace, self.bucket, name, range=f"bytes={start}-{end - 1}", if_match=if_match
            )
        return _chunks(response.data, name)

    def start_upload(self, name: str, *, content_type: str = "application/octet-stream") -> str:
        return multipart.start(self.client, self.namespace, self.bucket, object_name(name), content_type)

    def upload_part(self, name: str, upload_id: str, number: int, data: bytes | memoryview) -> str:
        return multipart.put_part(self.client, self.namespace, self.bucket, name, upload_id, number, data)

    def commit_upload(
        self, name: str, upload_id: str, parts: Sequence[tuple[int, str]], size: int
    ) -> ObjectInfo:
        return multipart.commit(self.client, self.namespace, self.bucket, name, upload_id, parts, size)

    def head(self, name: str) -> ObjectInfo | None:
        try:
            with translated(f"head object {object_name(name)}"):
                headers = self.client.head_object(self.namespace, self.bucket, name).headers
        except NotFoundError:
            return None
        md5 = headers.get("opc-content-md5") or headers.get("opc-multipart-md5")
        return ObjectInfo(name, int(headers["content-length"]), str(headers["etag"]), md5)

    def put_bytes(
        self,
        name: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        content_type: str = "application/octet-stream",
    ) -> str:
        return str(self._put(name, data, if_match, if_none_match, content_type)["etag"])

    def _put(
        self,
        name: str,
        data: bytes | memoryview,
        if_match: str | None,
        if_none_match: bool,
        content_type: str,
    ) -> Mapping[str, str]:
        with translated(f"put object {object_name(name)}"):
            response = self.client.put_object(
                self.namespace,
                self.bucket,
                name,
                body(data),
                content_length=len(data),
                content_type=content_type,
                if_match=if_match,
                if_none_match="*" if if_none_match else None,
                **integrity(data),
            )
        headers: Mapping[str, str] = response.headers
        return headers

    def put_whole(
        self, name: str, data: bytes | memoryview, *, content_type: str = "application/octet-stream"
    ) -> ObjectInfo:
        """One PutObject (up to 50 GiB): its ETag and MD5 come with the answer, so nothing is looked up."""
        headers = self._put(name, data, None, False, content_type)
        return ObjectInfo(name, len(data), str(headers["etag"]), headers.get("opc-content-md5"))

    def upload_stream(
        self, name: str, chunks: Iterable[bytes], *, content_type: str = "application/octet-stream"
    ) -> ObjectInfo:
        """Under one part: a plain put (real MD5, one request). Otherwise multipart, parallel, bounded."""
        object_name(name)
        parts = exact_parts(chunks, self.part_size)
        held = [next(parts, b"")]  # a list, so that the multipart path can take the part out of this frame
        if len(held[0]) < self.part_size:
            return self.put_whole(name, held.pop(), content_type=content_type)
        upload = MultipartUpload(self.client, self.namespace, self.bucket, name, self.parallelism)
        return upload.run(_prepend(held, parts), content_type)

    def promote(self, source: str, target: str, staged: ObjectInfo | None = None) -> None:
        """Rename create-only; a re-run finding its own content already there just drops the staged copy.

        `staged`: what the upload of `source` returned, which spares looking it up again.
        """
        object_name(target)
        staged = staged or self.head(source)
        if staged is None:
            if self.head(target) is not None:
                return  # promoted by an earlier run
            raise NotFoundError(f"cannot promote {source}: it does not exist")
        details = RenameObjectDetails(
            source_name=source,
            new_name=target,
            src_obj_if_match_e_tag=staged.etag,
            new_obj_if_none_match_e_tag="*",
        )
        try:
            with translated(f"rename {source} to {target}"):
                self.client.rename_object(self.namespace, self.bucket, details)
        except (ConflictError, NotFoundError):
            existing = self.head(target)
            if existing is None:  # not a race with another promoter: the staged copy is not what was made
                raise IntegrityError(
                    f"cannot promote {source}: it changed or vanished since it was staged"
                ) from None
            if not _same_content(staged, existing):
                raise UnsafeInputError(
                    f"refusing to overwrite a different object: {target} exists with other content"
                ) from None
            self.delete(source, if_match=staged.etag)

    def delete(self, name: str, *, if_match: str | None = None) -> None:
        try:
            with translated(f"delete object {object_name(name)}"):
                self.client.delete_object(self.namespace, self.bucket, name, if_match=if_match)
        except NotFoundError:
            pass  # already gone: deleting is idempotent

    def list(self, prefix: str, *, start: str | None = None) -> Iterator[ObjectInfo]:
        return self._pages(name_prefix(prefix), start)

    def abort_uploads(self, prefix: str) -> int:
        """Abort every unfinished multipart upload of an object under the prefix; how many there were.

        A transfer killed mid-upload leaves its upload open (and billed) until someone aborts it.
        """
        name_prefix(prefix)
        aborted, page = 0, None
        while True:
            with translated("list multipart uploads"):
                response = self.client.list_multipart_uploads(
                    self.namespace, self.bucket, limit=1000, page=page
                )
            for upload in response.data:
                if upload.object.startswith(prefix):
                    with contextlib.suppress(NotFoundError), translated(f"abort upload of {upload.object}"):
                        self.client.abort_multipart_upload(
                            self.namespace, self.bucket, upload.object, upload.upload_id
                        )
                    aborted += 1
            page = response.headers.get("opc-next-page")
            if not page:
                return aborted

    def _pages(self, prefix: str, start: str | None) -> Iterator[ObjectInfo]:
        while True:
            with translated(f"list objects under {prefix!r}"):
                page = self.client.list_objects(
                    self.namespace,
                    self.bucket,
                    prefix=prefix or None,
                    start=start,
                    limit=self.page_size,
                    fields=LIST_FIELDS,
                ).data
            for item in page.objects:
                yield ObjectInfo(item.name, int(item.size), str(item.etag), item.md5)
            start = page.next_start_with
            if not start:
                return


def _same_content(a: ObjectInfo, b: ObjectInfo) -> bool:
    return a.size == b.size and a.md5 is not None and a.md5 == b.md5


def _prepend(held: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield held.pop()  # nothing keeps the first part alive once it is uploaded
    yield from rest


def _chunks(response: Any, name: str) -> Iterator[bytes]:
    """The body in chunks of at most READ_CHUNK; a dropped connection is a TransientError."""
    try:
        yield from response.raw.stream(READ_CHUNK, decode_content=False)
    except (urllib3.exceptions.HTTPError, OSError, *CONNECTION_ERRORS) as exc:
        raise TransientError(f"read object {name}: connection dropped ({type(exc).__name__})") from exc
    finally:
        response.close()
