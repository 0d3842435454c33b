"""`make emulator` (`python -m tests.emulators`): the whole product on this machine, in the foreground.

Both emulators and the three functions under the real fdk runtime, wired as in the cloud (see
tests/emulators/chain.py), with the Resource Scheduler ticking on the wall clock: a sweep every 5
minutes and a nightly run of the extract `Sales`. The bucket is the folder .local/bucket/fusion-landing;
function logs are in .local/emulator/logs; the bucket is .local/emulator/bucket/fusion-landing (never
touched by `make demo`, which keeps its own .local/demo/). .local/endpoints.json holds every endpoint and
OCID, plus `config`: the product's configuration for a shell (API key in .local/emulator/oci/config).
Job ids never repeat across restarts: each start reserves a block of ids in .local/emulator/next-job-id.
Ctrl-C stops.

From another shell, the operator's CLI works against it as against the cloud:
    .venv/bin/fusion-extract --local doctor
    .venv/bin/fusion-extract --local submit Sales --mode full
    .venv/bin/fusion-extract --local runs
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from tests.emulators.chain import REPO, LocalChain
from tests.emulators.fusion import ExtractScenario


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--state", type=Path, default=REPO / ".local" / "emulator", help="state folder (.local/emulator)"
    )
    parser.add_argument(
        "--endpoints", type=Path, default=REPO / ".local" / "endpoints.json", help="endpoints file to write"
    )
    args = parser.parse_args()
    local, endpoints_file = args.state.resolve(), args.endpoints.resolve()
    config = {"POLL_BUDGET_SECONDS": "20"}
    first_job_id = reserve_job_ids(local / "next-job-id")
    with LocalChain(
        local, bucket_root=local / "bucket", config=config, catalog=CATALOG, first_job_id=first_job_id
    ) as chain:
        chain.fusion.define_extract("Sales", ExtractScenario(chunks=3, rows_per_chunk=1000))
        chain.fusion.define_extract("Orders", ExtractScenario(chunks=2, rows_per_chunk=500, view="orders"))
        chain.schedule_catalog()
        chain.scheduler.start()
        endpoints = chain.write_endpoints(endpoints_file)
        print(
            f"OCI emulator    {endpoints['oci']['endpoint']}  (bucket folder {endpoints['bucket']['folder']})"
        )
        print(
            f"Fusion emulator {endpoints['fusion']['base_url']}  (tokens {endpoints['fusion']['idcs_url']})"
        )
        print(f"Functions       submit, poll, transfer (logs in {endpoints['logs']})")
        print(
            f"Job ids from {first_job_id}; endpoints and config in {endpoints_file}. Ctrl-C stops.",
            flush=True,
        )
        wait_for_interrupt()


CATALOG = {  # with Terraform's default service level (`fusion-extract --local status`)
    "Sales": {
        "mode": "incremental",
        "schedule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=0",
        "expected_within_hours": 4,
    },
    "Orders": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=3;BYMINUTE=0", "expected_within_hours": 4},
}
JOB_ID_BLOCK = 100_000  # ids one emulator session may use; the next start begins past them


def reserve_job_ids(path: Path, first: int = 44046) -> int:
    """The first job id of this session; the file then holds the first id of the next one, so an id is
    never given twice however the session ends."""
    start = max(first, int(path.read_text().strip() or first)) if path.exists() else first
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{start + JOB_ID_BLOCK}\n")
    return start


def wait_for_interrupt() -> None:
    """Until Ctrl-C or SIGTERM (handled explicitly: a shell's background job ignores SIGINT)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
