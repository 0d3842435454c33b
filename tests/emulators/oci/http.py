"""The OCI layer of the emulator's HTTP server: routes per service, signature checks, injected faults,
and OCI's error shape, on the shared loopback shell (tests.emulators.loopback).

Each service module exposes `routes`: (method, compiled regex over the raw, percent-encoded path,
handler). A handler takes the parsed Request and the regex match and returns a Response. Errors go
out as OCI's JSON `{"code", "message"}`, and every answer carries an `opc-request-id`, which the SDK
maps to ServiceError.

Request bodies are read lazily (see the shell): `request.body` for small JSON documents,
`request.stream()` for object data and multipart parts, so a large upload costs flat memory.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tests.emulators.loopback import IncompleteBody, LoopbackServer, Request, Response, ServedRequest

__all__ = [
    "Authenticator",
    "Authorizer",
    "Fault",
    "Handler",
    "Intercept",
    "OciHttpServer",
    "Request",
    "Response",
    "Route",
    "ServiceError",
    "error",
]


def error(status: int, code: str, message: str) -> Response:
    """An answer in OCI's error shape."""
    return Response.json(status, {"code": code, "message": message})


class ServiceError(Exception):
    """Raise from a handler to answer with an OCI error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.response = error(status, code, message)


Handler = Callable[[Request, "re.Match[str]"], Response]
Route = tuple[str, "re.Pattern[str]", Handler]
# A test's hook around matching requests: called with the request and `serve` (the emulator's own
# handling, faults included); it answers whatever it likes, before or after serving, or instead of it.
Intercept = Callable[[Request, Callable[[Request], Response]], Response]
Authenticator = Callable[[Request], str | None]  # None = accepted; else the reason it is refused
Authorizer = Callable[[Request], Response | None]  # None = allowed; else the refusal to answer


@dataclass
class Fault:
    """Answer the next `times` matching requests with this error instead of serving them."""

    method: str
    path: re.Pattern[str]
    status: int
    code: str
    times: int = 1
    after_handling: bool = False  # serve the request first (its effect stays), then answer the error


class OciHttpServer:
    """Serves the given routes on 127.0.0.1; records every request it served."""

    def __init__(
        self,
        routes: list[Route],
        authenticate: Authenticator | None = None,
        authorize: Authorizer | None = None,
    ) -> None:
        self.routes = routes
        self.authenticate = authenticate
        self.authorize = authorize
        self.served: list[tuple[str, str, int]] = []  # (method, path, status)
        self.faults: list[Fault] = []
        self.intercepts: list[tuple[str | None, re.Pattern[str], Intercept]] = []
        self._faults_lock = threading.Lock()
        self.request_ids = itertools.count(1)
        self._shell = LoopbackServer("oci", self._answer, on_served=self._record)

    @property
    def endpoint(self) -> str:
        return self._shell.url

    @property
    def connections(self) -> int:
        """Connections accepted so far (a client that keeps its connections alive opens few)."""
        return self._shell.connections

    def start(self) -> OciHttpServer:
        self._shell.start()
        return self

    def stop(self) -> None:
        self._shell.stop()

    def reset(self) -> None:
        """Forget what was served and the faults not spent yet (the routes are the owner's)."""
        with self._faults_lock:
            self.faults.clear()
            self.intercepts.clear()
        self.served.clear()
        self.request_ids = itertools.count(1)

    def dispatch(self, request: Request) -> Response:
        if self.authenticate is not None:
            refused = self.authenticate(request)
            if refused is not None:
                return error(401, "NotAuthenticated", refused)
        if self.authorize is not None:
            denied = self.authorize(request)
            if denied is not None:
                return denied
        with self._faults_lock:
            intercepts = list(self.intercepts)
        for method, pattern, intercept in intercepts:
            if method in (None, request.method) and pattern.fullmatch(request.path):
                return intercept(request, self._serve)
        return self._serve(request)

    def _serve(self, request: Request) -> Response:
        """The request after authentication: injected faults first, then its route."""
        fault = self._take_fault(request)
        if fault is not None:
            answer = error(fault.status, fault.code, f"injected fault on {request.method} {request.path}")
            if fault.after_handling:
                served = self._route(request)
                if served.status >= 300:  # it did not take effect: answer what the service said
                    return served
                _discard(served)
            return answer
        return self._route(request)

    def _route(self, request: Request) -> Response:
        allowed = False
        for method, pattern, handler in list(self.routes):
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            allowed = True
            if method != request.method:
                continue
            try:
                return handler(request, match)
            except ServiceError as exc:
                return exc.response
            except IncompleteBody as exc:
                return error(400, "IncompleteBody", str(exc))
            except Exception as exc:  # a bug in a fake must reach the test as an answer, not a hang
                return error(500, "InternalServerError", f"emulator failure: {exc!r}")
        if allowed:
            return error(405, "MethodNotAllowed", f"{request.method} not allowed on {request.path}")
        # Not a missing resource but an operation this emulator does not serve: say so (a 404 would read
        # like an authorization failure to the SDK and the CLI).
        return error(
            501, "NotImplemented", f"the OCI emulator does not implement {request.method} {request.path}"
        )

    def inject_fault(
        self, method: str, path: str, status: int, code: str, times: int = 1, *, after_handling: bool = False
    ) -> None:
        """Make the next `times` requests whose raw path fully matches the regex `path` fail; with
        `after_handling`, each takes effect first and only its answer is the error (a 503 after the write)."""
        with self._faults_lock:
            self.faults.append(Fault(method, re.compile(path), status, code, times, after_handling))

    def intercept(self, method: str | None, path: str, hook: Intercept) -> None:
        """Hand every signed request whose raw path fully matches `path` (and method, unless None) to
        `hook(request, serve)` until `reset`; the first matching hook wins."""
        with self._faults_lock:
            self.intercepts.append((method, re.compile(path), hook))

    def _answer(self, request: Request) -> Response:
        response = self.dispatch(request)
        response.headers = {"opc-request-id": f"emu-{next(self.request_ids)}", **response.headers}
        return response

    def _record(self, served: ServedRequest) -> None:
        self.served.append((served.method, served.path, served.status))

    def _take_fault(self, request: Request) -> Fault | None:
        with self._faults_lock:
            for fault in self.faults:
                if fault.method == request.method and fault.path.fullmatch(request.path):
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None


def _discard(response: Response) -> None:
    """Let go of an answer never sent (an open object read is closed)."""
    close = getattr(response.body, "close", None)
    if callable(close):
        close()
