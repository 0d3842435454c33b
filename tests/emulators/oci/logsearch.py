"""Logging Search (POST /20190909/search): the functions' invoke log, searched as OCI Logging searches it.

What the log holds is what the Functions service ingests from an application with an invoke log: each line
a function writes, as one entry

    {"datetime": <epoch ms>, "logContent": {"data": {"applicationId", "functionId", "message", "src"},
     "id", "oracle": {"compartmentid", "loggroupid", "logid", "tenantid", "ingestedtime"},
     "source": <application name>, "subject": <function name>, "specversion": "1.0", "time",
     "type": "com.oraclecloud.functions.application.functioninvoke"}}

read from the local functions' log files when a search comes (`lines`), so the log is always current.

A search is SearchLogsDetails (`timeStart`, `timeEnd`: RFC 3339, both required, start before end;
`searchQuery`; `isReturnFieldInfo`) with `limit` and `page` in the query string; the answer is a
SearchResponse (`results`: [{"data": <entry>}], `fields` when asked, `summary`: {resultCount, fieldCount}),
and `opc-next-page` while more results follow. The query language is the subset the CLI writes, evaluated
for real: `search "<compartment>/<log group>/<log>"` (one stream or more), then `| where <field> = '<text>'`
(`*` matches any run of characters, as Logging's wildcards do) and `| sort by datetime asc|desc`.
Anything else is refused with 400 InvalidParameter naming it, never evaluated wrongly.
"""

from __future__ import annotations

import fnmatch
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.emulators.oci.http import Request, Response, Route, ServiceError

TENANCY = "ocid1.tenancy.oc1..emutenancy"
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
_STREAM = re.compile(r'\s*"([^"/]+)(?:/([^"/]+)(?:/([^"/]+))?)?"\s*')
_WHERE = re.compile(r"where\s+([A-Za-z_][A-Za-z_0-9.]*)\s*=\s*'((?:[^']|'')*)'", re.IGNORECASE)
_SORT = re.compile(r"sort\s+by\s+datetime(?:\s+(asc|desc))?", re.IGNORECASE)


@dataclass(frozen=True)
class Line:
    """One line a function wrote: when, which function (its OCID and name), and the text."""

    time: datetime
    function_id: str
    function_name: str
    message: str
    src: str = "STDERR"


@dataclass(frozen=True)
class InvokeLog:
    """The application's invoke log, as Terraform declares it (terraform/logging.tf)."""

    compartment_id: str
    log_group_id: str
    log_id: str
    application_id: str
    application_name: str


class LogSearch:
    def __init__(self, log: InvokeLog, lines: Callable[[], Iterable[Line]]) -> None:
        self.log = log
        self.lines = lines
        self.searches: list[dict[str, Any]] = []  # each SearchLogsDetails asked, with its limit and page
        self.routes: list[Route] = [("POST", re.compile(r"/20190909/search$"), self._search)]

    def entries(self) -> list[dict[str, Any]]:
        """Every entry of the log, oldest first."""
        return sorted((self._entry(line) for line in self.lines()), key=lambda entry: entry["datetime"])

    def _entry(self, line: Line) -> dict[str, Any]:
        log = self.log
        time = _rfc3339(line.time)
        return {
            "datetime": int(line.time.timestamp() * 1000),
            "logContent": {
                "data": {
                    "applicationId": log.application_id,
                    "functionId": line.function_id,
                    "message": line.message,
                    "src": line.src,
                },
                "id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{line.function_id} {time} {line.message}")),
                "oracle": {
                    "compartmentid": log.compartment_id,
                    "ingestedtime": time,
                    "loggroupid": log.log_group_id,
                    "logid": log.log_id,
                    "tenantid": TENANCY,
                },
                "source": log.application_name,
                "specversion": "1.0",
                "subject": line.function_name,
                "time": time,
                "type": "com.oraclecloud.functions.application.functioninvoke",
            },
        }

    def _search(self, request: Request, match: re.Match[str]) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise ServiceError(400, "InvalidParameter", "the body must be SearchLogsDetails")
        start, end = _time(body, "timeStart"), _time(body, "timeEnd")
        if start >= end:
            raise ServiceError(400, "InvalidParameter", "timeStart must be before timeEnd")
        query = body.get("searchQuery")
        if not isinstance(query, str) or not query.strip():
            raise ServiceError(400, "InvalidParameter", "searchQuery is required")
        limit = _limit(request.query.get("limit"))
        offset = _page(request.query.get("page"))
        self.searches.append({**body, "limit": limit, "page": request.query.get("page")})
        streams, where, descending = _parse(query)
        found = [
            entry
            for entry in self.entries()
            if start.timestamp() * 1000 <= entry["datetime"] < end.timestamp() * 1000
            and self._in_streams(entry, streams)
            and all(_matches(entry["logContent"], field, pattern) for field, pattern in where)
        ]
        if descending:
            found.reverse()
        page = found[offset : offset + limit]
        fields = _fields(page) if body.get("isReturnFieldInfo") else None
        doc: dict[str, Any] = {
            "results": [{"data": entry} for entry in page],
            "summary": {"resultCount": len(page), "fieldCount": len(fields or [])},
        }
        if fields is not None:
            doc["fields"] = fields
        response = Response.json(200, doc)
        if offset + limit < len(found):
            response.headers["opc-next-page"] = str(offset + limit)
        return response

    def _in_streams(self, entry: dict[str, Any], streams: list[tuple[str, str | None, str | None]]) -> bool:
        oracle = entry["logContent"]["oracle"]
        return any(
            compartment == oracle["compartmentid"]
            and group in (None, oracle["loggroupid"])
            and log in (None, oracle["logid"])
            for compartment, group, log in streams
        )


