"""From run records to figures: medians per pipeline, ratios ours/blog, the team's targets, the table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from tests.bench import stats
from tests.bench.datagen import Built

MiB = 2**20
FIGURES = (
    "wall_s",
    "cpu_s",
    "peak_rss_mib",
    "disk_write_bytes",
    "process_cpu_s",
    "calls",
    "oci_commit_s",
    "fusion_read_per_byte",
    "startup_s",
    "invocations",
)
MODES = ("cold", "warm")


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
            "ratios": _ratios(by_pipeline, pipelines),
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
    medians["fusion_served_once"] = all((run.get("fusion") or {}).get("once", True) for run in runs)
    return medians


def _value(run: dict[str, Any], figure: str) -> float | None:
    if figure == "calls":
        return float(sum(run["oci_calls"].values()))
    if figure == "fusion_read_per_byte":
        fusion = run.get("fusion")
        return None if fusion is None else fusion["bytes_read_to_send"] / run["zip_bytes"]
    value = run.get(figure)
    return None if value is None else float(value)


def _ratios(
    by_pipeline: Mapping[str, list[dict[str, Any]]], pipelines: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """For each mode, ours over the blog (below 1: ours is cheaper or faster) and ours over the download
    alone: ratio of the medians, and the median of the per-round ratios (`paired_`)."""
    ratios: dict[str, Any] = {}
    for mode in MODES:
        ours, mine = pipelines.get(f"ours_{mode}"), by_pipeline.get(f"ours_{mode}", [])
        for other, label in ((f"blog_{mode}", "blog"), ("download", "download")):
            theirs = pipelines.get(other)
            if ours is None or theirs is None:
                continue
            ratios[f"{mode}_wall_ours_over_{label}"] = _round(stats.ratio(ours["wall_s"], theirs["wall_s"]))
            paired = _paired(mine, by_pipeline[other], "wall_s")
            ratios[f"{mode}_paired_wall_ours_over_{label}"] = _round(paired)
            if label == "blog":
                ratios[f"{mode}_cpu_ours_over_blog"] = _round(stats.ratio(ours["cpu_s"], theirs["cpu_s"]))
                paired = _paired(mine, by_pipeline[other], "cpu_s")
                ratios[f"{mode}_paired_cpu_ours_over_blog"] = _round(paired)
                rss = stats.ratio(ours["peak_rss_mib"], theirs["peak_rss_mib"])
                ratios[f"{mode}_rss_ours_over_blog"] = _round(rss)
    return ratios


def _paired(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], figure: str) -> float | None:
    by_round = {run["round"]: run[figure] for run in theirs}
    pairs = [(run[figure], by_round[run["round"]]) for run in ours if run["round"] in by_round]
    return stats.paired_ratio([p[0] for p in pairs], [p[1] for p in pairs])


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# -- targets -----------------------------------------------------------------------------------------


def cell_targets(entry: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    """The issue's targets that apply to one cell: (name, ratio key, bound), every bound an upper one."""
    profile, megabytes, members = entry["profile"], entry["megabytes"], entry["members"]
    found = []
    for mode in MODES:
        cpu_bound = 0.8 if members == 1 and megabytes >= 500 else 1.0
        found.append((f"CPU/GB ours/blog <= {cpu_bound:g}, {mode}", f"{mode}_cpu_ours_over_blog", cpu_bound))
        if profile == "loopback" and mode == "warm":
            found.append(("wall ours/blog <= 1 (never slower), warm", "warm_wall_ours_over_blog", 1.0))
        if profile == "loopback" and mode == "cold" and megabytes <= 100:
            found.append(("wall ours/blog <= 1.2, cold", "cold_wall_ours_over_blog", 1.2))
        if profile == "wan40" and megabytes >= 500:
            found.append(
                (f"wall ours/blog <= 0.67 (1.5x faster), {mode}", f"{mode}_wall_ours_over_blog", 1 / 1.5)
            )
        if profile == "wan5":
            found.append((f"wall ours/download <= 1.15, {mode}", f"{mode}_wall_ours_over_download", 1.15))
    return found


