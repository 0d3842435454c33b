"""The transfer path end to end, client side: one ZIP from the Fusion emulator, landed in the bucket.

Both emulators run as child processes, so this process's peak RSS is the product's alone. The product's
Runtime (Settings pointed at the emulators, API-key auth from a config file) runs the real steps
in-process: submit, poll until the job succeeded (the listing hashes the archive: one generation pass on
the server), then one transfer per listed file, the ZIP first (download, SHA-256, unpack, stage, promote),
then the .mf, which finishes the run (_manifest.json, _SUCCESS). Then the "raw limit": the same archive
downloaded with plain requests and inflated with stream-unzip, nothing hashed or uploaded.

The emulator deflates the archive while it serves it (one Python thread), and on 2 cores three processes
share the CPU: wall-clock rates are a floor. `client_cpu_seconds` (user + system of this process) is the
product's own cost. `client_disk_written_mb` (/proc/self/io) counts every byte this process wrote to
storage during the transfer, /tmp included: it stays ~0 because the path streams.

    .venv/bin/python -m tests.bench.transfer [--megabytes 512]   (uncompressed; try 1024-2048)
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream_unzip import stream_unzip

from fusion_extract.chain.messages import PollRequest, RunRequest, TransferRequest
from fusion_extract.chain.records import PlannedFile, Run, RunState
from fusion_extract.chain.steps.poll import poll
from fusion_extract.chain.steps.submit import submit
from fusion_extract.chain.steps.transfer import transfer
from fusion_extract.config import Settings
from fusion_extract.models import ExtractRequest, Mode
from fusion_extract.runtime import Runtime
from tests.bench.support import (
    BUCKET,
    MB,
    OciProcess,
    disk_written_bytes,
    fusion_emulator,
    fusion_session,
    memory_mb,
    oci_emulator,
)
from tests.emulators.fusion.data import data_blocks

LEVEL = 1  # the emulator's deflate level: its generation speed caps the wall-clock rates
MAX_POLLS = 100


@dataclass
class _Window:
    """Wall time, CPU time and disk writes of this process over a stretch of work."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    disk_bytes: int = 0

    def __enter__(self) -> _Window:
        self._started = (time.perf_counter(), _cpu_seconds(), disk_written_bytes())
        return self

    def __exit__(self, *exc_info: object) -> None:
        wall, cpu, disk = self._started
        self.seconds = time.perf_counter() - wall
        self.cpu_seconds = _cpu_seconds() - cpu
        self.disk_bytes = disk_written_bytes() - disk


def measure(megabytes: int = 512) -> dict[str, Any]:
    rows = int(megabytes * MB / _csv_bytes_per_row())
    with tempfile.TemporaryDirectory() as workdir, fusion_emulator(rows, LEVEL) as (fusion, _):
        credentials = json.dumps({"client_id": fusion["client_id"], "client_secret": fusion["client_secret"]})
        with oci_emulator(Path(workdir), credentials) as oci:
            runtime = Runtime(Settings.from_mapping(_configuration(fusion, oci)))
            with _Window() as listing:
                run = _submit_and_poll(runtime)
            archive, *others = sorted(run.files, key=lambda f: not f.name.endswith(".zip"))
            baseline = memory_mb()["VmRSS"]
            with _Window() as landing:
                _transfer(runtime, run, archive)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            with _Window() as finishing:
                for planned in others:  # the .mf; the last one finishes the run
                    _transfer(runtime, run, planned)
            written = listing.disk_bytes + landing.disk_bytes + finishing.disk_bytes
            uncompressed, landed_ok = _check_landed(runtime, oci, run.run_id, archive.name)
            raw = _raw_limit(fusion, archive.url)
    return {
        "rows": rows,
        "archive_mb": round(archive.size / MB, 1),
        "uncompressed_mb": round(uncompressed / MB, 1),
        "landed_ok": landed_ok,
        "submit_poll_seconds": round(listing.seconds, 2),
        "transfer_seconds": round(landing.seconds, 2),
        "archive_mb_s": round(archive.size / MB / landing.seconds, 1),
        "uncompressed_mb_s": round(uncompressed / MB / landing.seconds, 1),
        "client_cpu_seconds": round(landing.cpu_seconds, 2),
        "uncompressed_mb_per_cpu_s": round(uncompressed / MB / landing.cpu_seconds, 1),
        "finish_seconds": round(finishing.seconds, 2),
        "client_rss_before_mb": baseline,
        "client_peak_rss_mb": round(peak, 1),
        "client_disk_written_mb": round(written / MB, 2),
        **raw,
    }


