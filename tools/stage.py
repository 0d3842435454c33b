"""Write a self-contained fn function folder per function, for `fn deploy` and `fn invoke`.

    python tools/stage.py .local/stage --prefix acme      # make stage PREFIX=acme

Each `<dest>/<name>/` holds func.yaml, func.py, a requirements.txt pinning every third-party
distribution the product needs at run time (versions from constraints.txt), and the fusion_extract
package vendored beside func.py: `fn deploy --app <prefix>` builds from the folder alone (fn cannot reach
code outside it). The three requirements files are identical.

Names follow Terraform's: the function `<prefix>-<name>` in the application `<prefix>` (var.name_prefix,
the same rule), so fn deploy updates the functions the topics, schedules and policies know. The folder
also holds a Dockerfile, which fn builds with (func.yaml `runtime: docker`), doing what the repository's
Dockerfile does: install the pinned requirements and prune the OCI SDK (prune_oci.py, copied beside it).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = ("submit", "poll", "transfer")
PACKAGE = REPO / "shared" / "fusion_extract"
PROJECT = REPO / "shared" / "pyproject.toml"
# Packaging tools that fdk and pbr declare; pip resolves them like any installer does, so they are
# not pinned (pip freeze, and so constraints.txt, leaves them out).
BOOTSTRAP = frozenset({"pip", "setuptools", "wheel"})
HEADER = "# Built by `make stage` from the repository; fn deploy builds this folder on its own.\n"
PREFIX = re.compile(r"^[a-z][a-z0-9-]{2,30}$")  # terraform/variables.tf, name_prefix
DEFAULT_PREFIX = "fusion-extract"
# What fn's own build does, and the repository's Dockerfile too: requirements into /python, the SDK pruned,
# every file readable by the functions' uid 1000, whatever the modes of the checkout that staged them.
DOCKERFILE = """\
# Built by `make stage`: fn builds this folder with it (func.yaml: runtime: docker). GENERIC_X86: amd64.
FROM --platform=linux/amd64 fnproject/python:3.11-dev AS build
WORKDIR /build
COPY requirements.txt prune_oci.py ./
RUN pip3 install --target /python/ --no-cache-dir -r requirements.txt \\
 && python3 prune_oci.py /python \\
 && chmod -R o+rX /python

FROM --platform=linux/amd64 fnproject/python:3.11
COPY --from=build /python /python
COPY func.py /function/func.py
COPY fusion_extract /function/fusion_extract
RUN chmod -R o+rX /function
ENV PYTHONPATH=/function:/python
ENTRYPOINT ["/python/bin/fdk", "/function/func.py", "handler"]
"""
# func.yaml fields a `runtime: docker` function leaves to its Dockerfile.
BUILT_BY_FN = ("runtime:", "build_image:", "run_image:", "entrypoint:")


def pins(constraints: Path) -> dict[str, str]:
    """Canonical name -> pinned version, from constraints.txt."""
    found: dict[str, str] = {}
    for line in constraints.read_text().splitlines():
        if matched := re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line.strip()):
            found[canonicalize_name(matched[1])] = matched[2]
    return found


def runtime_closure(roots: list[str]) -> list[str]:
    """Every distribution the roots need at run time (markers evaluated here, no extras), sorted."""
    seen: dict[str, str] = {}
    queue = list(roots)
    while queue:
        requirement = Requirement(queue.pop())
        name = canonicalize_name(requirement.name)
        if name in seen or name in BOOTSTRAP:
            continue
        distribution = metadata.distribution(requirement.name)
        seen[name] = distribution.metadata["Name"]
        for raw in distribution.requires or []:
            child = Requirement(raw)
            if child.marker is None or child.marker.evaluate({"extra": ""}):
                queue.append(raw)
    return sorted(seen.values(), key=str.lower)


def requirements(constraints: Path) -> str:
    """The pinned requirements.txt text."""
    dependencies = re.search(r"dependencies = \[(.*?)\]", PROJECT.read_text(), re.S)
    roots = re.findall(r'^\s*"([^"]+)"', dependencies[1] if dependencies else "", re.M)
    pinned = pins(constraints)
    lines = []
    for name in runtime_closure(roots):
        version = pinned.get(canonicalize_name(name))
        if version is None:
            raise SystemExit(f"{name} is needed at run time but not pinned in {constraints.name}")
        lines.append(f"{name}=={version}")
    header = (
        "# Every third-party distribution the functions need at run time, pinned as in constraints.txt.\n"
    )
    return header + "\n".join(lines) + "\n"


def func_yaml(source: str, name: str, prefix: str) -> str:
    """The staged func.yaml: the function's own, named as Terraform names it, built by its Dockerfile."""
    kept = []
    for line in source.splitlines(keepends=True):
        if line.startswith("#") or line.startswith(BUILT_BY_FN):
            continue
        if line.startswith("name:"):
            line = f"name: {prefix}-{name}\n"
        kept.append(line)
        if line.startswith("version:"):
            kept.append("runtime: docker\n")
    return HEADER + "".join(kept)


def stage(
    dest: Path, constraints: Path = REPO / "constraints.txt", prefix: str = DEFAULT_PREFIX
) -> list[Path]:
    """Write one folder per function under dest; return them."""
    if not PREFIX.match(prefix):
        raise SystemExit(
            f"prefix {prefix!r} must be 3-31 lower-case letters, digits or hyphens, starting with a letter "
            "(Terraform's name_prefix)"
        )
    text = requirements(constraints)
    folders = []
    for name in FUNCTIONS:
        folder = dest / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        source = REPO / "functions" / name
        folder.joinpath("func.yaml").write_text(
            func_yaml(source.joinpath("func.yaml").read_text(), name, prefix)
        )
        shutil.copy2(source / "func.py", folder / "func.py")
        folder.joinpath("requirements.txt").write_text(text)
        folder.joinpath("Dockerfile").write_text(DOCKERFILE)
        shutil.copy2(REPO / "tools" / "prune_oci.py", folder / "prune_oci.py")
        # Not the operator's CLI (the [cli] extra): no function imports it.
        skip = shutil.ignore_patterns("__pycache__", "cli")
        shutil.copytree(PACKAGE, folder / "fusion_extract", ignore=skip)
        folders.append(folder)
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stage self-contained fn function folders.")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="Terraform's name_prefix (fusion-extract)")
    args = parser.parse_args(argv)
    for folder in stage(args.dest, prefix=args.prefix):
        print(folder)
    print(f"fn deploy --app {args.prefix}   (from each folder)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
