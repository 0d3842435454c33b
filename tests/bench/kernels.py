"""The transfer's per-byte kernels in CPU-seconds per GiB of uncompressed output, on bench-like CSV.

    .venv/bin/python -m tests.bench.kernels [--megabytes 64] [--rounds 3]

Each kernel runs over the same member as the transfer reads it (pieces of resumable.PIECE bytes), best of
the rounds (process CPU time, so another engineer's load counts less): inflate (the standard library's
decompressobj, resumable.Inflater on zlib and on zlib-ng, asking stop() at every block boundary as the
transfer does, fast_inflate's inflater as members sure to finish get it, and the zlib-ng and isal
packages' own bindings), CRC-32, the CSV row count (unquoted and with quoted fields), SHA-256, upload
parts of 8 MiB (each a new buffer, as before, or the buffers of a unit's bound filled again), and the
item count of a 4 MiB JSON member (json.loads against items.json_items). Prints one line per kernel and
its JSON to stdout.

    .venv/bin/python -m tests.bench.kernels members [--archive .local/bench-data/v1-500mib-1m-s11/archive.zip]

Every member of a bench archive (`make bench` builds them) through MemberStream, all checks included, as a
member sure to finish goes (no stop: ISA-L) and as one that may stop goes (the resumable inflater).

    .venv/bin/python -m tests.bench.kernels ranges [--megabytes 128] [--rate-mb-s 40]

A download from a loopback server that caps each connection (a token bucket per connection, as a cloud
link per TCP flow): wall seconds and CPU-s/GiB (the server's threads included: one process) of
fusion.download (one stream) and ParallelDownload.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import importlib.util
import json
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from fusion_extract import resumable
from fusion_extract.chain.transfer.archive import _CsvRows
from fusion_extract.chain.transfer.items import json_items
from fusion_extract.chain.transfer.writing import HeldBytes, Part
from fusion_extract.chunks import exact_parts
from fusion_extract.fast_inflate import fast_inflater
from fusion_extract.heap import map_large_buffers
from fusion_extract.resumable import PIECE, Inflater, Libz, Sha256
from tests.bench.datagen import member_blocks

GIB = 2**30
PART = 8 * 2**20  # UPLOAD_PART_MB's default
ARRIVES = 64 * 1024  # compressed bytes per read from the network


def csv_member(megabytes: int, quoted: bool) -> bytes:
    """A member like the bench's; `quoted` puts the description column in double quotes, as Fusion may."""
    data = b"".join(block for _, block in member_blocks("kernels", megabytes * 2**20, "csv"))
    if not quoted:
        return data
    return data.replace(b" and ", b'" and "')  # every row gets quotes, none a quoted newline


def json_member(megabytes: int) -> bytes:
    """A JSON member like the bench's ({"items": [...]}), at most JSON_COUNT_LIMIT as the transfer keeps."""
    return b"".join(block for _, block in member_blocks("kernels", megabytes * 2**20, "json"))


def parsed_items(data: bytes) -> int:
    return len(json.loads(data)["items"])


def count_repeatedly(count: Callable[[bytes], int | None], document: bytes, times: int) -> None:
    for _ in range(times):
        count(document)


def json_items_of(data: bytes) -> int | None:
    return json_items(data, "kernels.json")


def pieces(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), PIECE):
        yield bytes(view[start : start + PIECE])


def inflate_with(library: Libz) -> Callable[[bytes], None]:
    def run(packed: bytes) -> None:
        with Inflater(library=library) as inflater:
            for _ in inflater.feed(packed, lambda: False):
                pass

    return run


def fast_inflate(packed: bytes) -> None:
    """fast_inflate as the transfer uses it for a member sure to finish: ISA-L, pieces of PIECE bytes."""
    with fast_inflater() as inflater:
        for start in range(0, len(packed), ARRIVES):
            for _ in inflater.feed(packed[start : start + ARRIVES]):
                pass


def decompressobj_inflate(module: str) -> Callable[[bytes], None]:
    """A module's decompressobj fed compressed pieces as they arrive (no stop, no resume)."""

    def run(packed: bytes) -> None:
        inflater = importlib.import_module(module).decompressobj(-15)
        for start in range(0, len(packed), ARRIVES):
            inflater.decompress(packed[start : start + ARRIVES])

    return run


