"""The run ledger's JSON documents on top of an ObjectStore, written only with conditional requests.

create is create-only (if-none-match: *), replace and delete are compare-and-swap on the ETag read
earlier (if-match). A lost race is a ConflictError: the caller re-reads and decides. A retried write
whose first attempt landed also reports ConflictError; re-reading shows the caller its own write.
Documents are indented and key-sorted, so a person can read the ledger straight from the bucket.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from fusion_extract.errors import IntegrityError
from fusion_extract.ports import ObjectStore

JSON = "application/json"


def encode(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


class Documents:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def create(self, name: str, doc: Mapping[str, Any]) -> str:
        """Write a new document; ConflictError if one exists already. Returns its ETag."""
        return self.store.put_bytes(name, encode(doc), if_none_match=True, content_type=JSON)

    def read(self, name: str) -> tuple[dict[str, Any], str]:
        """The document and its ETag; NotFoundError if absent, IntegrityError if it is not a JSON object."""
        data, etag = self.store.get_bytes(name)
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise IntegrityError(f"ledger document {name} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise IntegrityError(f"ledger document {name} is not a JSON object")
        return doc, etag

    def replace(self, name: str, doc: Mapping[str, Any], etag: str) -> str:
        """Overwrite the version read as `etag`; ConflictError if it changed since. Returns the new ETag."""
        return self.store.put_bytes(name, encode(doc), if_match=etag, content_type=JSON)

    def delete(self, name: str, etag: str) -> None:
        """Delete the version read as `etag`; ConflictError if it changed since; nothing if already gone."""
        self.store.delete(name, if_match=etag)

    def list(self, prefix: str) -> Iterator[str]:
        """Names of every document under the prefix, all pages, in name order."""
        return (info.name for info in self.store.list(prefix))