def _configuration(fusion: dict[str, Any], oci: OciProcess) -> dict[str, str]:
    """Like LocalChain.config, with API-key auth and the product's default part size and parallelism."""
    services = ("OBJECTSTORAGE", "SECRETS", "NOTIFICATIONS", "FUNCTIONS", "MONITORING")
    return {
        "FUSION_BASE_URL": fusion["base_url"],
        "IDCS_URL": fusion["idcs_url"],
        "FUSION_SCOPE": fusion["scope"],
        "CA_BUNDLE": fusion["ca_path"],
        "CREDENTIALS_SECRET_ID": oci.secret_id,
        "OCI_AUTH": "config_file",
        "OCI_CONFIG_FILE": oci.config_file,
        **{f"OCI_{service}_ENDPOINT": oci.endpoint for service in services},
        "BUCKET_NAME": BUCKET,
        "BUCKET_NAMESPACE": oci.namespace,
        **{f"{name.upper()}_TOPIC_ID": topic for name, topic in oci.topics.items()},
        "POLL_BUDGET_SECONDS": "1",
        "POLL_MIN_INTERVAL": "0.2",
        "POLL_MAX_INTERVAL": "0.5",
        "HTTP_READ_TIMEOUT": "600",  # the listing answers only once the whole archive is hashed
        "LOG_LEVEL": "WARNING",
    }


def _submit_and_poll(runtime: Runtime) -> Run:
    """submit, then poll steps until the run holds its file plan; the run, TRANSFERRING."""
    run_id = submit(RunRequest(ExtractRequest("Bench", Mode.FULL)), runtime).run_id
    assert run_id is not None
    for _ in range(MAX_POLLS):
        run = runtime.ledger.load_run(run_id).value
        if run.state is RunState.TRANSFERRING:
            return run
        if run.state is not RunState.RUNNING:
            raise RuntimeError(f"run {run_id} ended {run.state.value}: {run.reason}")
        poll(PollRequest(run_id, run.poll_seq), runtime)
    raise RuntimeError(f"run {run_id} did not reach TRANSFERRING in {MAX_POLLS} poll steps")


def _transfer(runtime: Runtime, run: Run, planned: PlannedFile) -> None:
    outcome = transfer(TransferRequest(run.run_id, (planned.name,)), runtime).to_json()
    if outcome.get("outcome") != "landed":
        raise RuntimeError(f"transfer of {planned.name}: {outcome}")


def _check_landed(runtime: Runtime, oci: OciProcess, run_id: str, archive: str) -> tuple[int, bool]:
    """Uncompressed bytes of the archive, and whether the run LANDED with every member's bytes in place."""
    run = runtime.ledger.load_run(run_id).value
    members = runtime.ledger.load_file(run_id, archive).value.members
    layout = runtime.layout
    in_place = all(oci.object_path(layout.member(run, m.path)).stat().st_size == m.size for m in members)
    finished = run.state is RunState.LANDED and oci.object_path(layout.success(run)).exists()
    return sum(m.size for m in members), in_place and finished


def _raw_limit(fusion: dict[str, Any], url: str) -> dict[str, float]:
    """The same archive, downloaded (requests iter_content) and inflated (stream-unzip), nothing else."""
    session = fusion_session(fusion)
    downloaded = inflated = 0

    def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
        nonlocal downloaded
        for chunk in chunks:
            downloaded += len(chunk)
            yield chunk

    with _Window() as window, session.get(url, stream=True) as response:
        response.raise_for_status()
        for _name, _size, member in stream_unzip(counted(response.iter_content(MB))):
            inflated += sum(len(chunk) for chunk in member)
    return {
        "raw_seconds": round(window.seconds, 2),
        "raw_archive_mb_s": round(downloaded / MB / window.seconds, 1),
        "raw_uncompressed_mb_s": round(inflated / MB / window.seconds, 1),
        "raw_cpu_seconds": round(window.cpu_seconds, 2),
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _csv_bytes_per_row(sample: int = 20_000) -> float:
    """Uncompressed CSV bytes per generated row, measured on a sample, to size the extract."""
    return sum(len(block) for block in data_blocks("sample", 1, sample, 0, "csv")) / sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=512, help="uncompressed size of the extract")
    print(json.dumps(measure(parser.parse_args().megabytes)))


if __name__ == "__main__":
    main()
