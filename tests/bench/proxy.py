"""A TCP proxy that makes loopback look like a cloud link: a bandwidth cap and a delay, per connection.

It passes bytes through untouched (TLS included: the client still verifies the server's certificate),
so it sits in front of the Fusion emulator without knowing HTTP. Each connection gets two `Link`s, one per
direction: a chunk read from one side starts "transmitting" when it arrives or when the link is free,
takes size/rate seconds, and is delivered `delay` seconds after that (propagation). A round trip therefore
costs 2 x delay; the profiles name the round trip. Reading stops while a direction holds `window` bytes
not yet delivered, so a slow link pushes back on the sender as TCP would, and memory stays bounded.

    python -m tests.bench.proxy --rate-mb-s 40 --rtt-ms 20
        prints {"port": N} once it listens; then reads one line "host:port" (the upstream) on stdin and
        serves until stdin closes or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

READ_BYTES = 64 * 1024
WINDOW_BYTES = 4 * 1024 * 1024  # bytes in flight per direction, at most


@dataclass
class Link:
    """One direction of one connection: when does a chunk that arrives now get delivered?"""

    rate: float | None  # bytes per second; None: no cap
    delay: float = 0.0  # one-way propagation delay, seconds
    _free_at: float = field(default=float("-inf"), repr=False)

    def __post_init__(self) -> None:
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive (or None for no cap)")
        if self.delay < 0:
            raise ValueError("delay must be zero or more")

    def delivery_time(self, arrival: float, size: int) -> float:
        """Serialised after whatever the link is still sending, then delayed."""
        start = max(arrival, self._free_at)
        finish = start + (size / self.rate if self.rate else 0.0)
        self._free_at = finish
        return finish + self.delay


@dataclass(frozen=True)
class Profile:
    name: str
    rate_mb_s: float | None  # 10**6 bytes per second
    rtt_ms: float

    def link(self) -> Link:
        rate = self.rate_mb_s * 1e6 if self.rate_mb_s else None
        return Link(rate, self.rtt_ms / 2000)


async def _pipe(
    source: asyncio.StreamReader,
    sink: asyncio.StreamWriter,
    link: Link,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Copy source to sink through the link, holding at most WINDOW_BYTES undelivered."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=max(1, WINDOW_BYTES // READ_BYTES))

    async def deliver() -> None:
        while True:
            due, chunk = await queue.get()
            wait = due - clock()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                with contextlib.suppress(OSError):
                    if sink.can_write_eof():
                        sink.write_eof()
                return
            sink.write(chunk)
            await sink.drain()

    deliverer = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await source.read(READ_BYTES)
            await queue.put((link.delivery_time(clock(), len(chunk)), chunk))
            if not chunk:
                break
        await deliverer
    finally:
        deliverer.cancel()


async def _connection(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream: tuple[str, int],
    profile: Profile,
) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection(*upstream)
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(
            _pipe(client_reader, server_writer, profile.link()),
            _pipe(server_reader, client_writer, profile.link()),
        )
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        for writer in (client_writer, server_writer):
            writer.close()


async def serve(profile: Profile) -> None:
    loop = asyncio.get_running_loop()
    upstream_ready: asyncio.Future[tuple[str, int]] = loop.create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # cancelled when we stop
            await _connection(reader, writer, await upstream_ready, profile)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    stop = loop.create_future()

    def stopping() -> None:
        if not stop.done():
            stop.set_result(None)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping)
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    host, port = (await stdin.readline()).decode().strip().rsplit(":", 1)
    upstream_ready.set_result((host, int(port)))
    eof = asyncio.ensure_future(stdin.read())  # stdin closing (the harness gone) stops us too
    await asyncio.wait([stop, eof], return_when=asyncio.FIRST_COMPLETED)
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rate-mb-s", type=float, help="cap per connection and direction (10**6 B/s)")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="added round-trip time")
    options = parser.parse_args()
    asyncio.run(serve(Profile("cli", options.rate_mb_s, options.rtt_ms)))


if __name__ == "__main__":
    main()
