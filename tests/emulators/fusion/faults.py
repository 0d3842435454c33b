"""Faults armed by a test for the next matching requests (`FusionEmulator.fail_next`), on either server.

A rule answers the next `count` requests whose raw path matches its pattern (and its method, when
given) with its status, before any other handling; then it is spent. Rules fire in the order added.
A rule armed `after_handling` lets the request take effect first and loses only its answer, as when a
gateway times out after the backend acted (an ambiguous submit). A rule with a `body` answers that body
instead, whatever the status (a proxy's HTML page where JSON was due).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from tests.emulators.loopback import Request


@dataclass
class FailRule:
    pattern: re.Pattern[str]
    status: int
    remaining: int
    retry_after: int | None = None
    method: str | None = None
    after_handling: bool = False
    body: bytes | None = None

    def matches(self, request: Request) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method == request.method)
            and self.pattern.search(request.path) is not None
        )


class FailRules:
    def __init__(self) -> None:
        self._rules: list[FailRule] = []
        self._lock = threading.Lock()

    def add(
        self,
        path_regex: str,
        status: int,
        count: int,
        retry_after: int | None,
        method: str | None,
        after_handling: bool = False,
        body: bytes | None = None,
    ) -> None:
        if (body is None and not 400 <= status <= 599) or count < 1:
            raise ValueError("fail_next needs an error status (4xx/5xx) or a body, and a count of at least 1")
        rule = FailRule(
            re.compile(path_regex),
            status,
            count,
            retry_after,
            method.upper() if method else None,
            after_handling,
            body,
        )
        with self._lock:
            self._rules.append(rule)

    def take(self, request: Request) -> FailRule | None:
        """The first live rule matching the request, one use spent; None when none matches."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(request):
                    rule.remaining -= 1
                    return rule
        return None

    def pending(self) -> int:
        with self._lock:
            return sum(rule.remaining for rule in self._rules)
