"""The HTTP core of the OCI emulator: one ThreadingHTTPServer on loopback, routes per service.

Each service module exposes `routes`: (method, compiled regex over the raw, percent-encoded path,
handler). A handler takes the parsed Request and the regex match and returns a Response. Errors go
out as OCI's JSON `{"code", "message"}` with an `opc-request-id`, which the SDK maps to ServiceError.
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
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str  # raw, percent-encoded, without the query
    query: dict[str, str]
    headers: Message
    body: bytes

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


class OciHttpServer:
    """Serves the given routes on 127.0.0.1; records every request it served."""

    def __init__(self, routes: list[Route], authenticate: Authenticator | None = None) -> None:
        self.routes = routes
        self.authenticate = authenticate
        self.served: list[tuple[str, str, int]] = []  # (method, path, status)
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OciHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def dispatch(self, request: Request) -> Response:
        if self.authenticate is not None:
            refused = self.authenticate(request)
            if refused is not None:
                return Response.error(401, "NotAuthenticated", refused)
        allowed = False
        for method, pattern, handler in self.routes:
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
        if allowed:
            return Response.error(405, "MethodNotAllowed", f"{request.method} not allowed on {request.path}")
        return Response.error(404, "NotAuthorizedOrNotFound", f"no such resource: {request.path}")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _read_body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    return b"".join(_read_chunks(self.rfile))
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers=self.headers,
                    body=self._read_body(),
                )
                response = emulator.dispatch(request)
                emulator.served.append((request.method, request.path, response.status))
                self._send(response)

            def _send(self, response: Response) -> None:
                body = response.body
                self.send_response(response.status)
                self.send_header("opc-request-id", f"emu-{next(emulator._ids)}")
                for name, value in response.headers.items():
                    self.send_header(name, value)
                if isinstance(body, bytes):
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                    return
                self.send_header("Content-Length", str(response.length))
                self.end_headers()
                if self.command != "HEAD":
                    for chunk in body:
                        self.wfile.write(chunk)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

        return Handler


def _read_chunks(stream: Any) -> Iterator[bytes]:
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            stream.readline()
            return
        yield stream.read(size)
        stream.readline()
