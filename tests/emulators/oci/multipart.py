"""Multipart uploads: parts stream to files under root/.uploads/<uploadId>/, never whole into memory.

The conditions given at CreateMultipartUpload (if-match, if-none-match) are checked at create and
checked again when the commit moves the object into place, so racing uploads cannot both win.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from fusion_extract.clock import Clock, IdFactory, isoformat
from tests.emulators.oci.buckets import BucketStore, Conditions, ObjectMeta
from tests.emulators.oci.http import ServiceError

MAX_PARTS = 10_000
CHUNK = 1 << 20


@dataclass(frozen=True)
class Part:
    number: int
    etag: str
    md5: bytes
    size: int
    path: Path

    def summary(self) -> dict[str, Any]:
        return {
            "partNumber": self.number,
            "etag": self.etag,
            "md5": base64.b64encode(self.md5).decode(),
            "size": self.size,
        }


@dataclass
class Upload:
    upload_id: str
    namespace: str
    bucket: str
    name: str
    created: str
    conditions: Conditions
    headers: dict[str, str]
    opc_meta: dict[str, str]
    parts: dict[int, Part] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "bucket": self.bucket,
            "object": self.name,
            "uploadId": self.upload_id,
            "timeCreated": self.created,
            "storageTier": "Standard",
        }


class Uploads:
    def __init__(self, store: BucketStore, namespace: str, clock: Clock, new_id: IdFactory) -> None:
        self.store = store
        self.namespace = namespace
        self.clock = clock
        self.new_id = new_id
        self.folder = store.root / ".uploads"
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()

    def create(
        self,
        bucket: str,
        name: str,
        conditions: Conditions,
        headers: dict[str, str],
        opc_meta: dict[str, str],
    ) -> Upload:
        self.store.data_path(bucket, name)  # validates the name
        conditions.check(self.store.head(bucket, name))
        upload = Upload(
            self.new_id(),
            self.namespace,
            bucket,
            name,
            isoformat(self.clock.now()),
            conditions,
            headers,
            opc_meta,
        )
        (self.folder / upload.upload_id).mkdir(parents=True)
        with self._lock:
            self._uploads[upload.upload_id] = upload
        return upload

    def get(self, bucket: str, name: str, upload_id: str) -> Upload:
        upload = self._uploads.get(upload_id)
        if upload is None or (upload.bucket, upload.name) != (bucket, name):
            raise ServiceError(404, "NoSuchUpload", f"no upload {upload_id!r} for object {name!r}")
        return upload

    def in_bucket(self, bucket: str) -> list[Upload]:
        with self._lock:
            return sorted((u for u in self._uploads.values() if u.bucket == bucket), key=lambda u: u.name)

    def put_part(self, upload: Upload, number: int, chunks: Iterator[bytes], headers: Message) -> Part:
        if not 1 <= number <= MAX_PARTS:
            raise ServiceError(
                400, "InvalidParameter", f"uploadPartNum must be 1 to {MAX_PARTS}, not {number}"
            )
        received = self.store.receive(chunks)
        try:
            received.verify(headers)
        except ServiceError:
            received.path.unlink()
            raise
        part = Part(
            number,
            self.store.new_etag(),
            received.md5,
            received.size,
            self.folder / upload.upload_id / str(number),
        )
        received.path.replace(part.path)
        with self._lock:
            upload.parts[number] = part
        return part

    def commit(self, upload: Upload, details: Any) -> ObjectMeta:
        """The chosen parts become the object, moved, not copied (BucketStore.commit_parts)."""
        parts = self._chosen_parts(upload, details)
        digest = hashlib.md5(b"".join(p.md5 for p in parts)).digest()
        meta = self.store.commit_parts(
            upload.bucket,
            upload.name,
            [p.path for p in parts],
            upload.conditions,
            md5=f"{base64.b64encode(digest).decode()}-{len(parts)}",
            headers=upload.headers,
            opc_meta=upload.opc_meta,
        )
        self.abort(upload)
        return meta

    def abort(self, upload: Upload) -> None:
        with self._lock:
            self._uploads.pop(upload.upload_id, None)
        shutil.rmtree(self.folder / upload.upload_id, ignore_errors=True)

    @staticmethod
    def _chosen_parts(upload: Upload, details: Any) -> list[Part]:
        """The parts to commit, in order; every uploaded part must be committed or excluded, not both."""
        if not isinstance(details, dict) or not isinstance(details.get("partsToCommit"), list):
            raise ServiceError(400, "InvalidParameter", "partsToCommit is required")
        wanted = {int(p["partNum"]): str(p["etag"]) for p in details["partsToCommit"]}
        excluded = set(details.get("partsToExclude") or [])
        if not wanted:
            raise ServiceError(400, "InvalidParameter", "partsToCommit must name at least one part")
        if wanted.keys() & excluded:
            raise ServiceError(400, "InvalidParameter", "a part cannot be both committed and excluded")
        unaccounted = upload.parts.keys() - wanted.keys() - excluded
        if unaccounted:
            raise ServiceError(
                400, "InvalidParameter", f"parts {sorted(unaccounted)} are neither committed nor excluded"
            )
        for number, etag in wanted.items():
            part = upload.parts.get(number)
            if part is None or part.etag != etag:
                raise ServiceError(
                    400, "InvalidUploadPart", f"part {number} with ETag {etag!r} was not uploaded"
                )
        return [upload.parts[n] for n in sorted(wanted)]