def _parse(query: str) -> tuple[list[tuple[str, str | None, str | None]], list[tuple[str, str]], bool]:
    """The streams, the `where` conditions and the order of a query in the supported subset."""
    head, *pipes = [part.strip() for part in query.split("|")]
    if not head.lower().startswith("search "):
        raise ServiceError(400, "InvalidParameter", f"a query starts with search <log stream>: {query!r}")
    streams = []
    for stream in head[len("search ") :].split(","):
        found = _STREAM.fullmatch(stream)
        if found is None:
            raise ServiceError(400, "InvalidParameter", f"not a log stream: {stream.strip()!r}")
        streams.append((found.group(1), found.group(2), found.group(3)))
    where: list[tuple[str, str]] = []
    descending = False
    for pipe in pipes:
        if (condition := _WHERE.fullmatch(pipe)) is not None:
            where.append((condition.group(1), condition.group(2).replace("''", "'")))
        elif (order := _SORT.fullmatch(pipe)) is not None:
            descending = (order.group(1) or "asc").lower() == "desc"
        else:
            raise ServiceError(400, "InvalidParameter", f"this emulator does not evaluate {pipe!r}")
    return streams, where, descending


def _matches(content: dict[str, Any], field: str, pattern: str) -> bool:
    value: Any = content
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return False
    text = value if isinstance(value, str) else json.dumps(value)
    return fnmatch.fnmatchcase(text, pattern.replace("[", "[[]"))


def _fields(entries: list[dict[str, Any]]) -> list[dict[str, str]]:
    names = sorted({f"data.{key}" for entry in entries for key in entry["logContent"]["data"]})
    return [{"fieldName": name, "fieldType": "STRING"} for name in names]


def _time(body: dict[str, Any], key: str) -> datetime:
    value = body.get(key)
    if not isinstance(value, str):
        raise ServiceError(400, "InvalidParameter", f"{key} is required")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(400, "InvalidParameter", f"{key} is not an RFC 3339 time: {value!r}") from None
    if moment.tzinfo is None:
        raise ServiceError(400, "InvalidParameter", f"{key} needs a time zone: {value!r}")
    return moment


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ServiceError(400, "InvalidParameter", f"limit must be 1 to {MAX_LIMIT}, not {text!r}")
    return int(text)


def _page(text: str | None) -> int:
    if text is None:
        return 0
    if not text.isdigit():
        raise ServiceError(400, "InvalidParameter", f"page {text!r} is not one this service gave")
    return int(text)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def function_log_lines(file: Path, function_id: str, function_name: str) -> list[Line]:
    """The lines of a local function's log file, timed by their own `timestamp` (JSON lines) or, for the
    runtime's plain lines, by the file's last change."""
    if not file.exists():
        return []
    written = datetime.fromtimestamp(file.stat().st_mtime, UTC)
    lines = []
    for text in file.read_text(errors="replace").splitlines():
        if not text.strip():
            continue
        try:
            stamp = json.loads(text).get("timestamp")
            moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except (ValueError, AttributeError):
            moment = written
        lines.append(Line(moment, function_id, function_name, text))
    return lines
