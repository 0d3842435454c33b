"""Object Storage state on disk, so a person can open what landed.

    root/<bucket>/<object name>          the object's bytes, nothing else
    root/.meta/<bucket>/<object name>    its metadata (JSON): etag, md5, size, times, headers, opc-meta
    root/.segments/<id>/<n>              the parts of a multipart object, in order (see below)
    root/.tmp/                           bodies being received, moved into place with os.replace

A multipart commit moves the parts, it never copies them (Object Storage does not either, and a copy
would be the emulator's time on the client's clock): one part becomes the object's file; several stay
files of their own, served in order, the object's file empty until someone asks for its path
(`materialise`, what `object_path` does), when they are joined into it.

Bodies are received outside the lock; the lock guards the short step that checks the write's conditions
and moves data and metadata into place, so of two conditional writers racing on one name exactly one wins.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any, BinaryIO, cast

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
    segments: list[str] = field(default_factory=list)  # under root/.segments/, in order; [] = the file


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
        self._segments = root / ".segments"
        self._segments.mkdir(parents=True, exist_ok=True)

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
            if meta.segments:
                files = [(self._segments / segment).open("rb") for segment in meta.segments]
                return meta, cast(BinaryIO, Joined(files))
            return meta, self.data_path(bucket, name).open("rb")

    def materialise(self, bucket: str, name: str) -> None:
        """Join the segments of the object `name`, or of every object under the folder `name`, into
        their files, so that a person (or a test) can open them."""
        top = self._meta_path(bucket, name)
        with self.lock:
            names = [name] if top.is_file() else [f"{name}/{inner}" for inner in self._names_in(top)]
            for found in names:
                meta = self.require(bucket, found)
                if not meta.segments:
                    continue
                body = self.receive(_read_files([self._segments / segment for segment in meta.segments]))
                body.path.replace(self.data_path(bucket, found))
                self._drop_segments(meta)
                meta.segments = []
                self._write_meta(bucket, found, meta)

    def names(self, bucket: str) -> list[str]:
        """Every object name in the bucket, in OCI's order (UTF-8 byte order = code point order)."""
        with self.lock:
            return sorted(self._names_in(self.root / ".meta" / bucket))

    @staticmethod
    def _names_in(top: Path) -> list[str]:
        return [
            Path(folder, file).relative_to(top).as_posix()
            for folder, _, files in os.walk(top)
            for file in files
        ]

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
            replaced = self.head(bucket, name)
            conditions.check(replaced)
            self._make_room(bucket, name)
            body.path.replace(target)
            self._write_meta(bucket, name, meta)
            self._drop_segments(replaced)
        return meta

    def commit_parts(
        self,
        bucket: str,
        name: str,
        parts: list[Path],
        conditions: Conditions,
        *,
        md5: str,
        headers: dict[str, str],
        opc_meta: dict[str, str],
    ) -> ObjectMeta:
        """Make the part files, in order, the object (moved, never copied), if the conditions hold on the
        object it replaces; the parts stay where they are when they do not."""
        size = sum(part.stat().st_size for part in parts)
        now = isoformat(self.clock.now())
        meta = ObjectMeta(size, self.new_etag(), md5, True, now, now, headers, opc_meta)
        with self.lock:
            replaced = self.head(bucket, name)
            conditions.check(replaced)
            self._make_room(bucket, name)
            if len(parts) == 1:
                parts[0].replace(self.data_path(bucket, name))
            else:
                folder = Path(tempfile.mkdtemp(dir=self._segments))
                for index, part in enumerate(parts):
                    part.replace(folder / f"{index:05d}")
                    meta.segments.append(f"{folder.name}/{index:05d}")
                handle, empty = tempfile.mkstemp(dir=self._scratch)
                os.close(handle)
                Path(empty).replace(self.data_path(bucket, name))  # a new file: readers keep the old one
            self._write_meta(bucket, name, meta)
            self._drop_segments(replaced)
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
            meta = self.require(bucket, name)
            conditions.check(meta)
            self.data_path(bucket, name).unlink(missing_ok=True)
            self._meta_path(bucket, name).unlink()
            self._prune(bucket, name)
            self._drop_segments(meta)

    def rename(
        self, bucket: str, source: str, target: str, source_if_match: str | None, onto: Conditions
    ) -> None:
        check_object_name(target)
        with self.lock:
            meta = self.require(bucket, source)
            Conditions(if_match=source_if_match).check(meta)
            if source == target:
                return
            replaced = self.head(bucket, target)
            onto.check(replaced)
            self._make_room(bucket, target)
            self.data_path(bucket, source).replace(self.data_path(bucket, target))
            meta.modified = isoformat(self.clock.now())
            self._write_meta(bucket, target, meta)
            self._meta_path(bucket, source).unlink()
            self._prune(bucket, source)
            self._drop_segments(replaced)

    def _drop_segments(self, meta: ObjectMeta | None) -> None:
        """Remove the segments of an object deleted or replaced (open readers keep theirs)."""
        for folder in {segment.split("/")[0] for segment in meta.segments} if meta else ():
            shutil.rmtree(self._segments / folder, ignore_errors=True)

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
            while folder != top and _empty(folder):
                folder.rmdir()
                folder = folder.parent


def _empty(folder: Path) -> bool:
    # The first entry alone (Path.iterdir lists the whole folder: 50,000 staged members each time).
    with os.scandir(folder) as entries:
        return next(entries, None) is None


def _read_files(paths: list[Path]) -> Iterable[bytes]:
    for path in paths:
        with path.open("rb") as source:
            while chunk := source.read(1 << 20):
                yield chunk


class Joined(io.RawIOBase):
    """Open files read as one, in order: a multipart object's segments."""

    def __init__(self, files: list[io.BufferedReader]) -> None:
        self._files = files
        self._starts: list[int] = []
        total = 0
        for file in files:
            self._starts.append(total)
            total += os.fstat(file.fileno()).st_size
        self._size = total
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._position, self._size)[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        index = bisect.bisect_right(self._starts, self._position) - 1  # the last segment starting here
        if self._position >= self._size:
            return 0
        file = self._files[index]
        file.seek(self._position - self._starts[index])
        read = file.readinto(buffer)
        self._position += read
        return read

    def close(self) -> None:
        for file in self._files:
            file.close()
        super().close()
