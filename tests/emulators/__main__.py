"""`make emulator` (`python -m tests.emulators`): the whole product on this machine, in the foreground.

Both emulators and the three functions under the real fdk runtime, wired as in the cloud (see
tests/emulators/chain.py), with the Resource Scheduler ticking on the wall clock: a sweep every 5
minutes and a nightly run of the extract `Sales`. The bucket is the folder .local/bucket/fusion-landing;
function logs are in .local/logs. .local/endpoints.json holds every endpoint and OCID, plus `config`:
the product's configuration for a shell (API key in .local/oci/config). Ctrl-C stops.

Start a run by hand as `fn invoke` would, from another shell:
    .venv/bin/python -c 'import json,oci; e=json.load(open(".local/endpoints.json")); ...'
or simply let the schedule fire; `make demo` shows a whole session.
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
    parser.add_argument("--local", type=Path, default=REPO / ".local", help="state folder (default .local)")
    local = parser.parse_args().local.resolve()
    with LocalChain(local, bucket_root=local / "bucket", config={"POLL_BUDGET_SECONDS": "20"}) as chain:
        chain.fusion.define_extract("Sales", ExtractScenario(chunks=3, rows_per_chunk=1000))
        chain.schedule("Sales", "incremental")
        chain.scheduler.start()
        endpoints = chain.write_endpoints(local / "endpoints.json")
        print(
            f"OCI emulator    {endpoints['oci']['endpoint']}  (bucket folder {endpoints['bucket']['folder']})"
        )
        print(
            f"Fusion emulator {endpoints['fusion']['base_url']}  (tokens {endpoints['fusion']['idcs_url']})"
        )
        print(f"Functions       submit, poll, transfer (logs in {endpoints['logs']})")
        print(f"Endpoints and config in {local / 'endpoints.json'}. Ctrl-C stops.", flush=True)
        wait_for_interrupt()


def wait_for_interrupt() -> None:
    """Until Ctrl-C or SIGTERM (handled explicitly: a shell's background job ignores SIGINT)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
