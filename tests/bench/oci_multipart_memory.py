"""Peak memory of the OCI emulator while the real SDK's UploadManager sends it a large multipart upload.

The emulator runs in its own process so that its peak RSS (VmHWM, Linux) is not mixed with the
client's part buffers. The upload is generated on the fly; parts land as files under the emulator's root.

    .venv/bin/python -m tests.bench.oci_multipart_memory [--megabytes 1024] [--part-megabytes 64]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tests.bench.support import BUCKET, MB, ChunkReader, memory_mb, oci_emulator


def measure(megabytes: int = 1024, part_megabytes: int = 64) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as workdir, oci_emulator(Path(workdir)) as emulator:
        config = emulator.sdk_config()
        import oci

        before = memory_mb(emulator.pid)
        client = oci.object_storage.ObjectStorageClient(config, service_endpoint=emulator.endpoint)
        manager = oci.object_storage.UploadManager(client, parallel_process_count=3)
        started = time.perf_counter()
        manager.upload_stream(
            emulator.namespace, BUCKET, "big.bin", ChunkReader(megabytes * MB), part_size=part_megabytes * MB
        )
        seconds = time.perf_counter() - started
        after = memory_mb(emulator.pid)
        size = emulator.object_path("big.bin").stat().st_size
    return {
        "uploaded_mb": round(size / MB, 1),
        "part_mb": part_megabytes,
        "seconds": round(seconds, 2),
        "emulator_rss_before_mb": before["VmRSS"],
        "emulator_peak_rss_mb": after["VmHWM"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--part-megabytes", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(measure(args.megabytes, args.part_megabytes)))


if __name__ == "__main__":
    main()
