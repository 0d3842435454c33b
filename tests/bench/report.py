"""From run records to figures: medians per pipeline, ratios ours/blog, the team's targets, the table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from tests.bench import stats
from tests.bench.datagen import Built

MiB = 2**20
FIGURES = ("wall_s", "cpu_s", "peak_rss_mib", "disk_write_bytes", "process_cpu_s", "calls", "oci_commit_s")


def summarise(records: list[dict[str, Any]], archives: Mapping[str, Built]) -> list[dict[str, Any]]:
    """One entry per (profile, archive): each pipeline's medians and derived rates, and the ratios."""
    groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.get("ok"):
            groups[(record["profile"], record["archive"])][record["pipeline"]].append(record)
    summary = []
    for (profile, key), by_pipeline in groups.items():
        archive = archives[key]
        pipelines = {name: _pipeline(runs, archive) for name, runs in by_pipeline.items()}
        entry: dict[str, Any] = {
            "profile": profile,
            "archive": key,
            "megabytes": archive.spec.megabytes,
            "members": archive.spec.members,
            "zip_bytes": archive.size,
            "uncompressed_bytes": archive.uncompressed,
            "compression_ratio": round(archive.ratio, 2),
            "pipelines": pipelines,
            "ratios": _ratios(by_pipeline, pipelines, archive),
        }
        summary.append(entry)
    return summary


def _pipeline(runs: list[dict[str, Any]], archive: Built) -> dict[str, Any]:
    medians: dict[str, Any] = {"rounds": len(runs)}
    for figure in FIGURES:
        values = [_value(run, figure) for run in runs]
        medians[figure] = stats.median([v for v in values if v is not None])
    wall, cpu = medians["wall_s"], medians["cpu_s"]
    medians["throughput_mb_s"] = round(stats.rate_mb_s(archive.uncompressed, wall), 1)
    medians["cpu_s_per_gb"] = round(stats.per_gb(cpu, archive.uncompressed), 3)
    medians["calls_per_member"] = round(medians["calls"] / len(archive.members), 2)
    medians["calls_by_kind"] = runs[len(runs) // 2]["oci_calls"]
    return medians


def _value(run: dict[str, Any], figure: str) -> float | None:
    if figure == "calls":
        return float(sum(run["oci_calls"].values()))
    value = run.get(figure)
    return None if value is None else float(value)


def _ratios(
    by_pipeline: Mapping[str, list[dict[str, Any]]], pipelines: Mapping[str, dict[str, Any]], archive: Built
) -> dict[str, Any]:
    """ours over blog (below 1: ours is cheaper or faster) and ours over download alone; ratio of the
    medians, and the median of the per-round ratios (`paired_`)."""
    ratios: dict[str, Any] = {}
    ours = pipelines.get("ours")
    for other in ("blog", "download"):
        theirs = pipelines.get(other)
        if ours is None or theirs is None:
            continue
        ratios[f"wall_ours_over_{other}"] = _round(stats.ratio(ours["wall_s"], theirs["wall_s"]))
        by_round = _paired(by_pipeline["ours"], by_pipeline[other], "wall_s")
        ratios[f"paired_wall_ours_over_{other}"] = _round(by_round)
    blog = pipelines.get("blog")
    if ours is not None and blog is not None:
        ratios["cpu_ours_over_blog"] = _round(stats.ratio(ours["cpu_s"], blog["cpu_s"]))
        ratios["paired_cpu_ours_over_blog"] = _round(
            _paired(by_pipeline["ours"], by_pipeline["blog"], "cpu_s")
        )
        ratios["rss_ours_over_blog"] = _round(stats.ratio(ours["peak_rss_mib"], blog["peak_rss_mib"]))
    return ratios


def _paired(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], figure: str) -> float | None:
    by_round = {run["round"]: run[figure] for run in theirs}
    pairs = [(run[figure], by_round[run["round"]]) for run in ours if run["round"] in by_round]
    return stats.paired_ratio([p[0] for p in pairs], [p[1] for p in pairs])


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# -- targets -----------------------------------------------------------------------------------------


