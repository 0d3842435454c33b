"""Peak memory of the OCI emulator while the real SDK's UploadManager sends it a large multipart upload.

The emulator runs in its own process so that its peak RSS (VmHWM, Linux) is not mixed with the
client's part buffers. The upload is generated on the fly; parts land as files under the emulator's root.

    .venv/bin/python -m tests.bench.oci_multipart_memory [--megabytes 1024] [--part-megabytes 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1024 * 1024


class _Generated:
    """A non-seekable stream of `size` bytes, produced a block at a time."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = os.urandom(MB)

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return (self.block * (n // MB + 1))[:n]


def _memory(pid: int) -> dict[str, int]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines)
    return {key: int(fields[key].split()[0]) // 1024 for key in ("VmRSS", "VmHWM")}  # MiB


def serve(root: Path) -> None:
    from tests.emulators.oci import OciEmulator

    with OciEmulator(root) as emu:
        emu.create_bucket("bench")
        print(json.dumps({"endpoint": emu.endpoint, "config": emu.api_key_config()}), flush=True)
        sys.stdin.read()  # until the parent closes it


def measure(megabytes: int, part_megabytes: int) -> dict[str, object]:
    os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")
    os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")
    import oci

    with tempfile.TemporaryDirectory() as root:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.oci_multipart_memory", "--serve", root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None and server.stdin is not None
        try:
            started = json.loads(server.stdout.readline())
            before = _memory(server.pid)
            client = oci.object_storage.ObjectStorageClient(
                started["config"], service_endpoint=started["endpoint"]
            )
            manager = oci.object_storage.UploadManager(client, parallel_process_count=3)
            clock = time.perf_counter()
            manager.upload_stream(
                "emuns", "bench", "big.bin", _Generated(megabytes * MB), part_size=part_megabytes * MB
            )
            seconds = time.perf_counter() - clock
            after = _memory(server.pid)
            size = (Path(root) / "bench" / "big.bin").stat().st_size
        finally:
            server.stdin.close()
            server.wait(timeout=30)
    return {
        "uploaded_mib": size // MB,
        "part_mib": part_megabytes,
        "seconds": round(seconds, 2),
        "emulator_rss_mib_before": before["VmRSS"],
        "emulator_peak_rss_mib": after["VmHWM"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--part-megabytes", type=int, default=64)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    print(json.dumps(measure(args.megabytes, args.part_megabytes)))


if __name__ == "__main__":
    main()
