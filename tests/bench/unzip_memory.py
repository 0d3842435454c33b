"""Peak memory and throughput of `unpack` on a ~1 GB (uncompressed) archive streamed from memory.

The archive is generated on the fly by zipfile writing to an unseekable sink (so it uses data descriptors,
as a streamed download would look), one chunk at a time: nothing but the current chunk is ever held.
The stage callback only drains. Time spent generating is measured and left out of the throughput.

    .venv/bin/python -m tests.bench.unzip_memory [--megabytes 1024]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
import zipfile
from collections.abc import Iterator

from fusion_extract.chain.archive import ZipLimits, unpack

MB = 1024 * 1024
CHUNK = 1 * MB  # download chunk size handed to unpack


class _Sink:
    """A write-only file object without tell/seek: zipfile then streams, with data descriptors."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._pending.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._pending)
        self._pending.clear()
        return data


def _rows_block(seed: int = 7, size: int = MB) -> bytes:
    """About `size` bytes of Fusion-like CSV rows: ids, quoted text, timestamps, numbers."""
    rng = random.Random(seed)
    rows, total = [], 0
    while total < size:
        row = (
            f'{rng.randrange(10**12)},"{rng.choice(["ACME, Inc.", "Globex", "Initech"])}",'
            f"{rng.getrandbits(64):016x},2024-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T07:21:57Z,"
            f"{rng.random() * 1000:.2f},Y\n"
        ).encode()
        rows.append(row)
        total += len(row)
    return b"".join(rows)


def archive_chunks(total_bytes: int, members: int = 2) -> Iterator[bytes]:
    """A deflated ZIP of `members` CSV files holding about `total_bytes` in all, yielded as it is written."""
    block = _rows_block()
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for number in range(members):
            with archive.open(f"VIEW_{number}.csv", "w", force_zip64=True) as member:
                member.write(b"ID,NAME,KEY,UPDATED,AMOUNT,ACTIVE\n")
                for _ in range(total_bytes // members // len(block)):
                    member.write(block)
                    if data := sink.take():
                        yield data
    yield sink.take()


class _Timed:
    """Re-chunks a byte stream into CHUNK pieces and accounts the time spent producing it."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.seconds = 0.0
        self.size = 0
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        buffer = b""
        while True:
            started = time.perf_counter()
            data = next(self._chunks, None)
            self.seconds += time.perf_counter() - started
            if data is None:
                break
            buffer += data
            while len(buffer) >= CHUNK:
                piece, buffer = buffer[:CHUNK], buffer[CHUNK:]
                self.size += len(piece)
                yield piece
        if buffer:
            self.size += len(buffer)
            yield buffer


def measure(megabytes: int = 1024) -> dict[str, float]:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    source = _Timed(archive_chunks(megabytes * MB))
    limits = ZipLimits(max_entries=100, max_total_bytes=64 * 2**30, max_ratio=200)
    started = time.perf_counter()
    result = unpack(source, expected_sha256=None, expected_size=None, limits=limits, stage=_drain)
    elapsed = time.perf_counter() - started - source.seconds
    uncompressed = sum(member.size for member in result.members)
    return {
        "uncompressed_mb": round(uncompressed / MB, 1),
        "compressed_mb": round(result.archive_size / MB, 1),
        "rows": sum(member.rows or 0 for member in result.members),
        "unpack_seconds": round(elapsed, 2),
        "generate_seconds": round(source.seconds, 2),
        "throughput_mb_s": round(uncompressed / MB / elapsed, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_before_mb": round(rss_before / 1024, 1),
    }


def _drain(path: str, chunks: Iterator[bytes]) -> None:
    for _ in chunks:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--megabytes", type=int, default=1024, help="uncompressed size to generate")
    print(json.dumps(measure(parser.parse_args().megabytes)))


if __name__ == "__main__":
    main()