def targets(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target the team chases, as measured here: value, bound, met."""
    found: list[dict[str, Any]] = []

    def check(name: str, where: str, value: float | None, bound: float, below: bool = True) -> None:
        met = None if value is None else (value <= bound if below else value >= bound)
        found.append({"target": name, "where": where, "value": value, "bound": bound, "met": met})

    for entry in document.get("transfer", []):
        where = f"{entry['profile']} {entry['megabytes']}MiB x{entry['members']}"
        ratios, ours = entry["ratios"], entry["pipelines"].get("ours")
        if entry["profile"] == "loopback":
            check("cpu/GB ours/blog <= 0.8", where, ratios.get("cpu_ours_over_blog"), 0.8)
            check("wall ours/blog <= 1 (never slower)", where, ratios.get("wall_ours_over_blog"), 1.0)
        if entry["profile"] == "wan40":
            check("wall ours/blog <= 0.67 (1.5x faster)", where, ratios.get("wall_ours_over_blog"), 1 / 1.5)
        if entry["profile"] == "wan5":
            check("wall ours/download <= 1.2", where, ratios.get("wall_ours_over_download"), 1.2)
        if ours is not None:
            check("peak RSS <= 128 MiB", where, ours["peak_rss_mib"], 128)
            check("bytes to disk == 0", where, ours["disk_write_bytes"], 0)
    for record in document.get("anysize", []):
        where = f"{record['megabytes']}MiB x{record['members']} budget {record['budget_s']:g}s"
        check("any size: landed complete (1 = yes)", where, float(record["landed_complete"]), 1, below=False)
        check(
            "any size: Fusion served it once (1 = yes)",
            where,
            float(record["fusion"]["once"]),
            1,
            below=False,
        )
    ten_hours = document.get("poll", {}).get("600min")
    if ten_hours:
        check("status calls, 10 h job <= 40", "simulated clock", ten_hours["status_calls"], 40)
    for function in ("submit", "poll", "transfer"):
        cold = document.get("coldstart", {}).get(function)
        if cold:
            check("func.py + first-call imports < 0.5 s", function, cold["total_ms"] / 1000, 0.5)
    return found


# -- the table ---------------------------------------------------------------------------------------


def table(document: Mapping[str, Any]) -> str:
    return "\n".join(
        [
            *_transfer_rows(document),
            *_anysize_rows(document),
            *_fanout_rows(document),
            *_poll_rows(document),
            *_cold_rows(document),
            *_target_rows(document),
        ]
    )


def _transfer_rows(document: Mapping[str, Any]) -> list[str]:
    rows = [
        f"{'profile':<9}{'archive':>10}  {'pipeline':<21}{'MB/s':>7}{'wall s':>8}{'CPU s/GB':>9}"
        f"{'RSS MiB':>8}{'disk MiB':>9}{'calls/member':>13}{'emu commit s':>13}"
    ]
    for entry in document.get("transfer", []):
        archive = f"{entry['megabytes']}Mx{entry['members']}"
        for name, p in entry["pipelines"].items():
            rows.append(
                f"{entry['profile']:<9}{archive:>10}  {name:<21}{p['throughput_mb_s']:>7.1f}"
                f"{p['wall_s']:>8.2f}{p['cpu_s_per_gb']:>9.2f}{p['peak_rss_mib']:>8.0f}"
                f"{p['disk_write_bytes'] / MiB:>9.1f}{p['calls_per_member']:>13.2f}"
                f"{_show(p.get('oci_commit_s')):>13}"
            )
        ratios = "  ".join(f"{k}={v}" for k, v in entry["ratios"].items() if not k.startswith("paired_"))
        rows.append(f"{'':<21}ratios: {ratios}")
    return rows


def _anysize_rows(document: Mapping[str, Any]) -> list[str]:
    records = document.get("anysize", [])
    if not records:
        return []
    rows = [
        "",
        f"any size{'':<14}{'budget s':>9}{'invocations':>12}{'longest s':>10}{'wall s':>8}{'CPU s':>7}"
        f"{'RSS MiB':>8}{'emu commit s':>13}{'downloads':>10}{'Fusion MiB read / zip':>23}  landed",
    ]
    for r in records:
        f = r["fusion"]
        read = f"{f['bytes_read_to_send'] / MiB:.1f} / {r['zip_bytes'] / MiB:.1f}"
        landed = "complete" if r["landed_complete"] else f"NO: {r.get('landed_problem') or r.get('error')}"
        rows.append(
            f"{'':<8}{str(r['megabytes']) + 'Mx' + str(r['members']):>14}{r['budget_s']:>9g}"
            f"{r.get('invocations') or 0:>12}{r.get('longest_invocation_s') or 0:>10.2f}"
            f"{r.get('wall_s') or 0:>8.2f}{r.get('cpu_s') or 0:>7.2f}{r.get('peak_rss_mib') or 0:>8.0f}"
            f"{_show(r.get('oci_commit_s')):>13}{f['downloads']:>10}{read:>23}"
            f"  {landed}, served once: {f['once']}"
        )
    return rows


def _fanout_rows(document: Mapping[str, Any]) -> list[str]:
    summaries = document.get("fanout", [])
    if not summaries:
        return []
    rows = [
        "",
        f"fan-out (units in parallel processes){'':<3}{'fanout':>7}{'wall s':>8}{'longest s':>10}"
        f"{'CPU s':>7}{'RSS MiB':>8}{'invocations':>12}{'at once':>8}{'emu commit s':>13}",
    ]
    for summary in summaries:
        archive = f"{summary['megabytes']}Mx{summary['members']}"
        for setting, f in summary["settings"].items():
            rows.append(
                f"{'':<26}{archive:>14}{setting:>7}{_show(f['wall_s']):>8}{_show(f['longest_invocation_s']):>10}"
                f"{_show(f['processes_cpu_s']):>7}{_show(f['largest_peak_rss_mib']):>8}"
                f"{_show(f['invocations']):>12}{_show(f['most_at_once']):>8}{_show(f.get('oci_commit_s')):>13}"
            )
        rows.append(
            f"{'':<26}speed-up fanout 1 -> {summary['fanout']}: {summary['speedup']} (median walls),"
            f" {summary['paired_speedup']} (per round){'' if summary['ok'] else '  SOME RUNS FAILED'}"
        )
        conflicts = summary["settings"][str(summary["fanout"])].get("claim_conflicts")
        if conflicts:
            rows.append(
                f"{'':<26}{conflicts} unit claim(s) lost to a concurrent save (in_progress, the unit left"
                " PENDING): in the chain such a unit waits for the sweep"
            )
    return rows


def _poll_rows(document: Mapping[str, Any]) -> list[str]:
    poll = document.get("poll", {})
    if not poll or "error" in poll:
        return []
    rows = ["", "poll (simulated clock): job  status calls  invocations  job end -> first file landed"]
    for f in poll.values():
        rows.append(
            f"{'':<24}{f['job_minutes']:>6g} min {f['status_calls']:>8}{f['poll_invocations']:>13}"
            f"{f['first_landed_delay_s']!s:>14} s  ({f['state']})"
        )
    return rows


def _cold_rows(document: Mapping[str, Any]) -> list[str]:
    cold = document.get("coldstart", {})
    if not cold or "error" in cold:
        return []
    rows = [
        "",
        f"cold start (bare interpreter {cold['interpreter_ms']} ms): func.py + first call = total, RSS",
    ]
    for function in ("submit", "poll", "transfer"):
        c = cold[function]
        rows.append(
            f"{'':<24}{function:<9}{c['func_py_ms']:>7.0f} +{c['first_call_ms']:>5.0f} ="
            f" {c['total_ms']:>5.0f} ms (CPU {c['cpu_ms']:>4.0f} ms) {c['first_call_rss_mib']:>4.0f} MiB"
            f"  top: {c['by_package_ms']}"
        )
    return rows


def _target_rows(document: Mapping[str, Any]) -> list[str]:
    rows = ["", "targets:"]
    for target in document.get("targets", []):
        mark = {True: "met", False: "MISSED", None: "n/a"}[target["met"]]
        rows.append(
            f"  {mark:<7}{target['target']:<44}{target['where']:<26}"
            f" value {_show(target['value'])} (bound {_show(target['bound'])})"
        )
    return rows


def _show(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)
