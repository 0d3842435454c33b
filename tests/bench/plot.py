"""The chart of .local/bench.json: throughput, CPU per GB and peak memory against size, ours and the blog's,
one line per archive shape, on loopback (and the throttled profiles where they ran).

Runs in the plotting venv (.local/bench-venv, requirements-bench.txt), which has matplotlib and nothing
of the product: it reads the JSON only.

    .local/bench-venv/bin/python -m tests.bench.plot .local/bench.json [more.json ...] .local/bench.png

Several JSONs (say the default run and a `--sizes 2048` run) are drawn as one: their archives side by side.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

PANELS = (
    ("throughput_mb_s", "throughput, uncompressed MB/s"),
    ("cpu_s_per_gb", "client CPU s per GB"),
    ("peak_rss_mib", "client peak RSS, MiB"),
)
STYLES = {"ours_cold": "tab:blue", "ours_warm": "tab:cyan", "blog_cold": "tab:orange", "blog_warm": "gold"}
PROFILE_MARKERS = {"loopback": "o", "wan40": "s", "wan5": "^"}


def series(document: dict[str, Any]) -> dict[tuple[str, str, int], list[tuple[int, dict[str, Any]]]]:
    """(profile, pipeline, members) -> [(MiB, the pipeline's medians)] sorted by size."""
    lines: dict[tuple[str, str, int], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for entry in document.get("transfer", []):
        for name, figures in entry["pipelines"].items():
            if name in STYLES:
                lines[(entry["profile"], name, entry["members"])].append((entry["megabytes"], figures))
    return {key: sorted(points, key=lambda point: point[0]) for key, points in lines.items()}


def merged(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """One document of several runs' transfer entries (a later run's entry wins for the same profile and
    archive); `when` lists the runs' dates."""
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for document in documents:
        for entry in document.get("transfer", []):
            entries[(entry["profile"], entry["archive"])] = entry
    when = ", ".join(sorted({str(document.get("when", ""))[:10] for document in documents}))
    return {"when": when, "transfer": list(entries.values())}


def main() -> None:
    import matplotlib  # the plotting venv (and the dev venv, for the CLI's charts)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources, target = [Path(name) for name in sys.argv[1:-1]], Path(sys.argv[-1])
    document = merged([json.loads(source.read_text()) for source in sources])
    figure, axes = plt.subplots(1, len(PANELS), figsize=(19, 5))
    for (profile, name, members), points in sorted(series(document).items()):
        sizes = [size for size, _ in points]
        for axis, (key, _title) in zip(axes, PANELS, strict=True):
            axis.plot(
                sizes,
                [figures[key] for _, figures in points],
                color=STYLES[name],
                marker=PROFILE_MARKERS.get(profile, "x"),
                linestyle="-" if members == 1 else "--",
                label=f"{name} {profile} x{members}",
            )
    for axis, (key, title) in zip(axes, PANELS, strict=True):
        axis.set_title(title)
        axis.set_xlabel("uncompressed MiB")
        axis.set_xscale("log")
        axis.grid(True, alpha=0.3)
        if key == "peak_rss_mib":
            axis.axhline(128, color="red", linewidth=0.8, linestyle=":", label="target 128 MiB")
    handles, labels = axes[-1].get_legend_handles_labels()
    figure.legend(handles, labels, fontsize=8, loc="center right")
    when = document.get("when", "")
    figure.suptitle(f"fusion-extract transfer vs blog pipeline ({when}; solid: 1 member, dashed: many)")
    figure.tight_layout(rect=(0, 0, 0.85, 1))
    figure.savefig(target, dpi=110)


if __name__ == "__main__":
    main()
