"""`make bench`: an honest benchmark of the transfer, against the pipeline it replaces and the limits.

    .venv/bin/python -m tests.bench [--quick] [--sizes 100,500,2048] [--members 1,200] [--rounds 3]
        [--profiles loopback,wan40,wan5] [--wan40-sizes 100,500] [--wan5-sizes 100,500]
        [--budget-seconds 3] [--budget-sizes 500] [--skip-anysize]
        [--fanout 4] [--fanout-sizes 500] [--skip-fanout] [--skip-poll] [--skip-coldstart]
    make bench BENCH_ARGS="--quick"

What runs (figures in .local/bench.json, the issue's cells in .local/bench.md, a chart in .local/bench.png,
a table on stdout):
- transfer: for each network profile, archive (MiB of uncompressed data x members) and round, every
  pipeline once, in an order rotated by the round. Ours runs as the chain would (tests.bench.product.drive:
  the file message, its continuations, a message per unit, at most four invocations at once), each
  invocation in a function instance (tests.bench.instances: fdk and the transfer's func.py):
  `ours_cold`, a new instance per invocation (interpreter start-up and imports paid each time, on the
  chain's clock), and `ours_warm`, instances started and primed before the clock starts (reused ones).
  The blog's pipeline (download to /tmp, zipfile extractall, put_object per file) runs in a process of
  its own, seen twice: `blog_cold`, the whole process, and `blog_warm`, its work alone. And the limits
  alone: `download`, `inflate_archive`, `inflate_zipfile`, `upload`. Medians over the rounds, ratios
  ours/blog cold and warm, and the issue's targets marked met or missed (by how much).
  Profiles: loopback; wan40 = 40 MB/s per connection + 20 ms round trip; wan5 = 5 MB/s + 20 ms (a proxy
  in front of Fusion). Throttled profiles run ours, blog and download only (the rest does not touch the
  link). The OCI emulator commits a multipart upload without copying it, as Object Storage does; its
  commit time is reported all the same (`emu commit s`).
- any size (tests.bench.pieces): each shape at the loopback size nearest 500 MiB with
  TRANSFER_BUDGET_SECONDS=3, its invocations in turn in one warm instance of their own: invocations, the
  longest one, wall, CPU, the instance's peak RSS and bytes to disk, landed complete, Fusion served the
  archive once.
- fan-out (tests.bench.pieces): the many-member archive with TRANSFER_FANOUT=4 against 1, cold.
- poll: status calls and poll invocations to follow jobs of 5 min, 1 h and 10 h on a simulated clock.
- coldstart: func.py import and the first call's imports, in fresh interpreters.

Archives are generated once and cached in .local/bench-data/ (2 GiB about a minute per shape). The
whole default run takes about 16 minutes on a quiet 2-core machine once they are built; `--quick` (16 MiB,
1 and 20 members, every profile, one round) a minute or two.
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

from tests.bench import pieces, report
from tests.bench.compare import ALL_PIPELINES, NETWORK_PIPELINES, Case, Oci, run_profile
from tests.bench.datagen import Built, Spec, build
from tests.bench.instances import compile_sources, import_roots, settle_access_times
from tests.bench.proxy import Profile
from tests.bench.servers import REPO, Child

OUTPUT = REPO / ".local" / "bench.json"
PLOTTER = REPO / ".local" / "bench-venv" / "bin" / "python"
PROFILES = {
    "loopback": Profile("loopback", None, 0.0),
    "wan40": Profile("wan40", 40.0, 20.0),
    "wan5": Profile("wan5", 5.0, 20.0),
}


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
        "--sizes", type=_sizes, default=[100, 500, 2048], help="MiB of data, loopback (default 100,500,2048)"
    )
    parser.add_argument("--members", type=_sizes, default=[1, 200], help="archive shapes (default 1,200)")
    parser.add_argument(
        "--rounds", type=int, help="rounds per archive and profile (default 3; 1 with --quick)"
    )
    parser.add_argument("--profiles", default="loopback,wan40,wan5", help="subset of loopback,wan40,wan5")
    parser.add_argument(
        "--wan40-sizes", type=_sizes, default=[100, 500], help="MiB on 40 MB/s (default 100,500)"
    )
    parser.add_argument(
        "--wan5-sizes", type=_sizes, default=[100, 500], help="MiB on 5 MB/s (default 100,500)"
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        help="any size: TRANSFER_BUDGET_SECONDS of its runs (default 3; 0 with --quick)",
    )
    parser.add_argument(
        "--budget-sizes", type=_sizes, help="any size: MiB of its archives (default the largest of --sizes)"
    )
    parser.add_argument("--skip-anysize", action="store_true", help="leave out the any-size part")
    parser.add_argument(
        "--fanout", type=int, default=4, help="fan-out: TRANSFER_FANOUT compared with 1 (default 4)"
    )
    parser.add_argument(
        "--fanout-sizes", type=_sizes, help="fan-out: MiB of its archive (default the largest of --sizes)"
    )
    parser.add_argument("--skip-fanout", action="store_true", help="leave out the fan-out part")
    parser.add_argument("--skip-poll", action="store_true")
    parser.add_argument("--skip-coldstart", action="store_true")
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help="the JSON; the chart goes beside it (.png)"
    )
    options = parser.parse_args()
    if options.quick:
        options.sizes = options.wan40_sizes = options.wan5_sizes = [16]
        options.members = [1, 20]
    options.rounds = options.rounds or (1 if options.quick else 3)
    options.profiles = [PROFILES[name] for name in options.profiles.split(",") if name]
    if options.budget_seconds is None:
        options.budget_seconds = 0.0 if options.quick else 3.0
    nearest_500 = min(options.sizes, key=lambda size: abs(size - 500))
    options.budget_sizes = options.budget_sizes or [nearest_500]
    options.fanout_sizes = options.fanout_sizes or [nearest_500]
    return options


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


_built: dict[Spec, Built] = {}


def _archive(spec: Spec) -> Built:
    """The cached archive (built on first use, the time it took logged)."""
    if spec not in _built:
        started = time.perf_counter()
        _built[spec] = build(spec)
        took = time.perf_counter() - started
        _log(f"archive {spec.key}: {json.dumps(_built[spec].summary())} ({took:.0f} s)")
    return _built[spec]


def _cases(options: argparse.Namespace) -> list[Case]:
    sizes = {"loopback": options.sizes, "wan40": options.wan40_sizes, "wan5": options.wan5_sizes}
    cases = []
    for profile in options.profiles:
        pipelines = ALL_PIPELINES if profile.rate_mb_s is None else NETWORK_PIPELINES
        for megabytes in sizes[profile.name]:
            for members in options.members:
                cases.append(Case(profile, _archive(Spec(megabytes, members)), pipelines))
    return cases


def _transfer(
    options: argparse.Namespace, cases: list[Case], document: dict[str, Any]
) -> list[dict[str, Any]]:
    """The comparison, profile by profile, then the any-size and fan-out parts; every pipeline record."""
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
        if not options.skip_anysize:
            specs = [Spec(size, members) for size in options.budget_sizes for members in options.members]
            _log(f"any size: {len(specs)} archives, TRANSFER_BUDGET_SECONDS={options.budget_seconds:g}")
            archives = [_archive(spec) for spec in specs]
            document["anysize"] = pieces.any_size(archives, options.budget_seconds, oci, _log)
        if not options.skip_fanout:
            archives = [_archive(Spec(size, max(options.members))) for size in options.fanout_sizes]
            _log(f"fan-out: TRANSFER_FANOUT={options.fanout} against 1, {options.rounds} rounds")
            document["fanout"] = pieces.fan_out(archives, options.fanout, options.rounds, oci, _log)
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
    compile_sources()
    settled = settle_access_times(import_roots())  # no instance reads a file first (its inode written)
    _log(f"{settled} files an instance may read were read once beforehand")
    records = _transfer(options, cases, document)
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
    cells = output.with_suffix(".md")
    cells.write_text(report.cells(document) + "\n")
    print(f"figures in {output}, the issue's cells in {cells}")
    _chart(output, output.with_suffix(".png"))
    failed = [record for record in records if not record.get("ok")]
    failed += [record for record in document.get("anysize", []) if not record["landed_complete"]]
    failed += [summary for summary in document.get("fanout", []) if not summary["ok"]]
    if failed:
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
