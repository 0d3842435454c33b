"""Memory of the Fusion emulator while it serves a ~1 GB output ZIP (listing, download, resumed download).

The emulator runs as its own process (`python -m tests.emulators.fusion`); this script is its client,
with plain `requests`: token, submit, poll, list (the listing computes size and SHA-256 in one streaming
pass), then the download through `iter_content`, hashed and compared with the listing, then a Range
request for the second half (the archive is generated again up to the offset). The server's peak
resident memory comes from /proc/<pid>/status (VmHWM).

    .venv/bin/python -m tests.bench.fusion_memory [--megabytes 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from typing import Any

import requests

from tests.bench.support import MB, fusion_emulator, fusion_session, memory_mb
from tests.emulators.fusion.archive import Member, OutputFile, zip_stream
from tests.emulators.fusion.data import data_blocks

LEVEL = 1  # deflate level of the bench extract: the measure is memory, generation time is not
SAMPLE_ROWS = 20_000
JOBS = "/api/saas-batch/jobscheduler/v1/jobRequests"
FILES = "/api/saas-batch/jobfilemanager/v1/jobRequests"


def measure(megabytes: int = 1024) -> dict[str, float]:
    rows = int(megabytes * MB / _zip_bytes_per_row())
    with fusion_emulator(rows, LEVEL) as (served, pid):
        return {"rows": rows, **_exercise(served, pid)}


def _exercise(endpoints: dict[str, Any], pid: int) -> dict[str, float]:
    session = fusion_session(endpoints)
    idle_mb = memory_mb(pid)["VmRSS"]
    submitted = session.post(
        f"{endpoints['base_url']}{JOBS}",
        json={
            "serviceName": "boss",
            "jobDefinitionName": "DataExport",
            "requestParameters": {"submit.argument1": "Bench", "submit.argument2": "Full Data Extract"},
        },
    )
    location = submitted.headers["Location"]
    while session.get(location).json()["jobDetails"]["jobStatus"] != "SUCCEEDED":
        time.sleep(0.2)
    job_id = location.rsplit("/", 1)[1]
    started = time.perf_counter()
    listing = session.get(f"{endpoints['base_url']}{FILES}/{job_id}/outputFiles").json()
    list_seconds = time.perf_counter() - started
    archive = listing["items"][0]
    url, size = archive["$context"]["links"]["enclosure"]["href"], archive["fileSize"]
    started = time.perf_counter()
    whole, second_half = _download(session, url, {}, size // 2)
    download_seconds = time.perf_counter() - started
    ranged, _ = _download(session, url, {"Range": f"bytes={size // 2}-"}, 0)
    return {
        "zip_mb": round(size / MB, 1),
        "checksum_matches": float(f"sha-256={whole}" == archive["checksum"]),
        "range_matches": float(ranged == second_half),
        "list_seconds": round(list_seconds, 1),
        "download_seconds": round(download_seconds, 1),
        "download_mb_s": round(size / MB / download_seconds, 1),
        "server_idle_rss_mb": idle_mb,
        "server_peak_rss_mb": memory_mb(pid)["VmHWM"],
    }


def _download(
    session: requests.Session, url: str, headers: dict[str, str], tail_from: int
) -> tuple[str, str]:
    """SHA-256 of the body, and of its part from offset `tail_from` on."""
    whole, tail, position = hashlib.sha256(), hashlib.sha256(), 0
    with session.get(url, headers=headers, stream=True) as response:
        response.raise_for_status()
        for piece in response.iter_content(MB):
            whole.update(piece)
            tail.update(piece[max(tail_from - position, 0) :])
            position += len(piece)
    return whole.hexdigest(), tail.hexdigest()


def _zip_bytes_per_row() -> float:
    """Compressed bytes per generated row, measured on a sample, to size the extract."""
    member = Member("sample.csv", lambda: data_blocks("sample", 1, SAMPLE_ROWS, 0, "csv"))
    sample = OutputFile(
        "sample.zip", "application/zip", lambda: zip_stream([member], (2026, 1, 1, 0, 0, 0), LEVEL)
    )
    return sample.digest().size / SAMPLE_ROWS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--megabytes", type=int, default=1024, help="size of the output ZIP to serve")
    print(json.dumps(measure(parser.parse_args().megabytes)))


if __name__ == "__main__":
    main()