def targets(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target the team chases, as measured here: value, bound, met, and by how much it is missed."""
    found: list[dict[str, Any]] = []

    def check(name: str, where: str, value: float | None, bound: float, below: bool = True) -> None:
        met = None if value is None else (value <= bound if below else value >= bound)
        missed_by = None
        if met is False and below and bound > 0:
            missed_by = f"{100 * (value / bound - 1):.0f}% over"  # type: ignore[operator]
        elif met is False:
            missed_by = f"{value} against {bound}"
        found.append(
            {
                "target": name,
                "where": where,
                "value": value,
                "bound": bound,
                "met": met,
                "missed_by": missed_by,
            }
        )

    for entry in document.get("transfer", []):
        where = f"{entry['profile']} {entry['megabytes']}MiB x{entry['members']}"
        for name, key, bound in cell_targets(entry):
            check(name, where, entry["ratios"].get(key), round(bound, 2))
        for mode in MODES:
            ours = entry["pipelines"].get(f"ours_{mode}")
            if ours is not None:
                check(f"peak RSS <= 128 MiB, {mode}", where, ours["peak_rss_mib"], 128)
                check(f"bytes to disk == 0, {mode}", where, ours["disk_write_bytes"], 0)
                check(f"Fusion read per byte == 1, {mode}", where, _round(ours["fusion_read_per_byte"]), 1.0)
    for record in document.get("anysize", []):
        where = f"{record['megabytes']}MiB x{record['members']} budget {record['budget_s']:g}s"
        check("any size: landed complete (1 = yes)", where, float(record["landed_complete"]), 1, below=False)
        check("any size: peak RSS <= 128 MiB (its instance)", where, record.get("peak_rss_mib"), 128)
        check("any size: bytes to disk == 0", where, record.get("disk_write_bytes"), 0)
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


# -- the cells, as the table ---------------------------------------------------------------

LINKS = {"loopback": "loopback", "wan40": "40 MB/s + 20 ms", "wan5": "5 MB/s + 20 ms"}


def cells(document: Mapping[str, Any]) -> str:
    """The issue's table, cell by cell (markdown): ratios ours/blog cold and warm, and ours' own figures."""
    rows = [
        "| link | archive | CPU/GB ours/blog cold / warm | wall ours/blog cold / warm | wall ours/download"
        " cold / warm | ours CPU s/GB cold / warm | ours peak RSS MiB | disk | Fusion bytes read per byte"
        " | requests per member ours / blog | targets missed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    missed: dict[str, list[str]] = defaultdict(list)
    for target in document.get("targets", []):
        if target["met"] is False:
            missed[target["where"]].append(f"{target['target']} ({target['missed_by']})")
    for entry in document.get("transfer", []):
        r, p = entry["ratios"], entry["pipelines"]
        cold, warm, blog = p.get("ours_cold", {}), p.get("ours_warm", {}), p.get("blog_warm", {})
        where = f"{entry['profile']} {entry['megabytes']}MiB x{entry['members']}"
        size = (
            f"{entry['megabytes']} MiB" if entry["megabytes"] < 1024 else f"{entry['megabytes'] // 1024} GiB"
        )
        rows.append(
            f"| {LINKS.get(entry['profile'], entry['profile'])} | {size} x{entry['members']}"
            f" | {_pair(r, 'cpu_ours_over_blog')} | {_pair(r, 'wall_ours_over_blog')}"
            f" | {_pair(r, 'wall_ours_over_download')}"
            f" | {_show(cold.get('cpu_s_per_gb'))} / {_show(warm.get('cpu_s_per_gb'))}"
            f" | {_show(max(cold.get('peak_rss_mib') or 0, warm.get('peak_rss_mib') or 0))}"
            f" | {_show(max(cold.get('disk_write_bytes') or 0, warm.get('disk_write_bytes') or 0))}"
            f" | {_show(cold.get('fusion_read_per_byte'))} / {_show(warm.get('fusion_read_per_byte'))}"
            f" | {_show(cold.get('calls_per_member'))} / {_show(blog.get('calls_per_member'))}"
            f" | {'; '.join(missed.get(where, [])) or 'none'} |"
        )
    return "\n".join(rows)


def _pair(ratios: Mapping[str, Any], key: str) -> str:
    return f"{_show(ratios.get(f'cold_{key}'))} / {_show(ratios.get(f'warm_{key}'))}"


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
        f"{'RSS MiB':>8}{'disk MiB':>9}{'calls/member':>13}{'emu commit s':>13}{'Fusion/B':>9}"
        f"{'start-up s':>11}"
    ]
    for entry in document.get("transfer", []):
        archive = f"{entry['megabytes']}Mx{entry['members']}"
        for name, p in entry["pipelines"].items():
            rows.append(
                f"{entry['profile']:<9}{archive:>10}  {name:<21}{p['throughput_mb_s']:>7.1f}"
                f"{p['wall_s']:>8.2f}{p['cpu_s_per_gb']:>9.2f}{p['peak_rss_mib']:>8.0f}"
                f"{p['disk_write_bytes'] / MiB:>9.1f}{p['calls_per_member']:>13.2f}"
                f"{_show(p.get('oci_commit_s')):>13}{_show(p.get('fusion_read_per_byte')):>9}"
                f"{_show(p.get('startup_s')):>11}"
            )
        ratios = "  ".join(f"{k}={v}" for k, v in entry["ratios"].items() if "_paired_" not in k)
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
                f"{_show(f['cpu_s']):>7}{_show(f['peak_rss_mib']):>8}"
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
        by = f", {target['missed_by']}" if target.get("missed_by") else ""
        rows.append(
            f"  {mark:<7}{target['target']:<48}{target['where']:<26}"
            f" value {_show(target['value'])} (bound {_show(target['bound'])}{by})"
        )
    return rows


def _show(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)
