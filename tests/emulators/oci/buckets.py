"""Object Storage state on disk, so a person can open what landed.

    root/<bucket>/<object name>          the object's bytes, nothing else
    root/.meta/<bucket>/<object name>    its metadata (JSON): etag, md5, size, times, headers, opc-meta
    root/.tmp/                           bodies being received, moved into place with os.replace

Bodies are received outside the lock; the lock guards the short step that checks the write's conditions
and moves data and metadata into place, so of two conditional writers racing on one name exactly one wins.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from email.message import Message
from pathlib import Path
from typing import BinaryIO

import crc32c

from fusion_extract.clock import Clock, IdFactory, isoformat
from tests.emulators.oci.http import ServiceError

_BUCKET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,255}")
MAX_NAME_BYTES = 1024
MAX_COMPONENT_BYTES = 255  # a file system limit the emulator has and OCI has not


@dataclass
class ObjectMeta:
    size: int
    etag: str
    md5: str  # base64 MD5 of the bytes; '<base64>-<parts>' for a multipart object
    multipart: bool
    created: str  # ISO-8601
    modified: str
    headers: dict[str, str] = field(default_factory=dict)  # content-type and friends, as sent
    opc_meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Conditions:
    """A write's preconditions on the object it replaces: `if-match` ETag, `if-none-match: *`."""

    if_match: str | None = None
    if_none_match: bool = False

    def check(self, current: ObjectMeta | None) -> None:
        if self.if_match is not None and (current is None or current.etag != self.if_match):
            raise ServiceError(412, "IfMatchFailed", f"the object's ETag does not match {self.if_match!r}")
        if self.if_none_match and current is not None:
            raise ServiceError(412, "IfNoneMatchFailed", "the object already exists (if-none-match: *)")


@dataclass(frozen=True)
class Received:
    """A body written to a scratch file."""

    path: Path
    size: int
    md5: bytes
    crc32c: int = 0

    @property
    def md5_base64(self) -> str:
        return base64.b64encode(self.md5).decode()

    @property
    def crc32c_base64(self) -> str:
        """As opc-content-crc32c carries it: base64 of the 4 big-endian bytes."""
        return base64.b64encode(self.crc32c.to_bytes(4, "big")).decode()

    def verify(self, headers: Message) -> None:
        """The body against the checksums its request declared (Content-MD5, opc-content-crc32c), as
        Object Storage checks them: 400 and nothing stored when one does not match."""
        expected_md5 = headers.get("content-md5")
        if expected_md5 is not None and expected_md5 != self.md5_base64:
            raise ServiceError(400, "UnmatchedContentMD5", "Content-MD5 does not match the body received")
        algorithm = (headers.get("opc-checksum-algorithm") or "").upper()
        expected_crc = headers.get("opc-content-crc32c")
        if algorithm == "CRC32C" and expected_crc is not None and expected_crc != self.crc32c_base64:
            raise ServiceError(
                400,
                "UnmatchedContentCRC32C",
                f"The computed CRC32C of the request body ({self.crc32c_base64}) does not match "
                f"the opc-content-crc32c header ({expected_crc})",
            )


def check_object_name(name: str) -> None:
    """OCI's naming rules, plus what a file tree cannot hold (400 with the reason)."""
    problem = None
    if not name or len(name.encode()) > MAX_NAME_BYTES:
        problem = f"must be 1 to {MAX_NAME_BYTES} bytes of UTF-8"
    elif any(c in name for c in "\n\r\0"):
        problem = "must not contain line feed, carriage return or NUL"
    elif name.endswith("/"):
        problem = "ends with '/': the emulator keeps objects as files and cannot store a folder marker"
    elif any(part in ("", ".", "..") for part in name.split("/")):
        problem = "has an empty, '.' or '..' path segment, which the emulator cannot store as a file"
    elif any(len(part.encode()) > MAX_COMPONENT_BYTES for part in name.split("/")):
        problem = f"has a path segment longer than {MAX_COMPONENT_BYTES} bytes (a file system limit)"
    if problem:
        raise ServiceError(400, "InvalidParameter", f"object name {name!r} {problem}")


