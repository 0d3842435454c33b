"""A history for a test's Given, written in seconds: the object calls the run ledger makes, on a dict, then
planted into the emulator's bucket in one pass (no HTTP, no scratch files).

Only the Given goes this way, through the real Ledger; what the test then measures goes through the SDK and
the emulator's HTTP as usual, and is recorded there.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Iterator

from fusion_extract.errors import ConflictError, NotFoundError
from fusion_extract.ports import ObjectInfo
from tests.emulators.oci.buckets import BucketStore, Conditions


class SeedBucket:
    """get_bytes, head, put_bytes, delete and list of ports.ObjectStore, with their conditions, in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}  # name -> (content, ETag)
        self._etags = itertools.count(1)

    def get_bytes(self, name: str) -> tuple[bytes, str]:
        if name not in self.objects:
            raise NotFoundError(f"{name} not found")
        return self.objects[name]

    def head(self, name: str) -> ObjectInfo | None:
        if name not in self.objects:
            return None
        data, etag = self.objects[name]
        return ObjectInfo(name, len(data), etag, _md5(data))

    def put_bytes(
        self,
        name: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        content_type: str = "application/octet-stream",
    ) -> str:
        current = self.objects.get(name)
        if (if_none_match and current is not None) or (
            if_match is not None and (current is None or current[1] != if_match)
        ):
            raise ConflictError(f"{name} changed meanwhile")
        etag = f"seed-{next(self._etags)}"
        self.objects[name] = (data, etag)
        return etag

    def delete(self, name: str, *, if_match: str | None = None) -> None:
        current = self.objects.get(name)
        if current is not None and if_match not in (None, current[1]):
            raise ConflictError(f"{name} changed meanwhile")
        self.objects.pop(name, None)

    def list(self, prefix: str, *, start: str | None = None) -> Iterator[ObjectInfo]:
        for name in sorted(self.objects):
            if name.startswith(prefix) and (start is None or name >= start) and (info := self.head(name)):
                yield info

    def plant(self, store: BucketStore, bucket: str) -> None:
        """Write every object held into the emulator's bucket."""
        for name, (data, _) in self.objects.items():
            store.plant(bucket, name, data, _md5(data))

    def uproot(self, store: BucketStore, bucket: str) -> None:
        """Delete from the emulator's bucket every object planted that is still there (a test's cleanup)."""
        for name in self.objects:
            if store.head(bucket, name) is not None:
                store.delete(bucket, name, Conditions())


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()
