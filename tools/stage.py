"""Write a self-contained fn function folder per function, for `fn deploy` and `fn invoke`.

    python tools/stage.py .local/stage          # make stage

Each `<dest>/<name>/` holds func.yaml, func.py, a requirements.txt pinning every third-party
distribution the product needs at run time (versions from constraints.txt), and the fusion_extract
package vendored beside func.py: `fn deploy --app <app>` builds from the folder alone (fn cannot reach
code outside it). The three requirements files are identical.
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


def stage(dest: Path, constraints: Path = REPO / "constraints.txt") -> list[Path]:
    """Write one folder per function under dest; return them."""
    text = requirements(constraints)
    folders = []
    for name in FUNCTIONS:
        folder = dest / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        source = REPO / "functions" / name
        spec = source.joinpath("func.yaml").read_text().splitlines(keepends=True)
        body = [line for line in spec if not line.startswith("#")]
        folder.joinpath("func.yaml").write_text(HEADER + "".join(body))
        shutil.copy2(source / "func.py", folder / "func.py")
        folder.joinpath("requirements.txt").write_text(text)
        # Not the operator's CLI (the [cli] extra): no function imports it.
        skip = shutil.ignore_patterns("__pycache__", "cli")
        shutil.copytree(PACKAGE, folder / "fusion_extract", ignore=skip)
        folders.append(folder)
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stage self-contained fn function folders.")
    parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    for folder in stage(args.dest):
        print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
