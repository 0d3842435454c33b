"""`make emulator` (`python -m tests.emulators`): the whole product on this machine, in the foreground.

Both emulators and the three functions under the real fdk runtime, wired as in the cloud (see
tests/emulators/chain.py), with the Resource Scheduler ticking on the wall clock: a sweep every 5
minutes and a nightly run of each extract. Function logs are in .local/emulator/logs; the bucket is
.local/emulator/bucket/fusion-landing (never touched by `make demo`, which keeps its own .local/demo/).
.local/endpoints.json holds every endpoint and OCID, plus `config`: the product's configuration for a shell
(API key in .local/emulator/oci/config). Job ids never repeat across restarts: each start reserves a block
of ids in .local/emulator/next-job-id. Ctrl-C stops.

Every alert is printed as the e-mail it would be (subject and body), so each runbook entry can be rehearsed:
the catalog has extracts that land, fail, hang, time out, need a person and carry a big file (REHEARSALS).
Runs time out after RUN_DEADLINE_HOURS = 0.1 here (6 minutes, met by the next poll).

From another shell, the operator's CLI works against it as against the cloud:
    .venv/bin/fusion-extract --local doctor
    .venv/bin/fusion-extract --local submit Failing --mode full
    .venv/bin/fusion-extract --local runs
    .venv/bin/fusion-extract --local logs <run id>     (or search them as in the cloud: docs/run-history.md)
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from tests.emulators.chain import REPO, LocalChain
from tests.emulators.fusion import ExtractScenario
from tests.emulators.mailbox import Mailbox


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
    config = {"POLL_BUDGET_SECONDS": "20", "RUN_DEADLINE_HOURS": str(DEADLINE_HOURS)}
    first_job_id = reserve_job_ids(local / "next-job-id")
    with LocalChain(
        local, bucket_root=local / "bucket", config=config, catalog=CATALOG, first_job_id=first_job_id
    ) as chain:
        for name, scenario in scenarios().items():
            chain.fusion.define_extract(name, scenario)
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
        for name, what in REHEARSALS.items():
            print(f"  {name:<9} {what}")
        print("Alerts are printed below as the e-mails people would get.", flush=True)
        mailbox = Mailbox(chain.ons, chain.topics["alerts"])
        wait_for_interrupt(lambda: [print(mail, flush=True) for mail in mailbox.new_mail()])


DEADLINE_HOURS = 0.1
CATALOG = {  # with Terraform's default service level (`fusion-extract --local status`)
    "Sales": {
        "mode": "incremental",
        "schedule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=0",
        "expected_within_hours": 4,
    },
    "Orders": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=3;BYMINUTE=0", "expected_within_hours": 4},
    "Failing": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=4;BYMINUTE=0", "expected_within_hours": 4},
    "Hanging": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=4;BYMINUTE=10", "expected_within_hours": 4},
    "Slow": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=4;BYMINUTE=20", "expected_within_hours": 4},
    "Recovery": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=4;BYMINUTE=30", "expected_within_hours": 4},
    "Big": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=4;BYMINUTE=40", "expected_within_hours": 4},
}
# What submitting each extract rehearses (README: "Rehearse the runbook").
REHEARSALS = {
    "Sales": "lands (3 files): `landed`; then `reland <job> --extract Sales --mode full`",
    "Orders": "lands (2 files)",
    "Failing": "every job ends ERROR: `failed` after RUN_MAX_ATTEMPTS; rehearse `rerun <run id>`",
    "Hanging": "the job runs forever: rehearse `watch` and `cancel <run id>`; left alone, `timed_out`",
    "Slow": "the job succeeds after 10 minutes, past the 6-minute deadline: `timed_out`, then `reland`",
    "Recovery": "the job stops in ERROR_MANUAL_RECOVERY: `needs_human`; rehearse `cancel <run id>`",
    "Big": "one large archive (about 100 MB): watch a long transfer",
}


def scenarios() -> dict[str, ExtractScenario]:
    """How Fusion's emulator runs each extract of CATALOG."""
    return {
        "Sales": ExtractScenario(chunks=3, rows_per_chunk=1000),
        "Orders": ExtractScenario(chunks=2, rows_per_chunk=500, view="orders"),
        "Failing": ExtractScenario(fail_first_jobs=10**9, seconds_running=2),
        "Hanging": ExtractScenario(hold=threading.Event()),  # never set: RUNNING until cancelled or timed out
        "Slow": ExtractScenario(seconds_running=600),
        "Recovery": ExtractScenario(outcome="ERROR_MANUAL_RECOVERY", seconds_running=2),
        "Big": ExtractScenario(chunks=1, rows_per_chunk=400_000, compress_level=0),
    }


JOB_ID_BLOCK = 100_000  # ids one emulator session may use; the next start begins past them


def reserve_job_ids(path: Path, first: int = 44046) -> int:
    """The first job id of this session; the file then holds the first id of the next one, so an id is
    never given twice however the session ends."""
    start = max(first, int(path.read_text().strip() or first)) if path.exists() else first
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{start + JOB_ID_BLOCK}\n")
    return start


def wait_for_interrupt(every_second: Callable[[], object] = lambda: None) -> None:
    """Until Ctrl-C or SIGTERM (handled explicitly: a shell's background job ignores SIGINT), doing
    `every_second` meanwhile."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        every_second()
    every_second()


if __name__ == "__main__":
    main()