class BucketStore:
    def __init__(self, root: Path, clock: Clock, new_etag: IdFactory) -> None:
        self.root = root
        self.clock = clock
        self.new_etag = new_etag
        self.lock = threading.RLock()
        self._scratch = root / ".tmp"
        self._scratch.mkdir(parents=True, exist_ok=True)

    # -- buckets and paths -------------------------------------------------------------------------

    def create_bucket(self, bucket: str) -> None:
        if not _BUCKET_NAME.fullmatch(bucket):
            raise ValueError(f"invalid bucket name {bucket!r}: letters, digits, '-', '_', '.'; at most 256")
        (self.root / bucket).mkdir(parents=True, exist_ok=True)
        (self.root / ".meta" / bucket).mkdir(parents=True, exist_ok=True)

    def require_bucket(self, bucket: str) -> None:
        if not _BUCKET_NAME.fullmatch(bucket) or not (self.root / ".meta" / bucket).is_dir():
            raise ServiceError(
                404, "BucketNotFound", f"bucket {bucket!r} does not exist or is not authorized"
            )

    def data_path(self, bucket: str, name: str) -> Path:
        check_object_name(name)
        return self.root / bucket / name

    def _meta_path(self, bucket: str, name: str) -> Path:
        return self.root / ".meta" / bucket / name

    # -- reading -----------------------------------------------------------------------------------

    def head(self, bucket: str, name: str) -> ObjectMeta | None:
        path = self._meta_path(bucket, name)
        with self.lock:
            if not path.is_file():
                return None
            return ObjectMeta(**json.loads(path.read_text()))

    def require(self, bucket: str, name: str) -> ObjectMeta:
        meta = self.head(bucket, name)
        if meta is None:
            raise ServiceError(404, "ObjectNotFound", f"object {name!r} not found in bucket {bucket!r}")
        return meta

    def open(self, bucket: str, name: str) -> tuple[ObjectMeta, BinaryIO]:
        """Metadata and an open file that agree, even if a writer replaces the object meanwhile."""
        with self.lock:
            meta = self.require(bucket, name)
            return meta, self.data_path(bucket, name).open("rb")

    def names(self, bucket: str) -> list[str]:
        """Every object name in the bucket, in OCI's order (UTF-8 byte order = code point order)."""
        top = self.root / ".meta" / bucket
        with self.lock:
            found = [
                Path(folder, file).relative_to(top).as_posix()
                for folder, _, files in os.walk(top)
                for file in files
            ]
        return sorted(found)

    # -- writing -----------------------------------------------------------------------------------

    def receive(self, chunks: Iterable[bytes]) -> Received:
        """Write a body to a scratch file, hashing it on the way; the caller moves it or deletes it."""
        md5 = hashlib.md5()
        crc = size = 0
        handle, name = tempfile.mkstemp(dir=self._scratch)
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in chunks:
                    md5.update(chunk)
                    crc = crc32c.crc32c(chunk, crc)
                    size += len(chunk)
                    out.write(chunk)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Received(Path(name), size, md5.digest(), crc)

    def commit(
        self,
        bucket: str,
        name: str,
        body: Received,
        conditions: Conditions,
        *,
        md5: str,
        multipart: bool = False,
        headers: dict[str, str] | None = None,
        opc_meta: dict[str, str] | None = None,
    ) -> ObjectMeta:
        """Make the received body the object, if the conditions hold on the object it replaces."""
        target = self.data_path(bucket, name)
        now = isoformat(self.clock.now())
        meta = ObjectMeta(body.size, self.new_etag(), md5, multipart, now, now, headers or {}, opc_meta or {})
        with self.lock:
            conditions.check(self.head(bucket, name))
            self._make_room(bucket, name)
            body.path.replace(target)
            self._write_meta(bucket, name, meta)
        return meta

    def plant(self, bucket: str, name: str, data: bytes, md5: str) -> None:
        """Write a small object at once, unconditionally: a test's Given (no scratch file, no checks)."""
        now = isoformat(self.clock.now())
        meta = ObjectMeta(len(data), self.new_etag(), md5, False, now, now)
        with self.lock:
            self._make_room(bucket, name)
            self.data_path(bucket, name).write_bytes(data)
            self._meta_path(bucket, name).write_text(json.dumps(asdict(meta)))

    def delete(self, bucket: str, name: str, conditions: Conditions) -> None:
        with self.lock:
            conditions.check(self.require(bucket, name))
            self.data_path(bucket, name).unlink(missing_ok=True)
            self._meta_path(bucket, name).unlink()
            self._prune(bucket, name)

    def rename(
        self, bucket: str, source: str, target: str, source_if_match: str | None, onto: Conditions
    ) -> None:
        check_object_name(target)
        with self.lock:
            meta = self.require(bucket, source)
            Conditions(if_match=source_if_match).check(meta)
            if source == target:
                return
            onto.check(self.head(bucket, target))
            self._make_room(bucket, target)
            self.data_path(bucket, source).replace(self.data_path(bucket, target))
            meta.modified = isoformat(self.clock.now())
            self._write_meta(bucket, target, meta)
            self._meta_path(bucket, source).unlink()
            self._prune(bucket, source)

    def _make_room(self, bucket: str, name: str) -> None:
        """Create the object's folders; refuse a name whose file and folders collide with other objects."""
        bucket_dir, target = self.root / bucket, self.data_path(bucket, name)
        for folder in reversed(target.relative_to(bucket_dir).parents[:-1]):
            if (bucket_dir / folder).is_file():
                raise ServiceError(
                    400,
                    "InvalidParameter",
                    f"object {name!r} cannot be stored: object {folder.as_posix()!r} is a file where the "
                    "emulator needs a folder",
                )
        if target.is_dir():
            raise ServiceError(
                400,
                "InvalidParameter",
                f"object {name!r} cannot be stored: objects named {name + '/'!r}... use it as a folder",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        self._meta_path(bucket, name).parent.mkdir(parents=True, exist_ok=True)

    def _write_meta(self, bucket: str, name: str, meta: ObjectMeta) -> None:
        handle, temp = tempfile.mkstemp(dir=self._scratch)
        with os.fdopen(handle, "w") as out:
            json.dump(asdict(meta), out)
        Path(temp).replace(self._meta_path(bucket, name))

    def _prune(self, bucket: str, name: str) -> None:
        """Remove folders the object leaves empty, so the name can become an object again."""
        for top in (self.root / bucket, self.root / ".meta" / bucket):
            folder = (top / name).parent
            while folder != top and not any(folder.iterdir()):
                folder.rmdir()
                folder = folder.parent
