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
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.support import BUCKET, MB, ChunkReader, OciProcess, generated_chunks, memory_mb, oci_emulator


def measure(
    megabytes: int = 1024, part_megabytes: int = 16, parallelism: int = 3, manager: bool = False
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir, oci_emulator(Path(workdir)) as oci:
        client = _client(oci)  # the SDK's import and the client count in the baseline
        baseline = memory_mb()
        started = time.perf_counter()
        size, part = megabytes * MB, part_megabytes * MB
        if manager:
            from oci.object_storage import UploadManager

            uploader = UploadManager(client, parallel_process_count=parallelism)
            uploader.upload_stream(oci.namespace, BUCKET, "big.bin", ChunkReader(size), part_size=part)
        else:
            from fusion_extract.oci.objects import OciObjectStore

            store = OciObjectStore(client, oci.namespace, BUCKET, part_size=part, parallelism=parallelism)
            store.upload_stream("big.bin", generated_chunks(size))
        seconds = time.perf_counter() - started
        landed = oci.object_path("big.bin").stat().st_size
        peak = memory_mb()["VmHWM"]
    return {
        "uploader": "UploadManager.upload_stream" if manager else "OciObjectStore.upload_stream",
        "megabytes": megabytes,
        "part_megabytes": part_megabytes,
        "parallelism": parallelism,
        "landed_bytes_match": landed == size,
        "seconds": round(seconds, 2),
        "throughput_mb_s": round(megabytes / seconds, 1),
        "client_rss_before_mb": baseline["VmRSS"],
        "client_peak_rss_mb": peak,
        "client_peak_growth_mb": round(peak - baseline["VmRSS"], 1),
        "parts_bound_mb": (parallelism + 1) * part_megabytes,
    }


def _client(oci: OciProcess) -> Any:
    config = oci.sdk_config()
    import oci as sdk

    import fusion_extract.oci.objects  # noqa: F401 (import costs belong to the baseline)

    return sdk.object_storage.ObjectStorageClient(
        config,
        service_endpoint=oci.endpoint,
        retry_strategy=sdk.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=sdk.circuit_breaker.NoCircuitBreakerStrategy(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--part-megabytes", type=int, default=16)
    parser.add_argument("--parallelism", type=int, default=3)
    parser.add_argument("--manager", action="store_true", help="measure the SDK's UploadManager instead")
    args = parser.parse_args()
    print(json.dumps(measure(args.megabytes, args.part_megabytes, args.parallelism, args.manager)))


if __name__ == "__main__":
    main()
