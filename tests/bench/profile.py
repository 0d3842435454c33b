"""Where the time goes: one transfer under py-spy (every thread, native frames off), on loopback.

    .venv/bin/python -m tests.bench.profile [--megabytes 500] [--members 1] [--pipeline ours_cold] [--top 25]

`ours_cold` runs the transfer as `make bench` does cold (tests.bench.product.drive: a new function
instance per invocation), each instance under py-spy from its first instruction, so that interpreter
start-up and imports are sampled with the rest; the instances' samples are added up. `blog` profiles the
blog's pipeline process. py-spy comes with the bench venv (requirements-bench.txt; `make bench` builds
it). The collapsed stacks go to .local/bench-profile-<pipeline>-<archive>.txt; the table printed is self
time by function and time by package and function (a sample counts once for every package or function
on its stack), over the samples of threads at work: py-spy counts a thread blocked on a socket or a
queue as active, so those are counted apart, and so are the samples taken while importing.

    .venv/bin/python -m tests.bench.profile --counters [--megabytes 500] [--members 1]

runs the same transfer with each instance under `perf stat` instead: the kernel's own counts for the
instances' processes alone (task-clock, page faults, context switches), added up. Not sampled and not
slowed, they tell a change's CPU apart on a shared machine where the bench's ratios drown in its noise.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.bench.compare import Oci, child_environment, product_env
from tests.bench.datagen import Spec, build
from tests.bench.product import drive, finish_run, prepare_run
from tests.bench.servers import BUCKET, REPO, Child

PYSPY = REPO / ".local" / "bench-venv" / "bin" / "py-spy"
COUNTED = ("task-clock", "page-faults", "context-switches")


def profile(spec: Spec, pipeline: str, output: Path, record: Callable[[Path], tuple[str, ...]]) -> None:
    archive = build(spec)
    workdir = Path(tempfile.mkdtemp(dir=REPO / ".local"))
    oci = Oci(Child("tests.bench.servers", "oci", str(workdir)), workdir)
    extract = "Profiled"
    fusion_child = Child(
        "tests.bench.servers", "fusion", json.dumps({"extracts": {extract: {"zip": str(archive.path)}}})
    )
    try:
        fusion = dict(fusion_child.ready)
        credentials = json.dumps({"client_id": fusion["client_id"], "client_secret": fusion["client_secret"]})
        oci.secret_id = oci.child.ask(f"secret bench-credentials {credentials}")["secret_id"]
        env = product_env(fusion, oci)
        run_id, files = prepare_run(env, extract)
        (name, url), others = files[0], files[1:]
        (workdir / "tmp").mkdir()
        blog = {
            "name": name,
            "url": url,
            "fusion": fusion,
            "oci": {**oci.served, "bucket": BUCKET},
            "tmp": str(workdir / "tmp"),
            "prefix": "blog/",
        }
        if pipeline == "ours_cold":
            folder = Path(oci.served["root"]) / BUCKET
            print(json.dumps(_ours_cold(env, run_id, name, folder, output, record)))
        else:
            params = {**blog, "uncompressed": archive.uncompressed}
            command = [*record(output), sys.executable, "-m", "tests.bench.pipelines", pipeline]
            done = subprocess.run(
                command,
                cwd=REPO,
                input=json.dumps(params),
                text=True,
                env=child_environment(),
                capture_output=True,
            )
            print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:])
        finish_run(env, run_id, [other for other, _url in others])
    finally:
        fusion_child.stop()
        oci.child.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def sampled(output: Path) -> tuple[str, ...]:
    return (str(PYSPY), "record", "--format", "raw", "--rate", "200", "--output", str(output), "--")


def counted(output: Path) -> tuple[str, ...]:
    return ("perf", "stat", "-x", ",", "-e", ",".join(COUNTED), "-o", str(output), "--")


def _ours_cold(
    env: dict[str, str],
    run_id: str,
    name: str,
    bucket: Path,
    output: Path,
    record: Callable[[Path], tuple[str, ...]],
) -> dict[str, Any]:
    """The cold transfer, every instance under `record` (py-spy or perf stat); what each wrote added up
    into `output`. The figures of the run (slowed by sampling) and each invocation's start-up."""
    parts = Path(tempfile.mkdtemp(dir=REPO / ".local"))
    numbers = itertools.count()
    try:
        with (REPO / ".local" / "bench-instances.log").open("a") as log:
            figures = drive(
                env,
                run_id,
                name,
                bucket,
                warm=False,
                log=log,
                wrapper=lambda: record(parts / f"{next(numbers)}"),
            )
        output.write_text("".join(part.read_text() for part in sorted(parts.iterdir())))
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    keep = ("ok", "wall_s", "cpu_s", "invocations", "startup_s", "peak_rss_mib")
    return {key: figures.get(key) for key in keep}


