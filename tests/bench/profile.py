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
from pathlib import Path
from typing import Any

from tests.bench.compare import Oci, child_environment, product_env
from tests.bench.datagen import Spec, build
from tests.bench.product import drive, finish_run, prepare_run
from tests.bench.servers import BUCKET, REPO, Child

PYSPY = REPO / ".local" / "bench-venv" / "bin" / "py-spy"


def profile(spec: Spec, pipeline: str, output: Path) -> None:
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
            print(json.dumps(_ours_cold(env, run_id, name, Path(oci.served["root"]) / BUCKET, output)))
        else:
            params = {**blog, "uncompressed": archive.uncompressed}
            command = [*_record(output), sys.executable, "-m", "tests.bench.pipelines", pipeline]
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


def _record(output: Path) -> tuple[str, ...]:
    return (str(PYSPY), "record", "--format", "raw", "--rate", "200", "--output", str(output), "--")


def _ours_cold(env: dict[str, str], run_id: str, name: str, bucket: Path, output: Path) -> dict[str, Any]:
    """The cold transfer, every instance under py-spy; their stacks added up into `output`. The figures
    of the run (slowed by the sampling) and each invocation's start-up."""
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
                wrapper=lambda: _record(parts / f"{next(numbers)}"),
            )
        stacks: Counter[str] = Counter()
        for part in parts.iterdir():
            for line in part.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                stacks[stack] += int(count)
        output.write_text("".join(f"{stack} {count}\n" for stack, count in stacks.items()))
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
    options = parser.parse_args()
    if not PYSPY.exists():
        sys.exit(f"{PYSPY} is missing: run `make bench` once (it builds the bench venv)")
    spec = Spec(options.megabytes, options.members)
    output = REPO / ".local" / f"bench-profile-{options.pipeline}-{spec.key}.txt"
    profile(spec, options.pipeline, output)
    print(summarise(output, options.top))
    print(f"collapsed stacks in {output.relative_to(REPO)}")


if __name__ == "__main__":
    main()
