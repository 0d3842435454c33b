"""The transfer's per-byte kernels in CPU-seconds per GiB of uncompressed output, on bench-like CSV.

    .venv/bin/python -m tests.bench.kernels [--megabytes 64] [--rounds 3]

Each kernel runs over the same member as the transfer reads it (pieces of resumable.PIECE bytes), best of
the rounds (process CPU time, so another engineer's load counts less): inflate (the standard library's
decompressobj, resumable.Inflater on zlib and on zlib-ng, asking stop() at every block boundary as the
transfer does, and isal when importable), CRC-32, the CSV row count (unquoted and with quoted fields) and
SHA-256. Prints one line per kernel and its JSON to stdout.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import time
import zlib
from collections.abc import Callable, Iterator

from fusion_extract import resumable
from fusion_extract.chain.archive import _CsvRows
from fusion_extract.resumable import PIECE, Inflater, Libz, Sha256
from tests.bench.datagen import member_blocks

GIB = 2**30
ARRIVES = 64 * 1024  # compressed bytes per read from the network


def csv_member(megabytes: int, quoted: bool) -> bytes:
    """A member like the bench's; `quoted` puts the description column in double quotes, as Fusion may."""
    data = b"".join(block for _, block in member_blocks("kernels", megabytes * 2**20, "csv"))
    if not quoted:
        return data
    return data.replace(b" and ", b'" and "')  # every row gets quotes, none a quoted newline


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


def best(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    plain, quoted = csv_member(args.megabytes, False), csv_member(args.megabytes, True)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    packed = compressor.compress(plain) + compressor.flush()
    plain_pieces, quoted_pieces = list(pieces(plain)), list(pieces(quoted))
    per_gib = GIB / len(plain)

    kernels: dict[str, Callable[[], object]] = {
        "inflate zlib.decompressobj": lambda: decompressobj_inflate("zlib")(packed),
        "inflate Inflater(zlib)": lambda: inflate_with(resumable.libz())(packed),
        "inflate Inflater(zlib-ng)": lambda: inflate_with(resumable.inflate_library())(packed),
        "crc32 zlib": lambda: crc_with(zlib.crc32)(plain_pieces),
        "crc32 resumable.crc32()": lambda: crc_with(resumable.crc32())(plain_pieces),
        "rows newline count only": lambda: over_pieces(lambda chunk: chunk.count(b"\n"))(plain_pieces),
        "rows _CsvRows unquoted": lambda: over_pieces(_CsvRows().feed)(plain_pieces),
        "rows _CsvRows quoted": lambda: over_pieces(_CsvRows().feed)(quoted_pieces),
        "sha256": lambda: sha256(plain_pieces),
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
    print(json.dumps({"megabytes": args.megabytes, "ratio": round(len(plain) / len(packed), 2), **figures}))


if __name__ == "__main__":
    main()
