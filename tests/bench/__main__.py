"""`make bench`: an honest benchmark of the transfer, against the pipeline it replaces and the limits.

    .venv/bin/python -m tests.bench [--quick] [--sizes 100,500] [--members 1,200] [--rounds 3]
        [--profiles loopback,wan40,wan5] [--wan40-sizes 100,500] [--wan5-sizes 100]
        [--skip-poll] [--skip-coldstart]
    make bench BENCH_ARGS="--quick"

What runs (figures in .local/bench.json, a chart in .local/bench.png, a table on stdout):
- transfer: for each network profile, archive (MiB of uncompressed data x members) and round, every
  pipeline in its own process, in an order rotated by the round: `ours` (the product's transfer step),
  `blog` (download to /tmp, zipfile extractall, put_object per file), and the limits alone: `download`,
  `inflate_archive`, `inflate_zipfile`, `upload`. Medians over the rounds, ratios ours/blog.
  Profiles: loopback; wan40 = 40 MB/s per connection + 20 ms round trip; wan5 = 5 MB/s + 20 ms (a proxy
  in front of Fusion). Throttled profiles run ours, blog and download only (the rest does not touch the link).
- poll: status calls and poll invocations to follow jobs of 5 min, 1 h and 10 h on a simulated clock.
- coldstart: func.py import and the first call's imports, in fresh interpreters.

Archives are generated once and cached in .local/bench-data/ (2 GiB takes about a minute per shape).
Default: about 10-12 minutes on 2 cores; add 2048 to --sizes for the 2 GiB archives (about 15 more).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench import report
from tests.bench.compare import LIMITS_ALONE, NETWORK_PIPELINES, Case, Oci, run_profile
from tests.bench.datagen import Built, Spec, build
from tests.bench.proxy import Profile
from tests.bench.servers import REPO, Child

OUTPUT = REPO / ".local" / "bench.json"
PLOTTER = REPO / ".local" / "bench-venv" / "bin" / "python"
PROFILES = {
    "loopback": Profile("loopback", None, 0.0),
    "wan40": Profile("wan40", 40.0, 20.0),
    "wan5": Profile("wan5", 5.0, 20.0),
}
ALL_PIPELINES = ("ours", "blog", *LIMITS_ALONE)


def _sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive whole numbers, comma-separated")
    return sizes


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 16 MiB, 1 and 20 members, all profiles"
    )
    parser.add_argument(
        "--sizes", type=_sizes, default=[100, 500], help="MiB of data, loopback (default 100,500)"
    )
    parser.add_argument("--members", type=_sizes, default=[1, 200], help="archive shapes (default 1,200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per archive and profile (default 3)")
    parser.add_argument("--profiles", default="loopback,wan40,wan5", help="subset of loopback,wan40,wan5")
    parser.add_argument(
        "--wan40-sizes", type=_sizes, default=[100, 500], help="MiB on 40 MB/s (default 100,500)"
    )
    parser.add_argument("--wan5-sizes", type=_sizes, default=[100], help="MiB on 5 MB/s (default 100)")
    parser.add_argument("--skip-poll", action="store_true")
    parser.add_argument("--skip-coldstart", action="store_true")
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help="the JSON; the chart goes beside it (.png)"
    )
    options = parser.parse_args()
    if options.quick:
        options.sizes = options.wan40_sizes = options.wan5_sizes = [16]
        options.members = [1, 20]
    options.profiles = [PROFILES[name] for name in options.profiles.split(",") if name]
    return options


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _cases(options: argparse.Namespace) -> list[Case]:
    sizes = {"loopback": options.sizes, "wan40": options.wan40_sizes, "wan5": options.wan5_sizes}
    archives: dict[Spec, Built] = {}
    cases = []
    for profile in options.profiles:
        pipelines = ALL_PIPELINES if profile.rate_mb_s is None else NETWORK_PIPELINES
        for megabytes in sizes[profile.name]:
            for members in options.members:
                spec = Spec(megabytes, members)
                if spec not in archives:
                    started = time.perf_counter()
                    archives[spec] = build(spec)
                    took = time.perf_counter() - started
                    _log(f"archive {spec.key}: {json.dumps(archives[spec].summary())} ({took:.0f} s)")
                cases.append(Case(profile, archives[spec], pipelines))
    return cases


def _transfer(options: argparse.Namespace, cases: list[Case]) -> list[dict[str, Any]]:
    scratch = REPO / ".local" / "bench-work"
    scratch.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=scratch))
    oci = Oci(Child("tests.bench.servers", "oci", str(workdir)), workdir)
    records: list[dict[str, Any]] = []
    try:
        for profile in options.profiles:
            chosen = [case for case in cases if case.profile == profile]
            _log(f"profile {profile.name}: {len(chosen)} archives x {options.rounds} rounds")
            records += run_profile(profile, chosen, options.rounds, oci, _log)
    finally:
        oci.child.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return records


def _module(module: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, stdout=subprocess.PIPE, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"{module} exited with status {done.returncode}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _machine() -> dict[str, Any]:
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
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
        "commit": commit.stdout.strip() or None,
    }


def main() -> None:
    options = _arguments()
    started = time.perf_counter()
    document: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "options": {
            "quick": options.quick,
            "rounds": options.rounds,
            "profiles": {p.name: {"rate_mb_s": p.rate_mb_s, "rtt_ms": p.rtt_ms} for p in options.profiles},
        },
    }
    cases = _cases(options)
    records = _transfer(options, cases)
    document["runs"] = records
    document["transfer"] = report.summarise(records, {case.archive.spec.key: case.archive for case in cases})
    if not options.skip_poll:
        _log("poll cost on a simulated clock ...")
        document["poll"] = _module("tests.bench.pollcost", "--minutes", "5", "60", "600")
    if not options.skip_coldstart:
        _log("cold start ...")
        document["coldstart"] = _module("tests.bench.coldstart", "--repeats", "2" if options.quick else "5")
    document["targets"] = report.targets(document)
    document["took_seconds"] = round(time.perf_counter() - started)
    output = options.output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".json.partial")
    partial.write_text(json.dumps(document, indent=1) + "\n")
    partial.replace(output)  # never a half-written report
    print(report.table(document))
    print(f"figures in {output}")
    _chart(output, output.with_suffix(".png"))
    if any(not record.get("ok") for record in records):
        sys.exit(1)


def _chart(source: Path, chart: Path) -> None:
    if not PLOTTER.exists():
        print("no chart: the plotting venv is missing (make bench builds it)")
        return
    done = subprocess.run([str(PLOTTER), "-m", "tests.bench.plot", str(source), str(chart)], cwd=REPO)
    if done.returncode == 0:
        print(f"chart in {chart}")


if __name__ == "__main__":
    main()
