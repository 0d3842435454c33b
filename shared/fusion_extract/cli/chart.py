"""The chart of `fusion-extract history EXTRACT --plot FILE.png / --html FILE`: one bar per run, oldest on
the left; above, how long it took, split into earlier jobs (failed, then rerun), queue (Fusion had not
started the job), job (Fusion ran it) and transfer (landing its files), with runs that did not land marked
by their outcome; below, the data it landed. A person sees at a glance which part grows, which runs failed,
and whether volume explains it.

matplotlib is the CLI's optional extra (`pip install 'fusion-extract[cli,plot]'`), imported only here and
only when a chart is asked for; the functions never import this module.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fusion_extract.chain.ledger.records import RunState
from fusion_extract.cli.service import RunHistory
from fusion_extract.errors import ConfigError

PARTS = (("earlier", "#bdbdbd"), ("queue", "#9ecae1"), ("job", "#3182bd"), ("transfer", "#31a354"))
LABELS = {"earlier": "earlier jobs (failed, rerun)"}
ENDED_BADLY = {RunState.FAILED: "#d62728", RunState.TIMED_OUT: "#ff7f0e", RunState.CANCELLED: "#7f7f7f"}


def write_png(extract: str, runs: Sequence[RunHistory], path: Path) -> None:
    path.write_bytes(_render(extract, runs, "png"))


def write_html(extract: str, runs: Sequence[RunHistory], path: Path) -> None:
    """One self-contained page: the chart (inline SVG) and the table of the same runs."""
    svg = _render(extract, runs, "svg").decode()
    svg = svg[svg.index("<svg") :]  # the XML prologue is not HTML
    head = "".join(f"<th>{name}</th>" for name in HEADINGS)
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in table_row(run)) + "</tr>" for run in runs
    )
    path.write_text(
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(extract)}: run history</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>"
        f"<h1>{html.escape(extract)}: run history</h1>\n{svg}\n"
        f"<table><thead><tr>{head}</tr></thead><tbody>\n{rows}\n</tbody></table></body></html>\n"
    )


HEADINGS = (
    "run",
    "started (UTC)",
    "outcome",
    "earlier jobs",
    "queue",
    "job",
    "transfer",
    "total",
    "MB",
    "rows",
)


def table_row(run: RunHistory) -> list[str]:
    """One run as `history` prints it (and the HTML page tabulates it)."""
    return [
        run.run_id,
        f"{run.started:%Y-%m-%d %H:%M}",
        run.state.value + (f" ({run.reason})" if run.reason and run.state is not RunState.LANDED else ""),
        *(duration(value) for value in (run.earlier, run.queue, run.job, run.transfer, run.total)),
        f"{run.bytes / 1e6:,.1f}",
        f"{run.rows:,}",
    ]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _render(extract: str, runs: Sequence[RunHistory], form: str) -> bytes:
    plt = _pyplot()
    from matplotlib.patches import Patch

    unit, scale = _time_unit(runs)
    figure, (times, volume) = plt.subplots(
        2, 1, figsize=(max(7.0, 0.5 * len(runs) + 3), 6.5), sharex=True, height_ratios=(3, 2)
    )
    positions = range(len(runs))
    bottom = [0.0] * len(runs)
    for part, colour in PARTS:
        heights = [(getattr(run, part) or 0.0) / scale for run in runs]
        if part == "earlier" and not any(heights):
            continue  # no run needed a second job: no legend entry for it
        times.bar(positions, heights, bottom=bottom, color=colour, label=LABELS.get(part, part), width=0.7)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    for index, run in enumerate(runs):
        badly = ENDED_BADLY.get(run.state)
        if badly is not None:
            unknown = (run.total or 0.0) / scale - bottom[index]  # time the parts do not account for
            times.bar(
                index, max(unknown, 0.0), bottom=bottom[index], color="none", edgecolor=badly, hatch="//"
            )
            times.annotate(
                run.state.value,
                (index, max(bottom[index], (run.total or 0.0) / scale)),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                color=badly,
                fontweight="bold",
            )
    times.set_ylabel(f"duration ({unit})")
    times.set_title(
        f"{extract}: the last {len(runs)} runs, oldest first" if len(runs) > 1 else f"{extract}: one run"
    )
    handles, _ = times.get_legend_handles_labels()
    if any(run.state in ENDED_BADLY for run in runs):  # what a hatched bar means
        handles.append(
            Patch(facecolor="none", edgecolor="#555555", hatch="//", label="ended without landing")
        )
    times.legend(handles=handles, loc="upper left", frameon=False, ncols=4)
    times.grid(axis="y", alpha=0.3)
    landed = [run.bytes / 1e6 for run in runs]
    volume.bar(positions, landed, color="#756bb1", width=0.7)
    for index, run in enumerate(runs):
        if run.rows:
            volume.annotate(
                f"{_compact(run.rows)} rows",
                (index, landed[index]),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )
    volume.set_ylabel("landed (MB)")
    volume.grid(axis="y", alpha=0.3)
    volume.set_xticks(list(positions), [f"{run.started:%m-%d\n%H:%M}" for run in runs], fontsize=8)
    volume.set_xlabel("run started (UTC)")
    pad = max(6 - len(runs), 0) / 2  # a few runs keep bars of a usual width, centred
    volume.set_xlim(-0.5 - pad, len(runs) - 0.5 + pad)
    for axes in (times, volume):
        axes.spines[["top", "right"]].set_visible(False)
        axes.margins(y=0.15)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=form, dpi=120)
    plt.close(figure)
    return buffer.getvalue()


def _compact(count: int) -> str:
    """4,000 / 12.3k / 1.2M: short enough that labels of many runs do not overlap."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    return f"{count / 1000:.1f}k" if count >= 10_000 else f"{count:,}"


def _time_unit(runs: Sequence[RunHistory]) -> tuple[str, float]:
    longest = max((run.total or 0.0 for run in runs), default=0.0)
    return (
        ("hours", 3600.0)
        if longest >= 3 * 3600
        else ("minutes", 60.0)
        if longest >= 180
        else ("seconds", 1.0)
    )


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display, whatever the environment says
        from matplotlib import pyplot
    except ImportError:
        raise ConfigError(
            "charts need matplotlib, the CLI's plot extra: pip install 'fusion-extract[cli,plot]'"
        ) from None
    return pyplot
