"""The HTTP core of the OCI emulator: one ThreadingHTTPServer on loopback, routes per service.

Each service module exposes `routes`: (method, compiled regex over the raw, percent-encoded path,
handler). A handler takes the parsed Request and the regex match and returns a Response. Errors go
out as OCI's JSON `{"code", "message"}` with an `opc-request-id`, which the SDK maps to ServiceError.

Request bodies are read lazily: `request.body` reads and keeps the whole body (small JSON documents),
`request.stream()` yields it in chunks without keeping it (object data, multipart parts), so a large
upload costs flat memory. Whatever a handler leaves unread is drained before the next request.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import Any
from urllib.parse import parse_qsl, urlsplit

CHUNK = 1 << 20


class Request:
    """One request. `path` is raw and percent-encoded, without the query; `target` is path plus query."""

    def __init__(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Message,
        body: bytes | Iterator[bytes] = b"",
        target: str = "",
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.target = target or path
        self._body = body if isinstance(body, bytes) else None
        self._chunks: Iterator[bytes] = iter(()) if isinstance(body, bytes) else body

    @property
    def body(self) -> bytes:
        """The whole body, read once and kept."""
        if self._body is None:
            self._body = b"".join(self._chunks)
        return self._body

    def stream(self) -> Iterator[bytes]:
        """The body in chunks, not kept (unless `body` was read first)."""
        if self._body is not None:
            yield self._body
            return
        self._body = b""  # a second reader sees an empty body rather than half of it
        yield from self._chunks

    def drain(self) -> None:
        for _ in self._chunks:
            pass

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None  # required when body is an iterable

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status, json.dumps(payload).encode(), {"content-type": "application/json", **(headers or {})}
        )

    @classmethod
    def error(cls, status: int, code: str, message: str) -> Response:
        return cls.json(status, {"code": code, "message": message})


class ServiceError(Exception):
    """Raise from a handler to answer with an OCI error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.response = Response.error(status, code, message)


Handler = Callable[[Request, "re.Match[str]"], Response]
Route = tuple[str, "re.Pattern[str]", Handler]
Authenticator = Callable[[Request], str | None]  # None = accepted; else the reason it is refused


@dataclass
class Fault:
    """Answer the next `times` matching requests with this error instead of serving them."""

    method: str
    path: re.Pattern[str]
    status: int
    code: str
    times: int = 1


class OciHttpServer:
    """Serves the given routes on 127.0.0.1; records every request it served."""

    def __init__(self, routes: list[Route], authenticate: Authenticator | None = None) -> None:
        self.routes = routes
        self.authenticate = authenticate
        self.served: list[tuple[str, str, int]] = []  # (method, path, status)
        self.faults: list[Fault] = []
        self._faults_lock = threading.Lock()
        self.request_ids = itertools.count(1)
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OciHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever for a loop that never ran
            self._server.shutdown()
        self._server.server_close()

    def dispatch(self, request: Request) -> Response:
        if self.authenticate is not None:
            refused = self.authenticate(request)
            if refused is not None:
                return Response.error(401, "NotAuthenticated", refused)
        fault = self._take_fault(request)
        if fault is not None:
            return Response.error(
                fault.status, fault.code, f"injected fault on {request.method} {request.path}"
            )
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
            except Exception as exc:  # a bug in a fake must reach the test as an answer, not a hang
                return Response.error(500, "InternalServerError", f"emulator failure: {exc!r}")
        if allowed:
            return Response.error(405, "MethodNotAllowed", f"{request.method} not allowed on {request.path}")
        # Not a missing resource but an operation this emulator does not serve: say so (a 404 would read
        # like an authorization failure to the SDK and the CLI).
        return Response.error(
            501, "NotImplemented", f"the OCI emulator does not implement {request.method} {request.path}"
        )

    def inject_fault(self, method: str, path: str, status: int, code: str, times: int = 1) -> None:
        """Make the next `times` requests whose raw path fully matches the regex `path` fail."""
        with self._faults_lock:
            self.faults.append(Fault(method, re.compile(path), status, code, times))

    def _take_fault(self, request: Request) -> Fault | None:
        with self._faults_lock:
            for fault in self.faults:
                if fault.method == request.method and fault.path.fullmatch(request.path):
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, emulator: OciHttpServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.emulator = emulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and `Expect: 100-continue`, as the SDK expects
    disable_nagle_algorithm = True  # headers and body go out separately: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        emulator = self.server.emulator
        parts = urlsplit(self.path)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = _read_chunks(self.rfile)
        else:
            chunks = _read_length(self.rfile, int(self.headers.get("Content-Length") or 0))
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=self.headers,
            body=chunks,
            target=self.path,
        )
        response = emulator.dispatch(request)
        try:
            request.drain()
        except ServiceError:
            self.close_connection = True  # the body was cut off: this connection is unusable
        emulator.served.append((request.method, request.path, response.status))
        try:
            self._write(response, f"emu-{next(emulator.request_ids)}")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away mid-answer
        finally:
            close = getattr(response.body, "close", None)
            if close is not None:
                close()

    def _write(self, response: Response, request_id: str) -> None:
        body = response.body
        self.send_response(response.status)
        self.send_header("opc-request-id", request_id)
        for name, value in response.headers.items():
            self.send_header(name, value)
        length = len(body) if isinstance(body, bytes) else response.length
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        if isinstance(body, bytes):
            self.wfile.write(body)
            return
        for chunk in body:
            self.wfile.write(chunk)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _serve


def _read_length(stream: BufferedIOBase, length: int) -> Iterator[bytes]:
    left = length
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:  # never let a cut-off body pass for a whole one
            raise ServiceError(400, "IncompleteBody", f"the body ended {left} bytes short of {length}")
        left -= len(chunk)
        yield chunk


def _read_chunks(stream: BufferedIOBase) -> Iterator[bytes]:
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            stream.readline()
            return
        yield from _read_length(stream, size)
        stream.readline()
