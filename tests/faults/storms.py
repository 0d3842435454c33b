"""Seeded storms and cuts, armed through the emulators' intercept hooks."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.emulators.loopback import Request, Response
from tests.emulators.oci.http import error as oci_error

Serve = Callable[[Request], Response]


@dataclass
class Storm:
    """A seeded share of matching requests answered `status` instead (or, `applied`, after serving them)."""

    share: float
    status: int
    seed: int = 0
    applied: bool = False
    oci: bool = False
    hits: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def __call__(self, request: Request, serve: Serve) -> Response:
        if self.rng.random() >= self.share:
            return serve(request)
        self.hits += 1
        if self.applied:
            served = serve(request)
            if served.status >= 300:
                return served
            close = getattr(served.body, "close", None)
            if callable(close):
                close()
        if self.oci:
            return oci_error(
                self.status, "ServiceUnavailable" if self.status >= 500 else "TooManyRequests", "storm"
            )
        headers = {"Retry-After": "1"} if self.status == 429 else {}
        return Response.json(self.status, {"title": "storm", "status": self.status}, headers)


@dataclass
class Cut:
    """The first `times` downloads answered in full headers but cut at a seeded offset (or at `at`); with
    `then`, a callback runs as the cut happens (a token expiring, a restart)."""

    times: int
    seed: int = 0
    at: int | None = None
    then: Callable[[], None] | None = None
    cuts: list[int] = field(default_factory=list)

    def __call__(self, request: Request, serve: Serve) -> Response:
        served = serve(request)
        if len(self.cuts) >= self.times or served.status not in (200, 206) or not served.length:
            return served
        offset = (
            self.at
            if self.at is not None
            else random.Random(self.seed + len(self.cuts)).randrange(1, served.length)
        )
        self.cuts.append(offset)
        served.drop_after = offset
        if self.then is not None:
            self.then()
        return served


@dataclass
class Truncate:
    """The first `times` downloads answered 200 with only the first `keep` bytes (a short, self-consistent
    body: nothing but the size and the SHA-256 can tell)."""

    times: int
    keep: int = 100
    source_short: bool = False  # the file itself is short: a Range past `keep` is unsatisfiable (416)
    served_short: int = 0

    def __call__(self, request: Request, serve: Serve) -> Response:
        if self.source_short and request.headers.get("range"):
            self.served_short += 1
            return Response(416, b"", {"Content-Range": f"bytes */{self.keep}"})
        served = serve(request)
        if self.served_short >= self.times or served.status != 200:
            return served
        self.served_short += 1
        head = b""
        for chunk in served.body if not isinstance(served.body, bytes) else [served.body]:
            head += chunk
            if len(head) >= self.keep:
                break
        close = getattr(served.body, "close", None)
        if callable(close):
            close()
        return Response(200, head[: self.keep], dict(served.headers), length=self.keep)
