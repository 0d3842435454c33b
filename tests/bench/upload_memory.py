"""Client-side peak memory and throughput of OciObjectStore.upload_stream, against the OCI emulator.

The emulator runs in a child process, so this process's peak RSS (VmHWM) is the client's alone: the
SDK, the part buffers and the worker threads. The stream is generated on the fly in 1 MiB chunks.
`--manager` measures the SDK's UploadManager.upload_stream the same way, for comparison.

    .venv/bin/python -m tests.bench.upload_memory [--megabytes 1024] [--part-megabytes 16]
        [--parallelism 3] [--manager]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MB = 1024 * 1024


def _memory_mb() -> dict[str, int]:
    """This process's current and peak resident memory (Linux /proc), MiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {key: int(fields[key].split()[0]) // 1024 for key in ("VmRSS", "VmHWM")}


def _chunks(size: int) -> Iterator[bytes]:
    block = os.urandom(MB)
    for start in range(0, size, MB):
        yield block[: min(MB, size - start)]


class _Reader:
    """The same bytes as _chunks, as the non-seekable file-like object UploadManager wants."""

    def __init__(self, size: int) -> None:
        self.chunks = _chunks(size)

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while n < 0 or len(out) < n:
            chunk = next(self.chunks, b"")
            if not chunk:
                break
            out += chunk
        return bytes(out)


def serve(root: Path) -> None:
    from tests.emulators.oci import OciEmulator

    with OciEmulator(root) as emu:
        emu.create_bucket("bench")
        print(json.dumps({"endpoint": emu.endpoint, "config": emu.api_key_config()}), flush=True)
        sys.stdin.read()  # until the parent closes it


def _upload(started: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    import oci

    from fusion_extract.oci.objects import OciObjectStore

    client = oci.object_storage.ObjectStorageClient(
        started["config"],
        service_endpoint=started["endpoint"],
        retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
    )
    size, part = args.megabytes * MB, args.part_megabytes * MB
    if args.manager:
        manager = oci.object_storage.UploadManager(client, parallel_process_count=args.parallelism)
        manager.upload_stream("emuns", "bench", "big.bin", _Reader(size), part_size=part)
        return {"size": size}
    store = OciObjectStore(client, "emuns", "bench", part_size=part, parallelism=args.parallelism)
    info = store.upload_stream("big.bin", _chunks(size))
    return {"size": info.size, "md5": info.md5}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import oci.object_storage  # noqa: F401 (import costs belong to the baseline)

    import fusion_extract.oci.objects  # noqa: F401

    baseline = _memory_mb()
    with tempfile.TemporaryDirectory() as root:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.upload_memory", "--serve", root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None and server.stdin is not None
        try:
            started = json.loads(server.stdout.readline())
            clock = time.perf_counter()
            result = _upload(started, args)
            seconds = time.perf_counter() - clock
            landed = (Path(root) / "bench" / "big.bin").stat().st_size
        finally:
            server.stdin.close()
            server.wait(timeout=60)
    peak = _memory_mb()["VmHWM"]
    return {
        "uploader": "UploadManager.upload_stream" if args.manager else "OciObjectStore.upload_stream",
        "megabytes": args.megabytes,
        "part_megabytes": args.part_megabytes,
        "parallelism": args.parallelism,
        "landed_bytes_match": landed == result["size"] == args.megabytes * MB,
        "seconds": round(seconds, 2),
        "throughput_mb_s": round(args.megabytes / seconds, 1),
        "client_rss_before_mb": baseline["VmRSS"],
        "client_peak_rss_mb": peak,
        "client_peak_growth_mb": peak - baseline["VmRSS"],
        "parts_bound_mb": (args.parallelism + 1) * args.part_megabytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--part-megabytes", type=int, default=16)
    parser.add_argument("--parallelism", type=int, default=3)
    parser.add_argument("--manager", action="store_true", help="measure the SDK's UploadManager instead")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")
    os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")
    print(json.dumps(measure(args), indent=2))


if __name__ == "__main__":
    main()
