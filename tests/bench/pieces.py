"""The transfer in pieces: two parts of `make bench`, on loopback.

- any size: an archive landed with a small TRANSFER_BUDGET_SECONDS (default 3 s), so that it takes many
  invocations, one after another in one warm function instance of their own (a reused instance serving
  them in turn, as in the cloud; the driver reads the ledger from the emulator's disk, in its own
  process): how many, the longest one's wall, the total wall and CPU, the instance's peak RSS (VmHWM, and
  its ru_maxrss); that it landed complete (exactly the archive's members and sizes); and
  that Fusion served the archive's bytes once: every download (as the Fusion emulator counts them) starts
  where the previous one stopped (no restart from an earlier byte), and the bytes read to send them add
  up to the archive's size (plus what a connection cut at a budget's end had buffered).
- fan-out: the 200-member archive with TRANSFER_FANOUT=N (default 4), its unit invocations AT THE SAME
  TIME, each in a process of its own (as separate function instances would), against TRANSFER_FANOUT=1;
  walls and the speed-up, in rounds with the order rotated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.bench import stats
from tests.bench.compare import INSTANCE_LOG, Fusion, Oci, close_run, serving, warm
from tests.bench.datagen import Built
from tests.bench.product import Stuck, drive, prepare_run, transfer_file_parallel
from tests.bench.proxy import Profile
from tests.bench.servers import BUCKET
from tests.bench.stats import served_once

LOOPBACK = Profile("loopback", None, 0.0)
# What the any-size record keeps of `drive`'s report (the landed outcome's own fields left out)
DRIVEN = (
    "ok",
    "error",
    "wall_s",
    "cpu_s",
    "peak_rss_mib",
    "disk_write_bytes",
    "invocations",
    "longest_invocation_s",
    "invocation_walls_s",
    "per_invocation",
)
Log = Callable[[str], None]


def extract_name(archive: Built) -> str:
    return f"Pieces{archive.spec.megabytes}x{archive.spec.members}"


def any_size(
    archives: list[Built], budget: float, oci: Oci, log: Log, settings: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Each archive landed with TRANSFER_BUDGET_SECONDS=`budget` (and any other `settings`); one record
    each."""
    records = []
    with serving(LOOPBACK, {extract_name(archive): archive for archive in archives}, oci) as fusion:
        for archive in archives:
            warm(archive.path)
            record = _any_size_one(archive, budget, fusion, oci, settings or {})
            records.append(record)
            log(_any_size_line(record))
    return records


def _any_size_one(
    archive: Built, budget: float, fusion: Fusion, oci: Oci, settings: dict[str, str]
) -> dict[str, Any]:
    env = {**fusion.env, **settings, "TRANSFER_BUDGET_SECONDS": str(budget)}
    run_id, files = prepare_run(env, extract_name(archive))
    (zip_name, _url), others = files[0], files[1:]
    downloads_before = fusion.downloads_since(0)["count"]
    calls_before = oci.requests_since(0)["count"]
    bucket = Path(oci.served["root"]) / BUCKET
    try:
        with INSTANCE_LOG.open("a") as log:
            figures = drive(env, run_id, zip_name, bucket, warm=True, most=1, log=log, own_rusage=True)
    except Stuck as exc:
        figures = {"ok": False, "error": str(exc)}
    served = oci.requests_since(calls_before)
    downloads = [d for d in fusion.downloads_since(downloads_before)["downloads"] if d["name"] == zip_name]
    problem = close_run(env, run_id, others, archive)
    oci.purge()
    return {
        "archive": archive.spec.key,
        "megabytes": archive.spec.megabytes,
        "members": archive.spec.members,
        "zip_bytes": archive.size,
        "uncompressed_bytes": archive.uncompressed,
        "budget_s": budget,
        **{k: figures[k] for k in DRIVEN if k in figures},
        "outcome": None if figures.get("ok") else figures.get("outcome"),
        "max_rss_mib": max(
            (c["max_rss_mib"] or 0.0 for c in figures.get("per_invocation", [])), default=None
        ),
        "landed_complete": figures.get("ok", False) and problem is None,
        "landed_problem": problem,
        "oci_calls": served["kinds"],
        "oci_commit_s": served.get("commit_seconds"),
        "fusion": served_once(downloads, archive.size),
    }


def _any_size_line(record: dict[str, Any]) -> str:
    fusion = record["fusion"]
    state = "landed complete" if record["landed_complete"] else f"FAILED {record.get('error') or record}"
    return (
        f"  any size {record['megabytes']}MiB x{record['members']} budget {record['budget_s']:g}s:"
        f" {record.get('invocations')} invocations, longest {record.get('longest_invocation_s', 0):.2f}s,"
        f" wall {record.get('wall_s', 0):.2f}s cpu {record.get('cpu_s', 0):.2f}s"
        f" rss {record.get('peak_rss_mib') or 0:.0f}MiB (ru_maxrss {record.get('max_rss_mib') or 0:.0f});"
        f" Fusion: {fusion['downloads']} downloads,"
        f" read {fusion['bytes_read_to_send'] / 2**20:.1f} MiB of {record['zip_bytes'] / 2**20:.1f},"
        f" once={fusion['once']}; {state}"
    )