WAITS = {"wait", "join", "_wait_for_tstate_lock", "do_poll", "select", "poll"}  # blocking calls, by name
RESPONSE = ("HTTPResponse.begin ", "HTTPResponse._read_status ")  # a request sent, its answer awaited


def _name(frame: str) -> str:
    """`Class.method (path:line)` or `outer.<locals>.inner (path:line)` -> `method` / `inner`."""
    return frame.partition(" (")[0].rsplit(".", 1)[-1]


def waiting(frames: list[str]) -> bool:
    """A sample of a thread that waits rather than works: py-spy counts a thread blocked in a socket read
    or on a lock as active. An idle pool worker (its own frame on top), a lock or poll wait, or a socket
    read for the status line of an answer (the server's time, not ours)."""
    leaf = _name(frames[-1])
    if leaf == "_worker" or leaf in WAITS:
        return True
    reading = leaf in ("readinto", "read", "recv_into") and "socket" in frames[-1]
    return reading and any(frame.startswith(RESPONSE) for frame in frames)


def summarise(collapsed: Path, top: int) -> str:
    """Self time per function, and inclusive time per package and per function, from py-spy's collapsed
    stacks (`frame;frame;... count`), over the samples of threads at work: `waiting` ones, those taken
    while importing and those with no Python frame (the interpreter starting or ending) are counted
    apart."""
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = waits = imports = bare = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
        if not stack.strip():  # no Python frame yet (or any more): the interpreter starting or ending
            bare += count
            continue
        if waiting(frames):
            waits += count
            continue
        if any(frame.startswith("_find_and_load ") for frame in frames):
            imports += count
            continue
        own[_short(frames[-1])] += count
        for package in {_package(frame) for frame in frames}:
            packages[package] += count
        for name in {_short(frame) for frame in frames}:
            inclusive[name] += count
    working = max(total - waits - imports - bare, 1)
    rows = [
        f"{total} samples: {waits} ({100 * waits / max(total, 1):.0f}%) of threads waiting (for an answer,"
        f" on a queue or lock), {imports} ({100 * imports / max(total, 1):.0f}%) importing,"
        f" {bare} ({100 * bare / max(total, 1):.0f}%) with no Python frame (the interpreter starting or"
        f" ending), {working} at work; shares below are of the samples at work.",
        "self time by function:",
    ]
    rows += [f"  {100 * n / working:5.1f}%  {name}" for name, n in own.most_common(top)]
    rows.append("inclusive time by package (a sample counts once for each package on its stack):")
    rows += [f"  {100 * n / working:5.1f}%  {name}" for name, n in packages.most_common(top)]
    rows.append("inclusive time by function:")
    rows += [f"  {100 * n / working:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(rows)


def totals(counts: Path) -> str:
    """The counters of every `perf stat -x ,` output in `counts`, added up (its lines: value, unit,
    event, ...; comments and empty lines skipped)."""
    summed = dict.fromkeys(COUNTED, 0.0)
    for line in counts.read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] in COUNTED and not line.startswith("#"):
            summed[fields[2]] += float(fields[0])
    cpu = summed["task-clock"] / 1000
    return (
        f"CPU {cpu:.3f} s, page faults {summed['page-faults']:.0f},"
        f" context switches {summed['context-switches']:.0f}"
    )


def _where(frame: str) -> str:
    return frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0]


def _short(frame: str) -> str:
    """`function (path/to/module.py:line)` -> `function (path/to/module.py)`."""
    return f"{frame.partition(' (')[0]} ({_where(frame)})"


def _package(frame: str) -> str:
    """The top-level package (or stdlib module) of a frame; py-spy names files relative to sys.path."""
    path = _where(frame)
    if path.startswith("<frozen "):
        return path.removeprefix("<frozen ").split(".")[0].rstrip(">")
    top = path.split("/", 1)[0]
    return top.removesuffix(".py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--members", type=int, default=1)
    parser.add_argument("--pipeline", choices=("ours_cold", "blog"), default="ours_cold")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--counters", action="store_true", help="perf stat's counts instead of samples")
    options = parser.parse_args()
    tool = "perf" if options.counters else str(PYSPY)
    if shutil.which(tool) is None:
        sys.exit(f"{tool} is missing: `make bench` builds the bench venv with py-spy; perf is the system's")
    spec = Spec(options.megabytes, options.members)
    kind = "counts" if options.counters else "profile"
    output = REPO / ".local" / f"bench-{kind}-{options.pipeline}-{spec.key}.txt"
    profile(spec, options.pipeline, output, counted if options.counters else sampled)
    print(totals(output) if options.counters else summarise(output, options.top))
    print(f"{'counts' if options.counters else 'collapsed stacks'} in {output.relative_to(REPO)}")


if __name__ == "__main__":
    main()
