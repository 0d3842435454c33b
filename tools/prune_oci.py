"""Remove the OCI SDK service packages the functions never import, to shrink the function image.

    python prune_oci.py /python            # the folder that holds oci/ (pip install --target, site-packages)

The `oci` distribution installs about 500 MB, nearly all of it one subpackage per OCI service, loaded
lazily by `oci.__getattr__`. The functions use Object Storage, Secrets, Notifications, Functions and
Monitoring plus the SDK core (auth, signer, retry, config, _vendor, ...). Every service package named in
`oci.__all__` that is neither kept nor imported by a kept module is deleted; the closure of imports is
followed, so a kept package that needs another service keeps it. Standard library only: it runs in the
image's build stage.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import sys
from pathlib import Path

KEEP = frozenset({"object_storage", "secrets", "ons", "functions", "monitoring"})
# Not scanned: oci/__init__.py names every service (the eager-import fallback, used only when
# OCI_PYTHON_SDK_LAZY_IMPORTS_DISABLED=true, which the functions never set); oci/addons (agent
# toolkits that nothing imports) is removed with the unused services.
REGISTRY, ADDONS = "__init__.py", "addons"
SERVICE_LIST = re.compile(r"__all__ = \[(.*?)\]", re.S)


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def services(oci: Path) -> set[str]:
    """Service subpackages: the folders named in oci.__all__, less the core ones oci/__init__.py imports
    at module level (auth, pagination, retry, ...)."""
    init = (oci / REGISTRY).read_text()
    found = SERVICE_LIST.search(init)
    if not found:
        raise SystemExit(f"{oci}/__init__.py has no __all__ list: the SDK's layout changed")
    names = set(re.findall(r'"([a-z_0-9]+)"', found.group(1)))
    core = {
        alias.name
        for node in ast.parse(init).body
        if isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module
        for alias in node.names
    }
    return {name for name in names - core if (oci / name / "__init__.py").is_file()}


def imported_packages(file: Path, oci: Path) -> set[str]:
    """Top-level oci subpackages a module imports or reaches as `oci.<name>.` in code (not in comments
    or docstrings)."""
    package = ["oci", *file.relative_to(oci).parent.parts]
    try:
        tree = ast.parse(file.read_bytes())
    except (SyntaxError, ValueError):
        return set()
    modules: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = [*base, *(node.module.split(".") if node.module else [])]
            modules += [".".join(target)] + [".".join([*target, alias.name]) for alias in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "oci":
            modules.append(f"oci.{node.attr}")
    return {name.split(".")[1] for name in modules if name.startswith("oci.") and name.count(".") >= 1}


def needed(oci: Path, all_services: set[str], keep: frozenset[str] = KEEP) -> set[str]:
    """The kept services plus every service that the SDK core or a kept service imports."""
    wanted = set(keep) & all_services
    core = [p for p in oci.iterdir() if p.name not in all_services | {REGISTRY, ADDONS}]
    queue = core + [oci / name for name in wanted]
    seen: set[Path] = set()
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        files = [path] if path.suffix == ".py" else list(path.rglob("*.py")) if path.is_dir() else []
        for file in files:
            for name in imported_packages(file, oci) & all_services:
                if name not in wanted:
                    wanted.add(name)
                    queue.append(oci / name)
    return wanted


def prune(root: Path, keep: frozenset[str] = KEEP) -> tuple[int, int, list[str]]:
    """Delete unused service packages under root/oci; return (bytes before, bytes after, removed)."""
    oci = root / "oci"
    if not (oci / "__init__.py").is_file():
        raise SystemExit(f"{oci} is not an installed oci package")
    before = _folder_size(oci)
    all_services = services(oci)
    missing = keep - all_services
    if missing:
        raise SystemExit(f"kept services not found in this SDK: {', '.join(sorted(missing))}")
    removed = sorted(all_services - needed(oci, all_services, keep)) + [ADDONS] * (oci / ADDONS).is_dir()
    for name in removed:
        shutil.rmtree(oci / name)
    return before, _folder_size(oci), removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Remove unused OCI SDK service packages.")
    parser.add_argument("root", type=Path, help="the folder that holds the oci package")
    args = parser.parse_args(argv)
    before, after, removed = prune(args.root)
    mib = 1024 * 1024
    print(f"oci: {before / mib:.0f} MiB -> {after / mib:.0f} MiB ({len(removed)} service packages removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
