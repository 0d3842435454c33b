"""ListObjects paging: prefix, start/end/startAfter window, '/' delimiter folding, fields, nextStartWith."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.emulators.oci.buckets import BucketStore, ObjectMeta
from tests.emulators.oci.http import ServiceError

LIST_FIELDS = ("name", "size", "etag", "md5", "timeCreated", "timeModified", "storageTier", "archivalState")
MAX_LIST = 1000


def parse_limit(value: str | None) -> int:
    if value is None:
        return MAX_LIST
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIST:
        raise ServiceError(400, "InvalidParameter", f"limit must be 1 to {MAX_LIST}, not {value!r}")
    return int(value)


def list_page(store: BucketStore, bucket: str, query: dict[str, str]) -> dict[str, Any]:
    """One ListObjects answer; `limit` counts objects and prefixes together, as OCI does."""
    limit = parse_limit(query.get("limit"))
    if query.get("delimiter") not in (None, "/"):
        raise ServiceError(400, "InvalidParameter", "delimiter may only be '/'")
    fields = query.get("fields", "name").split(",")
    unknown = set(fields) - set(LIST_FIELDS)
    if unknown:
        raise ServiceError(400, "InvalidParameter", f"unknown fields {sorted(unknown)}; known: {LIST_FIELDS}")
    page: dict[str, Any] = {"objects": [], "prefixes": []}
    for entry, is_prefix in _entries(store.names(bucket), query):
        if len(page["objects"]) + len(page["prefixes"]) == limit:
            page["nextStartWith"] = entry
            break
        if is_prefix:
            page["prefixes"].append(entry)
        elif (meta := store.head(bucket, entry)) is not None:  # None: deleted since names() ran
            page["objects"].append(_summary(entry, meta, fields))
    return page


def _entries(names: list[str], query: dict[str, str]) -> Iterator[tuple[str, bool]]:
    """Names in the requested window, in order; with delimiter '/' each folder comes once, as a prefix."""
    prefix, start, end = query.get("prefix", ""), query.get("start"), query.get("end")
    after, folders = query.get("startAfter"), "delimiter" in query
    last_folder = None
    for name in names:
        if (
            not name.startswith(prefix)
            or (start is not None and name < start)
            or (after is not None and name <= after)
            or (end is not None and name >= end)
        ):
            continue
        rest = name[len(prefix) :]
        if folders and "/" in rest:
            folder = prefix + rest[: rest.index("/") + 1]
            if folder != last_folder:
                last_folder = folder
                yield folder, True
            continue
        yield name, False


def _summary(name: str, meta: ObjectMeta, fields: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": name,
        "size": meta.size,
        "etag": meta.etag,
        "md5": meta.md5,
        "timeCreated": meta.created,
        "timeModified": meta.modified,
        "storageTier": "Standard",
        "archivalState": None,
    }
    return {key: values[key] for key in ("name", *fields)}
