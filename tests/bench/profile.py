"""Where a pipeline's CPU goes: one run under py-spy (every thread, native frames off), on loopback.

    .venv/bin/python -m tests.bench.profile [--megabytes 100] [--members 1] [--pipeline ours] [--top 25]

py-spy comes with the plotting venv (requirements-bench.txt; `make bench` builds it). The collapsed stacks
go to .local/bench-profile-<pipeline>-<archive>.txt; the table printed is self time by function and
time by package (a sample counts for every package on its stack once).
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


def summarise(collapsed: Path, top: int) -> str:
    """Self time per function and time per package from py-spy's collapsed stacks (`a;b;c count`)."""
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[_short(frames[-1])] += count
        for package in {_package(frame) for frame in frames}:
            packages[package] += count
    rows = [f"{total} samples; self time by function:"]
    rows += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    rows.append("time by package (inclusive):")
    rows += [f"  {100 * n / total:5.1f}%  {name}" for name, n in packages.most_common(top)]
    return "\n".join(rows)


def _short(frame: str) -> str:
    """`function (path/to/module.py:line)` -> `function (module.py)`."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.rstrip(')').rsplit(':', 1)[0]).name})"


def _package(frame: str) -> str:
    where = frame.partition(" (")[2]
    for marker in ("site-packages/", "/shared/", "/lib/python3.11/"):
        if marker in where:
            rest = where.split(marker, 1)[1]
            return (
                rest.split("/", 1)[0].split(".py")[0]
                if marker != "/lib/python3.11/"
                else f"stdlib {rest.split('/')[0].split('.py')[0]}"
            )
    return "other"


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
