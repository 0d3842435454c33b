"""REST conventions of the emulated saas-batch API: the error body, list paging, byte ranges.

Oracle publishes none of these for saas-batch (reference 1.9, 5), so each is our stated choice:
errors take the ESS shape `{"type", "title", "status", "detail"}`; lists page with `limit`/`offset`
and answer `items`, `count`, `hasMore`, `limit`, `offset`, `totalItems`; `Range` takes `bytes=a-b`,
`bytes=a-`, `bytes=-n` and the `a-b/size` form the Data Extraction docs show.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from tests.emulators.loopback import Request, Response

RANGE = re.compile(r"bytes=(\d*)-(\d*)|(\d+)-(\d+)/\d+")  # bytes=a-b, bytes=a-, bytes=-n; or a-b/size


def error(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return Response.json(status, body, headers)


class Refusal(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def page_of(request: Request, items: list[Any], default_limit: int, max_limit: int) -> dict[str, Any]:
    limit = _whole(request, "limit", default_limit, minimum=1)
    offset = _whole(request, "offset", 0, minimum=0)
    limit = min(limit, max_limit)
    page = items[offset : offset + limit]
    return {
        "items": page,
        "count": len(page),
        "hasMore": offset + len(page) < len(items),
        "limit": limit,
        "offset": offset,
        "totalItems": len(items),
    }


def _whole(request: Request, name: str, default: int, minimum: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < minimum:
        raise Refusal(error(400, f"query parameter {name} must be a whole number of at least {minimum}"))
    return int(text)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, stop) asked for by a single-range `Range` header; None to send the whole file.

    RFC 9110 lets a server ignore a Range it cannot parse (or several ranges): it sends everything.
    """
    match = RANGE.fullmatch((header or "").strip())
    if match is None:
        return None
    first, last = (match[1], match[2]) if match[3] is None else (match[3], match[4])
    if first:
        start, stop = int(first), int(last) + 1 if last else size
        if stop <= start < size:
            return None  # last before first: an invalid range, ignored
    elif last:  # a suffix: the last N bytes (none at all cannot be satisfied)
        start, stop = (size - min(int(last), size), size) if int(last) else (size, size)
    else:
        return None
    if start >= size:
        unsatisfiable = {"Content-Range": f"bytes */{size}"}
        raise Refusal(error(416, f"the range is outside the file's {size} bytes", unsatisfiable))
    return start, min(stop, size)
