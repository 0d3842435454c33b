"""A small HTTPS server on loopback: one dispatch function, a record of every request served.

Handlers return a Response whose body is bytes or a stream of chunks of known total length, so a
multi-gigabyte download passes through without being held. `drop_after` cuts the connection after
that many body bytes, as a flaky network would. The TLS handshake runs in the request's own thread.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
import traceback
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SOCKET_TIMEOUT = 120.0  # seconds a silent client may hold a connection
POLL_SECONDS = 0.05  # how often serve_forever looks for shutdown: stopping takes at most this long
QUIET_ERRORS = (ConnectionError, TimeoutError, ssl.SSLError)


@dataclass(frozen=True)
class Request:
    server: str  # which emulated service received it: "fusion" or "idcs"
    method: str
    path: str  # raw, percent-encoded, without the query
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def served(self, status: int) -> ServedRequest:
        host = self.headers.get("host", "")
        return ServedRequest(self.server, self.method, self.path, self.query, self.headers, host, status)


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
    """What a test may inspect about one request: nothing is masked, so leaks can be asserted."""

    server: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    host: str  # the Host header it arrived with
    status: int


Dispatch = Callable[[Request], Response]


class HttpsServer:
    """Serves `dispatch` over TLS on 127.0.0.1 (port 0: any free port)."""

    def __init__(self, name: str, dispatch: Dispatch, record: Callable[[ServedRequest], None]) -> None:
        self.name = name
        self._dispatch = dispatch
        self._record = record
        self._server: _TlsHttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, context: ssl.SSLContext, port: int = 0) -> None:
        server = _TlsHttpServer(("127.0.0.1", port), self._handler_class(), context)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(POLL_SECONDS,), name=f"{self.name}-emulator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"the {self.name} emulator is not running")
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out separately: no delayed-ACK stall
            timeout = SOCKET_TIMEOUT

            def setup(self) -> None:
                super().setup()
                connection = self.connection
                if isinstance(connection, ssl.SSLSocket):
                    connection.do_handshake()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def serve(self) -> None:
                parts = urlsplit(self.path)
                request = Request(
                    server=owner.name,
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=_read_body(self.rfile, self.headers),
                )
                try:
                    response = owner._dispatch(request)
                except Exception as bug:  # an emulator bug: answer it plainly rather than drop the line
                    traceback.print_exc()
                    response = Response.json(500, {"title": "emulator error", "detail": repr(bug)})
                owner._record(request.served(response.status))
                self.send(response)

            def send(self, response: Response) -> None:
                body = response.body
                length = len(body) if isinstance(body, bytes) else response.length
                if length is None:
                    raise ValueError("a streamed response needs its length")
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                chunks = [body] if isinstance(body, bytes) else body
                sent = _write(self.wfile, chunks, response.drop_after)
                if sent < length:
                    self.close_connection = True  # the client sees a short body: a dropped download

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = serve

        return Handler


class _TlsHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext
    ):
        self._context = context
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        raw, address = self.socket.accept()
        wrapped = self._context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        with self._open_lock:
            self._open.add(wrapped)
        return wrapped, address

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
        error = sys.exc_info()[1]
        if not isinstance(error, QUIET_ERRORS):
            super().handle_error(request, client_address)


def _read_body(stream: BufferedIOBase, headers: Message) -> bytes:
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return b"".join(_read_chunks(stream))
    length = int(headers.get("Content-Length") or 0)
    return stream.read(length) if length > 0 else b""


def _read_chunks(stream: BufferedIOBase) -> Iterator[bytes]:
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            stream.readline()
            return
        yield stream.read(size)
        stream.readline()


def _write(sink: Any, chunks: Iterable[bytes], limit: int | None) -> int:
    """Write the chunks, stopping after `limit` bytes when given; return how many were written."""
    sent = 0
    try:
        for chunk in chunks:
            if limit is not None and sent + len(chunk) >= limit:
                sink.write(chunk[: limit - sent])
                return limit
            sink.write(chunk)
            sent += len(chunk)
        return sent
    finally:
        if isinstance(chunks, Generator):
            chunks.close()  # stop generating at once, even when the client went away
