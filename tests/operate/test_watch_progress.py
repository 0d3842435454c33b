"""`watch` and `show` on a long transfer: progress as it happens, and the state changes at their times.

The transfer is slowed without any sleep: each invocation does one part or one member of work (a zero
budget), and every message handing the work on to the next invocation is held until the test lets it go.
While it is held the ledger stands still, so what `watch` must have shown by then is known exactly.
"""

from __future__ import annotations

import json
import queue
import random
import re
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest

from fusion_extract.cli.ops import Ops
from fusion_extract.cli.progress import RunProgress
from fusion_extract.cli.target import from_endpoints
from tests.emulators.chain import LocalChain
from tests.emulators.fusion import ExtractScenario
from tests.emulators.oci.http import Request, Response

MEMBERS = 5
MEMBER_BYTES = 700 * 1024  # stored: the archive is about 3.4 MiB, four parts of 1 MiB
FAST = ("--interval", "0.05", "--timeout", "300")
WAIT = 60.0  # the longest any one step may take before the test fails (never waited out when all is well)


class Hold:
    """Holds each message handing the archive's work on until released: one invocation's work at a time,
    and the ledger still while one is held. The manifest's message is held until `manifest` is set, so
    that nothing lands before the archive (the poll publishes it after the archive's)."""

    def __init__(self) -> None:
        self.held: queue.Queue[None] = queue.Queue()
        self.tickets = threading.Semaphore(0)
        self.manifest = threading.Event()

    def __call__(self, request: Request, serve: Callable[[Request], Response]) -> Response:
        if b".mf" in request.body:
            if not self.manifest.wait(timeout=WAIT):
                raise AssertionError("the manifest's message was held and never released")
            return serve(request)
        self.held.put(None)
        if not self.tickets.acquire(timeout=WAIT):
            raise AssertionError("a transfer message was held and never released")
        return serve(request)

    def release(self) -> None:
        self.tickets.release()