def over_pieces(kernel: Callable[[bytes], object]) -> Callable[[list[bytes]], None]:
    def run(chunks: list[bytes]) -> None:
        for chunk in chunks:
            kernel(chunk)

    return run


def crc_with(crc32: Callable[[bytes, int], int]) -> Callable[[list[bytes]], None]:
    def run(chunks: list[bytes]) -> None:
        value = 0
        for chunk in chunks:
            value = crc32(chunk, value)

    return run


def sha256(chunks: list[bytes]) -> None:
    digest = Sha256()
    for chunk in chunks:
        digest.update(chunk)


def parts_fresh(chunks: list[bytes]) -> None:
    """Upload parts as before the pool: each a new buffer (a mapping of its own: heap.py), then dropped."""
    for part in exact_parts(chunks, PART):
        del part


def parts_reused(chunks: list[bytes]) -> None:
    """Upload parts as a unit cuts them: into the buffers of its bound, each given back once sent."""
    held = HeldBytes(2 * PART, 2)
    for part in Part(PART, held).cut(chunks):
        held.give(part)


def best(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times)


class CappedFiles(http.server.BaseHTTPRequestHandler):
    """Serves `content` with Range and an ETag, each connection capped at `rate` bytes per second."""

    content = b""
    rate = 40e6
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        size, asked = len(self.content), self.headers.get("Range")
        start, end = 0, size
        if asked:
            first, _, last = asked.removeprefix("bytes=").partition("-")
            start, end = int(first), int(last) + 1 if last else size
        self.send_response(206 if asked else 200)
        if asked:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.send_header("Content-Length", str(end - start))
        self.send_header("ETag", '"v1"')
        self.end_headers()
        began = time.monotonic()
        for at in range(start, end, ARRIVES):
            self.wfile.write(self.content[at : min(at + ARRIVES, end)])
            ahead = (at + ARRIVES - start) / self.rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)

    def log_message(self, *_: object) -> None:
        pass


def ranges(megabytes: int, rate_mb_s: float) -> None:
    """Wall and CPU of one stream against parallel ranges, through a per-connection cap."""
    from fusion_extract.fusion.download import ParallelDownload, download
    from fusion_extract.fusion.http import HttpClient
    from fusion_extract.models import OutputFile
    from fusion_extract.retry import RetryPolicy
    from tests.clocks import ManualClock

    CappedFiles.content = random.Random(7).randbytes(megabytes * 2**20)
    CappedFiles.rate = rate_mb_s * 1e6
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CappedFiles)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/content"
    file = OutputFile("bench.zip", len(CappedFiles.content), None, url)
    figures = {}
    with requests.Session() as session:
        retry = RetryPolicy(ManualClock(), max_attempts=2, max_seconds=10, rand=lambda: 0.5)
        client = HttpClient(session, timeout=(3.0, 30.0), ca_bundle=None, retry=retry)
        for name, reader in (("one stream", download), ("parallel ranges", ParallelDownload)):
            wall, cpu = time.monotonic(), time.process_time()
            for _ in reader(client, file):
                pass
            wall, cpu = time.monotonic() - wall, time.process_time() - cpu
            figures[name] = {"wall_s": round(wall, 2), "cpu_s_per_gib": round(cpu * GIB / file.size, 3)}
            print(f"{name:16} {wall:6.2f} s wall  {cpu * GIB / file.size:6.3f} CPU-s/GiB")
    server.shutdown()
    print(json.dumps({"megabytes": megabytes, "rate_mb_s": rate_mb_s, **figures}))


