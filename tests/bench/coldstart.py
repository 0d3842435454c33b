"""Cold start as a function container pays it: a fresh interpreter loads func.py (what fdk does first),
then the first call imports what the handler imports lazily: the handler answers a probe message (which
touches no run) as it answers any first message (fdk.response, the Runtime and through it the OCI SDK),
then what a step adds (requests, for Fusion).

For each function, REPEATS fresh interpreters (in the function's folder, as fdk runs it) report: the time
to load func.py, the time of the first call's imports on top, and the resident memory after each; the
medians are kept. `cpu_ms` is the CPU time of both (less disturbed by a busy machine).
`interpreter_ms` is a bare interpreter's start, for scale. `by_package_ms`: where the
import time goes (self time per top-level package, `python -X importtime`, heaviest first).

    .venv/bin/python -m tests.bench.coldstart [--repeats 5]
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

from tests.bench.servers import REPO

FUNCTIONS = ("submit", "poll", "transfer")
TOPICS = ("POLL", "TRANSFER", "RERUN", "ALERTS")
FIRST_CALL = ("fdk", "fdk.response", "fusion_extract.runtime", "oci", "requests")
# A complete configuration (nothing is reached: the probe touches no run)
CONFIG = {
    "FUSION_BASE_URL": "https://fusion.example.com",
    "IDCS_URL": "https://idcs.example.com",
    "FUSION_SCOPE": "urn:opc:resource:fusion:bench:saas-batch/",
    "CREDENTIALS_SECRET_ID": "ocid1.vaultsecret.oc1.eu-frankfurt-1.bench",
    "BUCKET_NAME": "landing",
    **{f"{topic}_TOPIC_ID": f"ocid1.onstopic.oc1.eu-frankfurt-1.{topic.lower()}" for topic in TOPICS},
    "LOG_LEVEL": "ERROR",
}
MARK = "-- func.py --"
PROBE = f"""
import importlib, importlib.util, io, json, sys, time
from fdk import context
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
print({MARK!r}, file=sys.stderr)
started, started_cpu = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location('func', 'func.py')
func = importlib.util.module_from_spec(spec)
spec.loader.exec_module(func)
loaded, loaded_cpu, loaded_rss = time.perf_counter(), time.process_time(), rss()
ctx = context.InvokeContext('app', 'fn', 'id', 'fn', 'call-1', config={CONFIG!r})
answer = func.handler(ctx, io.BytesIO(b'{{"v": 1, "kind": "probe", "source": "bench"}}'))
assert answer.status() == 200, answer.body()
for name in {FIRST_CALL!r}:
    importlib.import_module(name)
called, called_cpu = time.perf_counter(), time.process_time()
print(json.dumps({{"func_py_ms": (loaded - started) * 1000, "first_call_ms": (called - loaded) * 1000,
                  "cpu_ms": (called_cpu - started_cpu) * 1000,
                  "func_py_rss_mib": loaded_rss, "first_call_rss_mib": rss()}}))
"""


def _run(function: str, *options: str, code: str = PROBE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *options, "-c", code],
        cwd=REPO / "functions" / function,
        capture_output=True,
        text=True,
        check=True,
    )


def measure(repeats: int = 5) -> dict[str, Any]:
    interpreter = []
    for _ in range(repeats):
        started = time.perf_counter()
        _run("submit", code="pass")
        interpreter.append((time.perf_counter() - started) * 1000)
    results: dict[str, Any] = {"interpreter_ms": round(statistics.median(interpreter)), "repeats": repeats}
    for function in FUNCTIONS:
        _run(function)  # warm: bytecode compiled, files in the page cache
        samples = [json.loads(_run(function).stdout) for _ in range(repeats)]
        figures = {key: round(statistics.median(s[key] for s in samples), 1) for key in samples[0]}
        figures["total_ms"] = round(figures["func_py_ms"] + figures["first_call_ms"], 1)
        results[function] = {**figures, "by_package_ms": _by_package(function)}
    return results


def _by_package(function: str, top: int = 5) -> dict[str, float]:
    report = _run(function, "-X", "importtime").stderr
    totals: Counter[str] = Counter()
    for line in report.partition(MARK)[2].splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            self_us, _cumulative, name = line.removeprefix("import time:").split("|")
            totals[name.strip().split(".")[0]] += int(self_us)
    return {package: round(us / 1000, 1) for package, us in totals.most_common(top)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    print(json.dumps(measure(parser.parse_args().repeats)))


if __name__ == "__main__":
    main()
