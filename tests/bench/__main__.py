"""`make bench`: every benchmark, each in a fresh interpreter so that peak-memory figures never mix.
Figures go to .local/bench.json ({"when", "machine", "results": {name: {...}}}); a short table to stdout.

    .venv/bin/python -m tests.bench [--quick] [--megabytes N] [--only NAME ...]

The default sizes take about 3 minutes on 2 cores; --quick runs everything small, in well under one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.support import REPO

OUTPUT = REPO / ".local" / "bench.json"


@dataclass(frozen=True)
class Bench:
    module: str
    shown: tuple[str, ...]  # the figures the table prints
    megabytes: int | None = None  # default --megabytes; None: the benchmark takes no size
    quick_megabytes: int | None = None
    options: tuple[str, ...] = ()

    def command(self, quick: bool, megabytes: int | None) -> list[str]:
        size = megabytes or (self.quick_megabytes if quick else self.megabytes)
        sized = ["--megabytes", str(size)] if self.megabytes else []
        return [sys.executable, "-m", self.module, *sized, *self.options]


BENCHES = {
    "imports": Bench(
        "tests.bench.imports", ("interpreter_ms", "submit", "poll", "transfer"), options=("--repeats", "5")
    ),
    "unzip": Bench(
        "tests.bench.unzip_memory", ("uncompressed_mb", "throughput_mb_s", "peak_rss_mb"), 1024, 32
    ),
    "upload": Bench(
        "tests.bench.upload_memory", ("megabytes", "throughput_mb_s", "client_peak_growth_mb"), 1024, 32
    ),
    "upload_sdk_manager": Bench(
        "tests.bench.upload_memory",
        ("megabytes", "throughput_mb_s", "client_peak_growth_mb"),
        1024,
        32,
        ("--manager",),
    ),
    "oci_emulator_multipart": Bench(
        "tests.bench.oci_multipart_memory", ("uploaded_mb", "seconds", "emulator_peak_rss_mb"), 1024, 64
    ),
    "fusion_emulator": Bench(
        "tests.bench.fusion_memory", ("zip_mb", "download_mb_s", "server_peak_rss_mb"), 512, 16
    ),
    "transfer": Bench(
        "tests.bench.transfer",
        (
            "uncompressed_mb",
            "uncompressed_mb_s",
            "raw_uncompressed_mb_s",
            "uncompressed_mb_per_cpu_s",
            "client_peak_rss_mb",
            "client_disk_written_mb",
        ),
        512,
        32,
    ),
}


def run(bench: Bench, quick: bool, megabytes: int | None) -> dict[str, Any]:
    """The benchmark's JSON (the last line it prints), with how long it took; or what went wrong."""
    started = time.perf_counter()
    done = subprocess.run(bench.command(quick, megabytes), cwd=REPO, stdout=subprocess.PIPE, text=True)
    took = {"took_seconds": round(time.perf_counter() - started, 1)}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"{bench.module} exited with status {done.returncode}", **took}
    figures: dict[str, Any] = json.loads(lines[-1])
    return {**figures, **took}


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True
    )
    return {
        "nproc": os.cpu_count(),
        "memory_mb": total_kb // 1024,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "commit": commit.stdout.strip() or None,
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [f"{'benchmark':<24}{'took s':>8}  figures"]
    for name, figures in results.items():
        shown = ["error"] if "error" in figures else BENCHES[name].shown
        text = "  ".join(f"{key}={_compact(figures.get(key))}" for key in shown)
        rows.append(f"{name:<24}{figures['took_seconds']:>8}  {text}")
    return "\n".join(rows)


def _compact(value: Any) -> str:
    if isinstance(value, dict):  # the imports figures: only the total of each function
        return str(value.get("import_ms"))
    return str(value)


def _positive(text: str) -> int:
    number = int(text)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of megabytes")
    return number


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that every benchmark runs")
    parser.add_argument("--megabytes", type=_positive, help="one size for every sized benchmark")
    parser.add_argument("--only", action="append", choices=sorted(BENCHES), help="run this one (repeatable)")
    options = parser.parse_args()
    report: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine()}
    results: dict[str, dict[str, Any]] = {}
    for name in options.only or BENCHES:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = run(BENCHES[name], options.quick, options.megabytes)
    report["results"] = results
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    partial = OUTPUT.with_suffix(".json.partial")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(OUTPUT)  # never a half-written report
    print(table(results))
    print(f"figures in {OUTPUT.relative_to(REPO)}")
    if any("error" in figures for figures in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
