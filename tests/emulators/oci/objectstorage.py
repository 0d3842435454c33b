"""Object Storage (the paths and headers oci 2.189.0's ObjectStorageClient uses), backed by BucketStore.

Object names arrive percent-encoded in the path (the SDK encodes '/' as %2F); they are decoded here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from email.utils import format_datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

from fusion_extract.clock import Clock, IdFactory, isoformat, parse_iso
from tests.emulators.oci.buckets import BucketStore, Conditions, ObjectMeta, check_object_name
from tests.emulators.oci.http import Handler, Request, Response, Route, ServiceError
from tests.emulators.oci.listing import list_page, parse_limit
from tests.emulators.oci.multipart import CHUNK, Upload, Uploads

STORED_HEADERS = (
    "content-type",
    "content-language",
    "content-encoding",
    "content-disposition",
    "cache-control",
)
_BUCKET = r"/n/(?P<ns>[^/]+)/b/(?P<bucket>[^/]+)"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _route(method: str, pattern: str, handler: Handler) -> Route:
    return (method, re.compile(pattern), handler)


class ObjectStorage:
    def __init__(self, root: Path, namespace: str, clock: Clock, new_etag: IdFactory) -> None:
        self.namespace = namespace
        self.store = BucketStore(root, clock, new_etag)
        self.uploads = Uploads(self.store, namespace, clock, new_etag)
        obj, upload = _BUCKET + r"/o/(?P<name>.+)", _BUCKET + r"/u/(?P<name>.+)"
        self.routes: list[Route] = [
            _route("GET", r"/n/?", self._get_namespace),
            _route("GET", _BUCKET + "/?", self._get_bucket),
            _route("HEAD", _BUCKET + "/?", self._get_bucket),
            _route("GET", _BUCKET + "/o/?", self._list_objects),
            _route("PUT", obj, self._put_object),
            _route("GET", obj, self._get_object),
            _route("HEAD", obj, self._get_object),
            _route("DELETE", obj, self._delete_object),
            _route("POST", _BUCKET + "/actions/renameObject", self._rename_object),
            _route("POST", _BUCKET + "/u/?", self._create_upload),
            _route("GET", _BUCKET + "/u/?", self._list_uploads),
            _route("PUT", upload, self._upload_part),
            _route("POST", upload, self._commit_upload),
            _route("DELETE", upload, self._abort_upload),
            _route("GET", upload, self._list_parts),
            _route("GET", _BUCKET + "/l", self._get_lifecycle),
            _route("PUT", _BUCKET + "/l", self._put_lifecycle),
        ]
        self.lifecycle: dict[str, tuple[str, list[dict[str, Any]]]] = {}  # bucket -> (timeCreated, items)

    def create_bucket(self, name: str) -> None:
        self.store.create_bucket(name)

    def object_path(self, bucket: str, name: str) -> Path:
        """The file of the object `name` (or the folder of the objects under it), whole."""
        self.store.materialise(bucket, name)
        return self.store.data_path(bucket, name)

    def set_lifecycle(self, bucket: str, rules: list[dict[str, Any]]) -> None:
        """PutObjectLifecyclePolicy in-process (Terraform's oci_objectstorage_object_lifecycle_policy)."""
        self.store.require_bucket(bucket)
        self.lifecycle[bucket] = (isoformat(self.store.clock.now()), list(rules))

    def lifecycle_rules(self, bucket: str) -> list[dict[str, Any]]:
        """The bucket's lifecycle rules (none without a policy)."""
        return list(self.lifecycle.get(bucket, ("", []))[1])

    # -- lifecycle policy --------------------------------------------------------------------------

    def _get_lifecycle(self, request: Request, match: re.Match[str]) -> Response:
        bucket = self._bucket(match)
        if bucket not in self.lifecycle:
            raise ServiceError(
                404, "LifecyclePolicyNotFound", f"There is no lifecycle policy for the bucket '{bucket}'"
            )
        created, items = self.lifecycle[bucket]
        return Response.json(200, {"timeCreated": created, "items": items})

    def _put_lifecycle(self, request: Request, match: re.Match[str]) -> Response:
        bucket = self._bucket(match)
        body = request.json()
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ServiceError(400, "InvalidParameter", "items must be a list of lifecycle rules")
        self.set_lifecycle(bucket, items)
        created, rules = self.lifecycle[bucket]
        return Response.json(200, {"timeCreated": created, "items": rules})

    # -- namespace, bucket, object -----------------------------------------------------------------

    def _get_namespace(self, request: Request, match: re.Match[str]) -> Response:
        return Response.json(200, self.namespace)

    def _get_bucket(self, request: Request, match: re.Match[str]) -> Response:
        bucket = self._bucket(match)
        return Response.json(
            200,
            {"namespace": self.namespace, "name": bucket, "publicAccessType": "NoPublicAccess"},
            {"etag": f"bucket-{bucket}"},
        )

    def _put_object(self, request: Request, match: re.Match[str]) -> Response:
        bucket, name = self._object(match)  # a bad name is refused before the body is read
        conditions = _conditions(request.headers)
        body = self.store.receive(request.stream())
        try:
            body.verify(request.headers)
            meta = self.store.commit(
                bucket,
                name,
                body,
                conditions,
                md5=body.md5_base64,
                headers=_stored_headers(request.headers),
                opc_meta=_opc_meta(request.headers),
            )
        finally:
            body.path.unlink(missing_ok=True)
        return Response(200, headers=_write_headers(meta))

    def _get_object(self, request: Request, match: re.Match[str]) -> Response:
        bucket, name = self._object(match)
        if request.method == "HEAD":
            meta = self.store.require(bucket, name)
            return _unmodified(request.headers, meta) or Response(
                200, [], _read_headers(meta), length=meta.size
            )
        meta, data = self.store.open(bucket, name)
        try:
            unmodified = _unmodified(request.headers, meta)
            if unmodified is not None:
                data.close()
                return unmodified
            start, end = _byte_range(request.headers.get("range"), meta.size)
        except BaseException:
            data.close()
            raise
        headers = _read_headers(meta)
        status = 200
        if (start, end) != (0, meta.size):
            status, headers["content-range"] = 206, f"bytes {start}-{end - 1}/{meta.size}"
        return Response(status, _read_span(data, start, end), headers, length=end - start)

    def _delete_object(self, request: Request, match: re.Match[str]) -> Response:
        bucket, name = self._object(match)
        self.store.delete(bucket, name, _conditions(request.headers))
        return Response(204)

    def _rename_object(self, request: Request, match: re.Match[str]) -> Response:
        bucket = self._bucket(match)
        details = request.json()
        if not isinstance(details, dict) or not details.get("sourceName") or not details.get("newName"):
            raise ServiceError(400, "InvalidParameter", "sourceName and newName are required")
        source, target = str(details["sourceName"]), str(details["newName"])
        check_object_name(source)
        check_object_name(target)
        none_match = details.get("newObjIfNoneMatchETag")
        if none_match not in (None, "*"):
            raise ServiceError(400, "InvalidParameter", "newObjIfNoneMatchETag may only be '*'")
        onto = Conditions(if_match=details.get("newObjIfMatchETag"), if_none_match=none_match == "*")
        self.store.rename(bucket, source, target, details.get("srcObjIfMatchETag"), onto)
        return Response(200)

    def _list_objects(self, request: Request, match: re.Match[str]) -> Response:
        return Response.json(200, list_page(self.store, self._bucket(match), request.query))

    # -- multipart ---------------------------------------------------------------------------------

    def _create_upload(self, request: Request, match: re.Match[str]) -> Response:
        bucket = self._bucket(match)
        details = request.json()
        if not isinstance(details, dict) or not isinstance(details.get("object"), str):
            raise ServiceError(400, "InvalidParameter", "the body must name the 'object'")
        headers = {
            header: details[key]
            for header, key in zip(STORED_HEADERS, _CAMEL_HEADERS, strict=True)
            if isinstance(details.get(key), str)
        }
        opc_meta = {str(k).lower(): str(v) for k, v in (details.get("metadata") or {}).items()}
        upload = self.uploads.create(
            bucket, details["object"], _conditions(request.headers), headers, opc_meta
        )
        return Response.json(
            200, upload.summary(), {"location": f"/n/{self.namespace}/b/{bucket}/u/{upload.name}"}
        )

    def _list_uploads(self, request: Request, match: re.Match[str]) -> Response:
        bucket = self._bucket(match)
        limit = parse_limit(request.query.get("limit"))
        return Response.json(200, [u.summary() for u in self.uploads.in_bucket(bucket)][:limit])

    def _upload_part(self, request: Request, match: re.Match[str]) -> Response:
        upload = self._upload(request, match)
        number = request.query.get("uploadPartNum", "")
        if not number.isdigit():
            raise ServiceError(400, "InvalidParameter", "uploadPartNum must be a number")
        part = self.uploads.put_part(upload, int(number), request.stream(), request.headers)
        return Response(200, headers={"etag": part.etag, "opc-content-md5": part.summary()["md5"]})

    def _commit_upload(self, request: Request, match: re.Match[str]) -> Response:
        upload = self._upload(request, match)
        meta = self.uploads.commit(upload, request.json())
        return Response(
            200,
            headers={
                "etag": meta.etag,
                "opc-multipart-md5": meta.md5,
                "last-modified": _http_date(meta.modified),
            },
        )

    def _abort_upload(self, request: Request, match: re.Match[str]) -> Response:
        self.uploads.abort(self._upload(request, match))
        return Response(204)

    def _list_parts(self, request: Request, match: re.Match[str]) -> Response:
        upload = self._upload(request, match)
        limit = parse_limit(request.query.get("limit"))
        after = int(request.query.get("page") or 0)
        parts = [p for n, p in sorted(upload.parts.items()) if n > after]
        headers = {"opc-next-page": str(parts[limit - 1].number)} if len(parts) > limit else {}
        return Response.json(200, [p.summary() for p in parts[:limit]], headers)

    # -- helpers -----------------------------------------------------------------------------------

    def _bucket(self, match: re.Match[str]) -> str:
        if match["ns"] != self.namespace:
            raise ServiceError(404, "BucketNotFound", f"namespace {match['ns']!r} does not exist here")
        bucket = unquote(match["bucket"])
        self.store.require_bucket(bucket)
        return bucket

    def _object(self, match: re.Match[str]) -> tuple[str, str]:
        """The bucket and the decoded, validated object name."""
        bucket = self._bucket(match)
        try:
            name = unquote(match["name"], errors="strict")
        except UnicodeDecodeError:
            raise ServiceError(400, "InvalidParameter", "the object name is not valid UTF-8") from None
        check_object_name(name)
        return bucket, name

    def _upload(self, request: Request, match: re.Match[str]) -> Upload:
        bucket, name = self._object(match)
        return self.uploads.get(bucket, name, request.query.get("uploadId", ""))


_CAMEL_HEADERS = ("contentType", "contentLanguage", "contentEncoding", "contentDisposition", "cacheControl")


def _conditions(headers: Message) -> Conditions:
    none_match = headers.get("if-none-match")
    if none_match not in (None, "*"):
        raise ServiceError(400, "InvalidParameter", "if-none-match may only be '*' on writes")
    return Conditions(if_match=headers.get("if-match"), if_none_match=none_match == "*")


def _unmodified(headers: Message, meta: ObjectMeta) -> Response | None:
    """A conditional read's answer (412, or 304 without a body), or None to go on."""
    if headers.get("if-match") not in (None, meta.etag):
        raise ServiceError(412, "IfMatchFailed", f"the object's ETag is not {headers.get('if-match')!r}")
    if headers.get("if-none-match") in ("*", meta.etag):
        return Response(304, headers={"etag": meta.etag})
    return None


def _byte_range(header: str | None, size: int) -> tuple[int, int]:
    """[start, end) for a `Range: bytes=a-b` header; the whole object without one."""
    if header is None:
        return 0, size
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.groups() == ("", ""):
        raise ServiceError(416, "InvalidRange", f"unsupported range {header!r}; use bytes=start-end")
    first, last = match.groups()
    if not first:
        start, end = max(size - int(last), 0), size
    else:
        start, end = int(first), min(int(last) + 1, size) if last else size
    if start >= size or start >= end:
        raise ServiceError(416, "InvalidRange", f"range {header!r} is outside the object's {size} bytes")
    return start, end


def _read_span(data: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    with data:
        data.seek(start)
        left = end - start
        while left > 0 and (chunk := data.read(min(CHUNK, left))):
            left -= len(chunk)
            yield chunk


def _stored_headers(headers: Message) -> dict[str, str]:
    return {name: value for name in STORED_HEADERS if (value := headers.get(name)) is not None}


def _opc_meta(headers: Message) -> dict[str, str]:
    return {
        k.lower().removeprefix("opc-meta-"): v
        for k, v in headers.items()
        if k.lower().startswith("opc-meta-")
    }


def _http_date(iso: str) -> str:
    return format_datetime(parse_iso(iso), usegmt=True)


def _write_headers(meta: ObjectMeta) -> dict[str, str]:
    md5_header = "opc-multipart-md5" if meta.multipart else "opc-content-md5"
    return {"etag": meta.etag, md5_header: meta.md5, "last-modified": _http_date(meta.modified)}


def _read_headers(meta: ObjectMeta) -> dict[str, str]:
    return {
        "content-type": "application/octet-stream",
        **meta.headers,
        **_write_headers(meta),
        "accept-ranges": "bytes",
        "storage-tier": "Standard",
        **{f"opc-meta-{key}": value for key, value in meta.opc_meta.items()},
    }
