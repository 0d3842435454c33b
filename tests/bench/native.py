"""Resumable hashing and inflating (resumable.py, ctypes) against the standard library on the same C
libraries, and against zlib-state (a compiled extension doing the same for inflate) when it is importable.

    .venv/bin/python -m tests.bench.native [--megabytes 50] [--rounds 5]

Prints MB/s of uncompressed data, median of the rounds, for: SHA-256 via resumable.Sha256 and via hashlib;
inflate via resumable.Inflater (with a stop() asked at every block boundary, as the transfer does) and
via zlib.decompressobj (which cannot stop and resume); zlib-state's Decompressor, checking
block_boundary() after every read as a stop would.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import random
import statistics
import time
import zlib
from collections.abc import Callable

from fusion_extract.resumable import Inflater, Sha256

CHUNK = 1 << 20  # what the transfer hands on per read


def extract_like(megabytes: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    rows: list[bytes] = []
    size, target = 0, megabytes * 10**6
    while size < target:
        row = b"%d,INV-%08d,Supplier %04d Ltd,2024-%02d-%02d,USD,%d.%02d,PAID\n" % (
            len(rows),
            rnd.randint(1, 10**7),
            rnd.randint(1, 300),
            rnd.randint(1, 12),
            rnd.randint(1, 28),
            rnd.randint(1, 10**5),
            rnd.randint(0, 99),
        )
        rows.append(row)
        size += len(row)
    return b"".join(rows)


def resumable_sha(data: memoryview, packed: memoryview) -> None:
    digest = Sha256()
    for start in range(0, len(data), CHUNK):
        digest.update(data[start : start + CHUNK])
    digest.digest()


def hashlib_sha(data: memoryview, packed: memoryview) -> None:
    digest = hashlib.sha256()
    for start in range(0, len(data), CHUNK):
        digest.update(data[start : start + CHUNK])
    digest.digest()


def resumable_inflate(data: memoryview, packed: memoryview) -> None:
    inflater, produced = Inflater(), 0
    for start in range(0, len(packed), CHUNK):
        for piece in inflater.feed(packed[start : start + CHUNK], stop=lambda: False):
            produced += len(piece)
    assert produced == len(data)


def zlib_inflate(data: memoryview, packed: memoryview) -> None:
    inflater, produced = zlib.decompressobj(-15), 0
    for start in range(0, len(packed), CHUNK):
        produced += len(inflater.decompress(packed[start : start + CHUNK]))
    assert produced == len(data)


def zlib_state_inflate(data: memoryview, packed: memoryview) -> None:
    from _zlib_state import Decompressor  # type: ignore[import-not-found]  # optional, not a dependency

    inflater, produced, position, out = Decompressor(-15), 0, 0, bytearray(256 * 1024)
    while not inflater.eof():
        needed = inflater.needs_input()
        if needed > 0:
            inflater.feed_input(bytes(packed[position : position + needed]))
            position += needed
        produced += inflater.read(outbytes=out)
        inflater.block_boundary()  # where a stop would be asked
    assert produced == len(data)


CASES: dict[str, Callable[[memoryview, memoryview], None]] = {
    "sha256 resumable.Sha256": resumable_sha,
    "sha256 hashlib": hashlib_sha,
    "inflate resumable.Inflater": resumable_inflate,
    "inflate zlib.decompressobj": zlib_inflate,
    "inflate zlib-state": zlib_state_inflate,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = extract_like(args.megabytes)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    packed = memoryview(compressor.compress(data) + compressor.flush())
    for name, case in CASES.items():
        if name == "inflate zlib-state" and importlib.util.find_spec("_zlib_state") is None:
            continue
        took = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            case(memoryview(data), packed)
            took.append(time.perf_counter() - started)
        print(f"{name:28s} {len(data) / 1e6 / statistics.median(took):6.0f} MB/s")


if __name__ == "__main__":
    main()
