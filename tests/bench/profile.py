"""Where a pipeline's CPU goes: one run under py-spy (every thread, native frames off), on loopback.

    .venv/bin/python -m tests.bench.profile [--megabytes 100] [--members 1] [--pipeline ours] [--top 25]

py-spy comes with the plotting venv (requirements-bench.txt; `make bench` builds it). The collapsed stacks
go to .local/bench-profile-<pipeline>-<archive>.txt; the table printed is self time by function and
time by package (a sample counts for every package on its stack once), over the samples of threads at
work: py-spy counts a thread blocked on a socket or a queue as active, so those are counted apart.
"""

from __future__ import annotations

import argparse
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
from tests.bench.product import finish_run, prepare_run
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
        choices: dict[str, dict[str, Any]] = {
            "ours": {"env": env, "run_id": run_id, "name": name},
            "blog": {
                "name": name,
                "url": url,
                "fusion": fusion,
                "oci": {**oci.served, "bucket": BUCKET},
                "tmp": str(workdir / "tmp"),
                "prefix": "blog/",
            },
        }
        params = {**choices[pipeline], "uncompressed": archive.uncompressed}
        command = [str(PYSPY), "record", "--format", "raw", "--rate", "200", "--output", str(output), "--"]
        command += [sys.executable, "-m", "tests.bench.pipelines", pipeline]
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
    stacks (`frame;frame;... count`), over the samples of threads at work: `waiting` ones and those taken
    while importing (mostly before the measured window) are counted apart."""
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = waits = imports = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
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
    working = max(total - waits - imports, 1)
    rows = [
        f"{total} samples: {waits} ({100 * waits / max(total, 1):.0f}%) of threads waiting (for an answer,"
        f" on a queue or lock), {imports} ({100 * imports / max(total, 1):.0f}%) importing,"
        f" {working} at work; shares below are of the samples at work.",
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
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--members", type=int, default=1)
    parser.add_argument("--pipeline", choices=("ours", "blog"), default="ours")
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
