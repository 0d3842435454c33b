"""One loopback HTTP/1.1 server shell, shared by every emulator: Fusion's two HTTPS servers and OCI's.

`LoopbackServer(name, serve)` binds 127.0.0.1 (port 0: any free port) at once, so its `url` is known
before `start()`; it answers every request with `serve(request) -> Response`, over TLS when given an
SSLContext (the handshake runs in the request's own thread, so one slow client holds up nobody).

What the shell does, whatever the service:
- the path stays raw and percent-encoded (no query); the query is a dict; headers are case-insensitive;
- request bodies are read lazily, by Content-Length or chunked: `request.body` reads and keeps the whole
  body, `request.stream()` yields chunks without keeping them, so a large upload costs flat memory.
  What a service leaves unread is drained before the next request on the connection; a body that ends
  short raises IncompleteBody and the connection is closed after the answer;
- responses have a known length, from bytes or from a stream of chunks (closed when done, even when the
  client went away); `drop_after` cuts the connection after that many body bytes, as a flaky network
  would; a HEAD answer carries the headers only;
- every request answered is handed to `on_served` (the emulator's record), before the answer goes out;
- `stop()` returns at once: the accept loop is woken rather than polled, and keep-alive connections are
  shut so that their threads end with the server.

Service-specific parts (error bodies, routes, authentication, injected faults) live in the emulators.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HOST = "127.0.0.1"
CHUNK = 1 << 20  # the most a body stream yields at once
SOCKET_TIMEOUT = 120.0  # seconds a silent client may hold a connection
QUIET_ERRORS = (ConnectionError, TimeoutError, ssl.SSLError)  # a client hanging up is no server bug


class IncompleteBody(Exception):
    """The request body ended before its declared length: the connection is unusable."""


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
        server: str = "",
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.target = target or path
        self.server = server  # the name of the server that received it
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
    length: int | None = None  # required when body is a stream
    drop_after: int | None = None  # close the connection after this many body bytes

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(payload).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})


@dataclass(frozen=True)
class ServedRequest:
    """What a test may inspect about one request answered: nothing is masked, so leaks can be asserted."""

    server: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    host: str  # the Host header it arrived with
    status: int

    @classmethod
    def of(cls, request: Request, status: int) -> ServedRequest:
        headers = {name.lower(): value for name, value in request.headers.items()}
        host = headers.get("host", "")
        return cls(request.server, request.method, request.path, request.query, headers, host, status)


Serve = Callable[[Request], Response]
Record = Callable[[ServedRequest], None]


class LoopbackServer:
    """Serves `serve` on 127.0.0.1, over TLS when given a context; hands each answered request to
    `on_served`."""

    def __init__(
        self,
        name: str,
        serve: Serve,
        *,
        on_served: Record | None = None,
        tls: ssl.SSLContext | None = None,
        port: int = 0,
    ) -> None:
        self.name = name
        self.serve = serve
        self.on_served = on_served
        self._server = _Server(self, port, tls)
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def url(self) -> str:
        if self._closed:
            raise RuntimeError(f"the {self.name} server is stopped")
        scheme = "https" if self._server.tls is not None else "http"
        return f"{scheme}://{HOST}:{self._server.server_address[1]}"

    def start(self) -> LoopbackServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_until_stopped, name=f"{self.name}-server", daemon=True
            )
            self._thread.start()
        return self

    @property
    def connections(self) -> int:
        """Connections accepted since the server started."""
        return self._server.accepted

    def stop(self) -> None:
        """Stop accepting, end the open connections and free the port; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        thread, self._thread = self._thread, None
        if thread is not None:
            self._server.wake_to_stop()
            thread.join()
        self._server.close_connections()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, shell: LoopbackServer, port: int, tls: ssl.SSLContext | None) -> None:
        self.shell = shell
        self.tls = tls
        self._stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.accepted = 0  # connections accepted so far: clients that reuse theirs keep this low
        super().__init__((HOST, port), _Handler)

    def serve_until_stopped(self) -> None:
        while not self._stopping.is_set():
            self.handle_request()  # blocks until a connection arrives: no polling

    def wake_to_stop(self) -> None:
        """Let the accept loop end: flag it, then knock once so that it looks at the flag."""
        self._stopping.set()
        with (
            contextlib.suppress(OSError),
            socket.create_connection((HOST, self.server_address[1]), timeout=5),
        ):
            pass

    def get_request(self) -> tuple[socket.socket, Any]:
        raw, address = self.socket.accept()
        if self._stopping.is_set():  # the knock of wake_to_stop: serve nothing more
            raw.close()
            raise OSError("the server is stopping")
        connection = raw
        if self.tls is not None:
            connection = self.tls.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        with self._open_lock:
            self._open.add(connection)
            self.accepted += 1
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Unblock keep-alive connections so their threads end with the server."""
        with self._open_lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up or refuses the certificate is normal here; anything else is a bug.
        if not isinstance(sys.exc_info()[1], QUIET_ERRORS):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and `Expect: 100-continue`, as the clients expect
    disable_nagle_algorithm = True  # headers and body go out separately: no 40 ms delayed-ACK stall
    timeout = SOCKET_TIMEOUT
    server: _Server

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        shell = self.server.shell
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=self.headers,
            body=_body(self.rfile, self.headers),
            target=self.path,
            server=shell.name,
        )
        response = shell.serve(request)
        try:
            request.drain()
        except IncompleteBody:
            self.close_connection = True  # the body was cut off: this connection is unusable
        if shell.on_served is not None:
            shell.on_served(ServedRequest.of(request, response.status))
        try:
            self._send(response)
        except QUIET_ERRORS:
            self.close_connection = True  # the client went away mid-answer
        finally:
            close = getattr(response.body, "close", None)
            if close is not None:
                close()  # stop generating at once, even when the client went away

    def _send(self, response: Response) -> None:
        body = response.body
        length = len(body) if isinstance(body, bytes) else response.length
        if length is None:
            raise ValueError("a streamed response needs its length")
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = _write(self.wfile, [body] if isinstance(body, bytes) else body, response.drop_after)
        if sent < length:
            self.close_connection = True  # the client sees a short body: a dropped download

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _serve


def _body(stream: BufferedIOBase, headers: Message) -> Iterator[bytes]:
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return _read_chunks(stream)
    return _read_length(stream, int(headers.get("Content-Length") or 0))


def _read_length(stream: BufferedIOBase, length: int) -> Iterator[bytes]:
    left = length
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:  # never let a cut-off body pass for a whole one
            raise IncompleteBody(f"the body ended {left} bytes short of {length}")
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


def _write(sink: Any, chunks: Iterable[bytes], limit: int | None) -> int:
    """Write the chunks, stopping after `limit` bytes when given; return how many were written."""
    sent = 0
    for chunk in chunks:
        if limit is not None and sent + len(chunk) >= limit:
            sink.write(chunk[: limit - sent])
            return limit
        sink.write(chunk)
        sent += len(chunk)
    return sent