# -- fan-out --------------------------------------------------------------------------------------------


def fan_out(archives: list[Built], fanout: int, rounds: int, oci: Oci, log: Log) -> list[dict[str, Any]]:
    """Each archive with TRANSFER_FANOUT=`fanout` against 1, unit invocations in parallel processes;
    one summary per archive (medians over the rounds) with every run in it."""
    summaries = []
    with serving(LOOPBACK, {extract_name(archive): archive for archive in archives}, oci) as fusion:
        for archive in archives:
            warm(archive.path)
            runs: list[dict[str, Any]] = []
            for round_index in range(rounds):
                for setting in stats.rotated((1, fanout), round_index):
                    run = _fan_out_one(archive, setting, fusion, oci)
                    run["round"] = round_index
                    runs.append(run)
                    log(_fan_out_line(archive, run))
            summaries.append(_fan_out_summary(archive, fanout, runs))
    return summaries


def _fan_out_one(archive: Built, fanout: int, fusion: Fusion, oci: Oci) -> dict[str, Any]:
    env = {**fusion.env, "TRANSFER_FANOUT": str(fanout)}
    run_id, files = prepare_run(env, extract_name(archive))
    (zip_name, _url), others = files[0], files[1:]
    calls_before = oci.requests_since(0)["count"]
    started = time.perf_counter()
    try:
        driven = transfer_file_parallel(env, run_id, zip_name, Path(oci.served["root"]) / BUCKET)
    except Stuck as exc:
        driven = {"outcome": "stuck", "error": str(exc)}
    wall = time.perf_counter() - started
    driven["oci_commit_s"] = oci.requests_since(calls_before).get("commit_seconds")
    problem = close_run(env, run_id, others, archive)
    oci.purge()
    ok = driven.get("outcome") == "landed" and problem is None
    return {"fanout": fanout, "wall_s": wall, "ok": ok, "problem": problem, **driven}


def _fan_out_line(archive: Built, run: dict[str, Any]) -> str:
    state = "ok" if run["ok"] else f"FAILED {run.get('problem') or run.get('error') or run.get('outcome')}"
    return (
        f"  fan-out {archive.spec.megabytes}MiB x{archive.spec.members} r{run['round']}"
        f" TRANSFER_FANOUT={run['fanout']}: wall {run['wall_s']:.2f}s, {run.get('invocations')} invocations"
        f" (at most {run.get('most_at_once')} at once), longest {run.get('longest_invocation_s', 0):.2f}s,"
        f" CPU {run.get('cpu_s', 0):.2f}s, largest RSS {run.get('peak_rss_mib', 0):.0f}MiB,"
        f" claim conflicts {run.get('claim_conflicts', 0)}  {state}"
    )


def _fan_out_summary(archive: Built, fanout: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_setting: dict[int, dict[str, Any]] = {}
    for setting in (1, fanout):
        mine = [run for run in runs if run["fanout"] == setting and run["ok"]]
        by_setting[setting] = {
            "rounds": len(mine),
            **{
                figure: stats.median([float(run[figure]) for run in mine])
                for figure in (
                    "wall_s",
                    "longest_invocation_s",
                    "cpu_s",
                    "peak_rss_mib",
                    "invocations",
                    "most_at_once",
                    "oci_commit_s",
                )
            },
            "claim_conflicts": sum(int(run.get("claim_conflicts") or 0) for run in mine),
            "runs_with_claim_conflicts": sum(1 for run in mine if run.get("claim_conflicts")),
        }
    one, many = by_setting[1]["wall_s"], by_setting[fanout]["wall_s"]
    speedup = stats.ratio(one, many)
    ones = {run["round"]: run["wall_s"] for run in runs if run["fanout"] == 1 and run["ok"]}
    pairs = [(ones[r["round"]], r["wall_s"]) for r in runs if r["fanout"] == fanout and r["round"] in ones]
    paired = stats.paired_ratio([p[0] for p in pairs], [p[1] for p in pairs])
    return {
        "archive": archive.spec.key,
        "megabytes": archive.spec.megabytes,
        "members": archive.spec.members,
        "fanout": fanout,
        "settings": {str(setting): figures for setting, figures in by_setting.items()},
        "speedup": None if speedup is None else round(speedup, 2),
        "paired_speedup": None if paired is None else round(paired, 2),
        "ok": all(run["ok"] for run in runs),
        "runs": runs,
    }