def big_archive(path: Path) -> int:
    """A ZIP of MEMBERS CSV members, stored uncompressed so that its size is known; their bytes."""
    rows = random.Random(17)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for number in range(1, MEMBERS + 1):
            lines, size = ["id,name"], 8
            while size < MEMBER_BYTES:
                line = f"{len(lines)},{rows.getrandbits(256):064x}"
                lines.append(line)
                size += len(line) + 1
            archive.writestr(f"big_{number}.csv", "\n".join(lines) + "\n")
    return sum(info.file_size for info in zipfile.ZipFile(path).infolist())


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slow]:
    workdir = tmp_path_factory.mktemp("slow")
    config = {"TRANSFER_BUDGET_SECONDS": "0", "UPLOAD_PART_MB": "1", "RUN_MAX_ATTEMPTS": "1"}
    catalog = {"Big": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=5;BYMINUTE=0"}}
    hold = Hold()
    with LocalChain(workdir, config=config, catalog=catalog) as chain:
        unpacked = big_archive(workdir / "big.zip")
        scenario = ExtractScenario(
            prebuilt_zip=str(workdir / "big.zip"), seconds_enqueued=0.1, seconds_running=0.2
        )
        chain.fusion.define_extract("Big", scenario)
        chain.schedule_catalog()
        chain.oci.intercept("POST", ".*" + re.escape(f"/topics/{chain.topics['transfer']}/messages"), hold)
        endpoints = workdir / "endpoints.json"
        chain.write_endpoints(endpoints)
        try:
            yield Slow(chain, hold, Ops(from_endpoints(endpoints)), endpoints, unpacked)
        finally:
            hold.manifest.set()
            for _ in range(1000):  # nothing left held, whatever happened
                hold.release()


@dataclass(frozen=True)
class Slow:
    chain: LocalChain
    hold: Hold
    ops: Ops  # reads the ledger as the CLI does
    endpoints: Path
    unpacked: int  # the archive's members' bytes

    def next_step(self, run_id: str) -> bool:
        """Wait until the next message is held (True), or a file landed with nothing held (False)."""
        while True:
            try:
                self.hold.held.get(timeout=0.1)
                return True
            except queue.Empty:
                if self.ops.load(run_id).landed_files:
                    return False


class Watching:
    """`fusion-extract watch --json` in a process of its own, piped: its documents as they come."""

    def __init__(self, endpoints: Path, run_id: str) -> None:
        command = "from fusion_extract.cli.main import main; main()"
        self.process = subprocess.Popen(
            [sys.executable, "-c", command, "--endpoints", str(endpoints), "watch", run_id, "--json", *FAST],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.docs: list[dict[str, Any]] = []
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, fetched: int, unpacked: int) -> dict[str, Any]:
        """The first document that reports these bytes (AssertionError if watch ends or falls silent)."""
        while True:
            line = self.lines.get(timeout=WAIT)
            assert line is not None, f"watch ended before reporting {fetched} B fetched, {unpacked} unpacked"
            doc: dict[str, Any] = json.loads(line)
            self.docs.append(doc)
            if (doc["fetched"], doc["unpacked"]) == (fetched, unpacked):
                return doc

    def rest(self) -> int:
        """Every document left, once watch has ended; its exit code."""
        while (line := self.lines.get(timeout=WAIT)) is not None:
            self.docs.append(json.loads(line))
        return self.process.wait(timeout=WAIT)


def test_watch_json_reports_growing_fetched_and_unpacked_bytes_before_the_file_lands(slow: Slow) -> None:
    # Given a run of an extract whose one archive takes several invocations to fetch and to unpack
    slow.chain.fire("Big")
    slow.hold.held.get(timeout=WAIT)  # the job succeeded: the first transfer message waits
    (run,) = slow.chain.runs("Big")

    # When it is watched with --json while each invocation's work is let through one at a time
    watching = Watching(slow.endpoints, run.run_id)
    seen = []
    try:
        while True:
            summary = slow.ops.load(run.run_id)
            progress = RunProgress.of(summary.run, summary.plan, summary.files, datetime.now(UTC))
            if progress.landed:
                break
            # Then watch has reported what the ledger holds now, before the work goes on
            seen.append(watching.until(progress.fetched, progress.unpacked))
            slow.hold.release()
            if not slow.next_step(run.run_id):
                break
        slow.hold.manifest.set()
        for _ in range(10):
            slow.hold.release()  # the rest goes on unheld
        code = watching.rest()
    finally:
        watching.process.kill()

    # Then before any file landed, watch reported the archive's fetched bytes growing part by part to the
    # whole archive, then its unpacked bytes growing member by member, in documents of their own
    archives = [next(f for f in doc["files"] if f["name"].endswith(".zip")) for doc in seen]
    fetched = [f["fetched"] for f in archives]
    unpacked = [f["unpacked"] for f in archives]
    size = archives[0]["size"]
    assert len(set(fetched)) >= 4 and fetched == sorted(fetched), fetched
    assert fetched[0] == 0 and fetched[-1] == size > 3 * 2**20
    assert len(set(unpacked)) >= 3 and unpacked == sorted(unpacked), unpacked
    assert unpacked[0] == 0 and 0 < unpacked[-1] <= slow.unpacked
    assert [doc["fetched"] for doc in seen] == fetched and [doc["unpacked"] for doc in seen] == unpacked
    assert all(doc["files_landed"] == 0 and doc["state"] == "TRANSFERRING" for doc in seen)
    assert all(doc["rate_bytes_per_second"] is not None for doc in seen if doc["fetched"])
    # And it went on to the end: LANDED, every byte fetched and unpacked, exit 0
    last = watching.docs[-1]
    assert code == 0 and last["state"] == "LANDED" and last["files_landed"] == 2
    assert (last["fetched"], last["eta_seconds"]) == (last["size"], 0.0)
    assert last["unpacked"] == slow.unpacked  # the manifest is landed as it is, not unpacked
    assert [(c["from"], c["to"]) for c in last["changes"]][-2:] == [
        ("TRANSFERRING", "FINISHING"),
        ("FINISHING", "LANDED"),
    ]