def members(archive: Path, rounds: int) -> None:
    """Every member of a bench archive through MemberStream (inflate, CRC-32, SHA-256, rows, items), as
    members sure to finish go (no stop: ISA-L) and as members that may stop go (the resumable inflater)."""
    from fusion_extract.chain.transfer.archive import MemberStream, ZipLimits, read_directory

    def read(start: int, end: int) -> Iterator[bytes]:
        with archive.open("rb") as file:
            file.seek(start)
            while start < end and (block := file.read(min(2**20, end - start))):
                start += len(block)
                yield block

    limits = ZipLimits(max_entries=10_000, max_total_bytes=64 * GIB, max_ratio=200)
    entries = read_directory(read, archive.stat().st_size, limits)
    output = sum(entry.size for entry in entries)

    def unpack(stop: Callable[[], bool] | None) -> None:
        for entry in entries:
            stream = MemberStream(read, entry, stop=stop)
            for _ in stream:
                pass
            stream.result()

    ways: dict[str, Callable[[], bool] | None] = {"sure to finish": None, "may stop": lambda: False}
    figures = {
        name: round(best(functools.partial(unpack, stop), rounds) * GIB / output, 3)
        for name, stop in ways.items()
    }
    for name, seconds in figures.items():
        print(f"members, {name:15} {seconds:6.3f} CPU-s/GiB")
    print(json.dumps({"archive": str(archive), **figures}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", nargs="?", choices=("kernels", "ranges", "members"), default="kernels")
    parser.add_argument("--archive", type=Path, default=None)
    parser.add_argument("--megabytes", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate-mb-s", type=float, default=40.0)
    args = parser.parse_args()
    if args.what == "members":
        members(args.archive or Path(".local/bench-data/v1-500mib-1m-s11/archive.zip"), args.rounds)
        return
    if args.what == "ranges":
        ranges(args.megabytes or 128, args.rate_mb_s)
        return
    args.megabytes = args.megabytes or 64
    map_large_buffers()  # as the functions run: a part's buffer is a mapping of its own
    plain, quoted = csv_member(args.megabytes, False), csv_member(args.megabytes, True)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    packed = compressor.compress(plain) + compressor.flush()
    plain_pieces, quoted_pieces = list(pieces(plain)), list(pieces(quoted))
    per_gib = GIB / len(plain)
    document = json_member(4)
    json_per_gib = GIB / len(document)

    kernels: dict[str, Callable[[], object]] = {
        "inflate zlib.decompressobj": lambda: decompressobj_inflate("zlib")(packed),
        "inflate Inflater(zlib)": lambda: inflate_with(resumable.libz())(packed),
        "inflate Inflater(zlib-ng)": lambda: inflate_with(resumable.inflate_library())(packed),
        "inflate fast_inflater()": lambda: fast_inflate(packed),
        "crc32 zlib": lambda: crc_with(zlib.crc32)(plain_pieces),
        "crc32 resumable.crc32()": lambda: crc_with(resumable.crc32())(plain_pieces),
        "rows newline count only": lambda: over_pieces(lambda chunk: chunk.count(b"\n"))(plain_pieces),
        "rows _CsvRows unquoted": lambda: over_pieces(_CsvRows().feed)(plain_pieces),
        "rows _CsvRows quoted": lambda: over_pieces(_CsvRows().feed)(quoted_pieces),
        "sha256": lambda: sha256(plain_pieces),
        "parts fresh exact_parts": lambda: parts_fresh(plain_pieces),
        "parts reused Part.cut": lambda: parts_reused(plain_pieces),
    }
    for module in ("zlib_ng.zlib_ng", "isal.isal_zlib"):  # where installed: the libraries' own bindings
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            kernels[f"inflate {module}.decompressobj"] = functools.partial(
                decompressobj_inflate(module), packed
            )
    figures = {}
    for name, run in kernels.items():
        figures[name] = round(best(run, args.rounds) * per_gib, 3)
        print(f"{name:34} {figures[name]:6.3f} CPU-s/GiB")
    # JSON items, over a 4 MiB member as the transfer keeps one whole (repeated to a GiB's worth of time)
    repeat = max(1, args.megabytes // 4)
    counters: dict[str, Callable[[bytes], int | None]] = {
        "json items json.loads": parsed_items,
        "json items json_items": json_items_of,
    }
    for name, count in counters.items():
        seconds = best(functools.partial(count_repeatedly, count, document, repeat), args.rounds)
        figures[name] = round(seconds / repeat * json_per_gib, 3)
        print(f"{name:34} {figures[name]:6.3f} CPU-s/GiB")
    print(json.dumps({"megabytes": args.megabytes, "ratio": round(len(plain) / len(packed), 2), **figures}))


if __name__ == "__main__":
    main()
