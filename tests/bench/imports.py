"""Cold-start cost of each function: loading its func.py (what fdk does first) in a fresh interpreter.

`import_ms`: the median wall time of REPEATS interpreters that load func.py, minus the median of
interpreters that do everything but that. `by_package_ms`: where the time goes, from `python -X importtime`
(self time of every module imported by func.py, summed per top-level package, the heaviest first).

    .venv/bin/python -m tests.bench.imports [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from tests.bench.support import REPO

FUNCTIONS = ("submit", "poll", "transfer")
MARK = "-- func.py --"
PREPARE = f"import importlib.util, sys; print({MARK!r}, file=sys.stderr)"
LOAD = (
    "; spec = importlib.util.spec_from_file_location('func', 'func.py')"
    "; spec.loader.exec_module(importlib.util.module_from_spec(spec))"
)


def measure(repeats: int = 7) -> dict[str, Any]:
    results: dict[str, Any] = {"interpreter_ms": round(_median_seconds(PREPARE, "submit", repeats) * 1000)}
    for function in FUNCTIONS:
        seconds = _median_seconds(PREPARE + LOAD, function, repeats)
        results[function] = {
            "import_ms": round(seconds * 1000 - results["interpreter_ms"]),
            "by_package_ms": _by_package(function),
        }
    return results


def _run(code: str, function: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *options, "-c", code],
        cwd=REPO / "functions" / function,  # as fdk runs in the function's folder
        capture_output=True,
        text=True,
        check=True,
    )


def _median_seconds(code: str, function: str, repeats: int) -> float:
    _run(code, function)  # warm: bytecode compiled, files in the page cache
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        _run(code, function)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def _by_package(function: str, top: int = 4) -> dict[str, float]:
    """Self import time per top-level package of what func.py imports, in ms."""
    report = _run(PREPARE + LOAD, function, "-X", "importtime").stderr
    totals: Counter[str] = Counter()
    for line in report.partition(MARK)[2].splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            self_us, _cumulative, name = line.removeprefix("import time:").split("|")
            totals[name.strip().split(".")[0]] += int(self_us)
    return {package: round(us / 1000, 1) for package, us in totals.most_common(top)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    print(json.dumps(measure(parser.parse_args().repeats)))


if __name__ == "__main__":
    main()
