"""`make demo`: the whole chain on this machine, end to end, with a readable timeline.

Three scheduled extracts run through the real functions (fdk runtime, unix sockets), Notifications and
Resource Scheduler emulated, Fusion emulated: a Full extract of several chunks, an Incremental one in
JSON, and one whose first job fails and is rerun by itself. The timeline is read from the functions'
own JSON logs. The bucket stays in .local/bucket/ for a person to open, and each extract's `history --plot`
chart in .local/demo/history-<extract>.png. Exit status 0 only when every
run landed and every landed file verifies against its run's _manifest.json.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from fusion_extract.cli.main import cli
from tests.emulators.chain import BUCKET, REPO, LocalChain
from tests.emulators.fusion import ExtractScenario

LOCAL = REPO / ".local" / "demo"  # apart from `make emulator`'s .local/emulator: one never wipes the other

EXTRACTS = {
    "Sales": ("full", ExtractScenario(chunks=4, rows_per_chunk=60_000, seconds_running=3)),
    "Orders": ("incremental", ExtractScenario(chunks=2, rows_per_chunk=5_000, format="json", view="orders")),
    "Invoices": (
        "full",
        ExtractScenario(chunks=2, rows_per_chunk=20_000, fail_first_jobs=1, view="invoices"),
    ),
}
CATALOG = {name: {"mode": mode} for name, (mode, _) in EXTRACTS.items()}
SHOWN = {
    "run started": "run started ({mode})",
    "job submitted": "job {job_id} submitted (attempt {attempt})",
    "job still running": "job {job_id} {status} ... polling",
    "job succeeded": "job {job_id} {status}: {files} file(s) to land",
    "job failed; rerun scheduled": "job {job_id} failed ({reason}); rerun requested",
    "file landed": "landed {file}: {members} member(s), {bytes:,} bytes at {mb_per_s} MB/s",
    "run landed": "RUN LANDED: {files} files, {members} members, {rows:,} rows, {bytes:,} bytes",
    "run ended": "RUN {state}: {reason}",
}


class Timeline:
    """Prints the interesting lines of the functions' logs as they appear."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.offsets: dict[Path, int] = {}
        self.started = time.monotonic()

    def follow(self) -> None:
        for log in sorted(self.logs.glob("*.log")):
            with log.open("rb") as handle:
                handle.seek(self.offsets.get(log, 0))
                lines = handle.readlines()
                self.offsets[log] = handle.tell()
            for line in lines:
                self._show(line)

    def _show(self, line: bytes) -> None:
        try:
            entry = json.loads(line)
        except ValueError:
            return
        template = SHOWN.get(entry.get("message"))
        if template is None or not isinstance(entry, dict):
            return
        fields = {"job_id": "?", "attempt": "?", "status": "", **entry}
        try:
            text = template.format(**fields)
        except (KeyError, ValueError):
            text = entry["message"]
        elapsed = time.monotonic() - self.started
        print(
            f"{elapsed:6.1f}s  {entry.get('extract', '-'):<9} {entry.get('function', ''):<8} {text}",
            flush=True,
        )


def main() -> int:
    shutil.rmtree(LOCAL / "bucket", ignore_errors=True)
    shutil.rmtree(LOCAL / "logs", ignore_errors=True)
    config = {
        "POLL_BUDGET_SECONDS": "2",
        "POLL_MIN_INTERVAL": "0.5",
        "POLL_MAX_INTERVAL": "1",
        "UPLOAD_PART_MB": "8",
    }
    with LocalChain(LOCAL, bucket_root=LOCAL / "bucket", config=config, catalog=CATALOG) as chain:
        chain.write_endpoints(LOCAL / "endpoints.json")
        for extract, (mode, scenario) in EXTRACTS.items():
            chain.fusion.define_extract(extract, scenario)
            chain.schedule(extract, mode)
        print(f"Emulators up; bucket folder {LOCAL / 'bucket' / BUCKET}; logs in {LOCAL / 'logs'}\n")
        timeline = Timeline(LOCAL / "logs")
        for extract in EXTRACTS:
            chain.fire(extract)  # what Resource Scheduler does when each schedule comes due
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not all(_final(chain, e) for e in EXTRACTS):
            timeline.follow()
            time.sleep(0.3)
        chain.settle()
        timeline.follow()
        outcome = report(chain)
        charts(LOCAL / "endpoints.json")
        return outcome


def _final(chain: LocalChain, extract: str) -> bool:
    return any(run.state.final for run in chain.runs(extract))


def report(chain: LocalChain) -> int:
    failures = []
    print()
    for extract in EXTRACTS:
        runs = chain.runs(extract)
        if not runs or runs[-1].state.value != "LANDED":
            failures.append(f"{extract}: {[r.state.value for r in runs]}")
            continue
        run = runs[-1]
        folder = f"landing/{extract}/dt={run.created_at:%Y-%m-%d}/run={run.job_id}"
        manifest = json.loads(chain.landed_path(f"{folder}/_manifest.json").read_text())
        print(f"{folder}/  ({run.mode}, {len(run.job_ids)} job(s), {manifest['totals']['rows']:,} rows)")
        for path in sorted(chain.landed_path(folder).rglob("*")):
            if path.is_file():
                print(f"    {path.relative_to(chain.landed_path(folder))!s:<78} {path.stat().st_size:>12,}")
        failures.extend(verify(chain, manifest))
    print(f"\nAlerts sent: {[a['event'] + ':' + a['extract'] for a in chain.alerts]}")
    posted = sorted({m["name"] for m in chain.oci.metrics})
    print(
        f"Metrics posted to Monitoring: {len(chain.oci.metrics)} datapoints of {', '.join(posted) or 'none'}"
    )
    if "RunsLanded" not in posted:
        failures.append("no RunsLanded metric reached Monitoring")
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"\nEvery landed file verifies against its manifest. Open {LOCAL / 'bucket' / BUCKET}")
    return 0


def charts(endpoints: Path) -> None:
    """`fusion-extract history EXTRACT --plot`, while the emulators still run: each extract's runs."""
    for extract in EXTRACTS:
        png = LOCAL / f"history-{extract}.png"
        args = ["--endpoints", str(endpoints), "history", extract, "--plot", str(png)]
        print(f"\n$ fusion-extract {' '.join(args)}")
        print(CliRunner().invoke(cli, args).output.rstrip())


def verify(chain: LocalChain, manifest: dict[str, Any]) -> list[str]:
    problems = []
    for file in manifest["files"]:
        for member in file["members"]:
            path = chain.landed_path(member["object"])
            if not path.is_file():
                problems.append(f"missing {member['object']}")
            elif hashlib.sha256(path.read_bytes()).hexdigest() != member["sha256"]:
                problems.append(f"SHA-256 mismatch {member['object']}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
