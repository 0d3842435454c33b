"""The function image's /python, made on any machine as the Dockerfile's build stage makes it on the image.

    python tools/image_wheels.py download .local/image-wheels          # make image-wheels (needs the index)
    python tools/image_wheels.py install DEST --wheels .local/image-wheels   # offline: DEST/python, pruned

The build stage runs `pip3 install --target /python -c constraints.txt -r requirements.txt` (requirements:
./shared) on Oracle Linux 8: glibc 2.28, CPython 3.11, so pip takes the wheels tagged for that glibc or an
older one. Here pip is told that platform: every manylinux tag from 2.28 down, as pip computes them on
the image (one `--platform manylinux_2_28_x86_64` alone is not the same: cffi ships only a manylinux2014
wheel), binary wheels only. `download` fills a cache with the third-party wheels; `install` builds the
fusion-extract wheel from ./shared as it is now and installs it with them, offline, then prunes the SDK
(tools/prune_oci.py), as the Dockerfile does.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints.txt"
SHARED = REPO / "shared"
GLIBC_MINOR = 28  # Oracle Linux 8
PYTHON = "3.11"
ARCH = "x86_64"
# The legacy names of three manylinux_2_<minor> tags, which pip accepts beside them.
LEGACY = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def platform_tags(glibc_minor: int = GLIBC_MINOR, arch: str = ARCH) -> list[str]:
    """The platform tags pip accepts on a glibc 2.<minor> machine, newest first."""
    tags = []
    for minor in range(glibc_minor, 4, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in LEGACY:
            tags.append(f"{LEGACY[minor]}_{arch}")
    return [*tags, f"linux_{arch}"]


def target_options() -> list[str]:
    """pip's options that make it resolve for the image rather than for this machine."""
    platforms = [option for tag in platform_tags() for option in ("--platform", tag)]
    abi = f"cp{PYTHON.replace('.', '')}"
    return [
        "--only-binary=:all:",
        "--implementation=cp",
        f"--python-version={PYTHON}",
        f"--abi={abi}",
        *platforms,
    ]


def _pip(*args: str | Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", *map(str, args)], check=True)


def build_shared(dest: Path) -> Path:
    """The fusion-extract wheel, built offline from a clean copy of ./shared (no build/ left in the tree)."""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "shared"
        skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
        shutil.copytree(SHARED, source, ignore=skip)
        _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", dest, source)
    return next(dest.glob("fusion_extract-*.whl"))


def download(wheels: Path) -> None:
    """Every third-party wheel the image's /python holds, into `wheels` (the index is needed)."""
    wheels.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        shared = build_shared(Path(scratch))
        _pip("download", "--quiet", *target_options(), "-c", CONSTRAINTS, "--dest", wheels, shared)
    for stale in wheels.glob("fusion_extract-*.whl"):
        stale.unlink()  # `install` builds it from the tree as it is then


def install(dest: Path, wheels: Path) -> Path:
    """DEST/python as the build stage's pip and prune leave /python: installed offline from `wheels`."""
    python = dest / "python"
    with tempfile.TemporaryDirectory() as scratch:
        shared = build_shared(Path(scratch))
        # --isolated: this machine's pip configuration (extra indexes, constraints) plays no part.
        # --no-compile: the image's pip writes .pyc files, but for all of oci before pruning (minutes here);
        # without them the same code is compiled in memory as it is imported.
        offline: list[str | Path] = ["--isolated", "--no-index", "--find-links", wheels, "--no-compile"]
        _pip("install", "--quiet", *offline, *target_options(), "-c", CONSTRAINTS, "--target", python, shared)
    subprocess.run(
        [sys.executable, REPO / "tools" / "prune_oci.py", python], check=True, stdout=subprocess.DEVNULL
    )
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The function image's wheel set, for glibc 2.28 and CPython 3.11."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("download").add_argument("wheels", type=Path)
    installing = commands.add_parser("install")
    installing.add_argument("dest", type=Path)
    installing.add_argument("--wheels", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "download":
        download(args.wheels)
    else:
        print(install(args.dest, args.wheels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
