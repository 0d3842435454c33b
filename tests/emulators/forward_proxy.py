"""A loopback forward proxy for plain HTTP, as HTTP_PROXY names one: it relays and records each request.

A client told to use a proxy sends it the whole URL (`GET http://host:port/path HTTP/1.1`); the proxy
opens its own connection to that host, sends the request on (without the hop-by-hop headers) and relays
the answer. `forwarded` lists (method, URL) of every request relayed, so a test can see which went through.
The upstream connection is made with http.client, which reads no proxy settings of its own.
"""

from __future__ import annotations

import http.client
import threading
from types import TracebackType
from urllib.parse import urlsplit

from tests.emulators.loopback import LoopbackServer, Request, Response

# Headers that concern one connection, not the message (RFC 9110 7.6.1), and the framing each side redoes.
NOT_FORWARDED = {"connection", "proxy-connection", "keep-alive", "te", "trailer", "upgrade", "expect"} | {
    "transfer-encoding",
    "content-length",
}
NOT_RELAYED = NOT_FORWARDED | {"date", "server"}  # the answer's: the shell writes its own


class ForwardProxy:
    def __init__(self) -> None:
        self._server = LoopbackServer("forward-proxy", self._relay)
        self._lock = threading.Lock()
        self._forwarded: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def forwarded(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._forwarded)

    def __enter__(self) -> ForwardProxy:
        self._server.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.stop()

    def _relay(self, request: Request) -> Response:
        target = urlsplit(request.target)
        if target.scheme != "http" or not target.netloc:
            return Response(400, b"a forward proxy needs the whole http:// URL")
        with self._lock:
            self._forwarded.append((request.method, request.target))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED}
        path = target.path + (f"?{target.query}" if target.query else "")
        upstream = http.client.HTTPConnection(target.netloc, timeout=30)
        try:
            upstream.request(request.method, path, body=request.body, headers=headers)
            answer = upstream.getresponse()
            body = answer.read()
        finally:
            upstream.close()
        relayed = {k: v for k, v in answer.getheaders() if k.lower() not in NOT_RELAYED}
        if request.method == "HEAD":  # no body, but the length of the one a GET would get
            return Response(answer.status, [], relayed, length=int(answer.getheader("content-length", 0)))
        return Response(answer.status, body, relayed)
