"""The package's shape, checked from the modules' own imports: floors that depend only downward, no cycle.

floor 0  errors clock retry logging config models ports   the vocabulary every layer shares
floor 1  chain/  fusion/  oci/                              side by side; none imports another
floor 2  runtime function cli                               composition: they may import anything

Inside chain/, its phases are floors too, each using only those below it:

floor 0  messages alerts outcomes readiness policy budget   what every phase shares
floor 1  ledger/                                            the run ledger and its state machines
floor 2  transfer/                                          landing one file
floor 3  runs/                                              what steps do to a run besides their own work
floor 4  deps                                               what the steps need, as one argument
floor 5  steps/                                             submit, poll, transfer, sweep
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "fusion_extract"
FLOOR_1 = {"chain", "fusion", "oci"}
FLOOR_2 = {"runtime", "function", "cli"}
CHAIN_FLOORS = {"ledger": 1, "transfer": 2, "runs": 3, "deps": 4, "steps": 5}  # anything else: floor 0


def _group(module: str) -> str:
    """The part of the package a module belongs to: its first name under fusion_extract."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _floor(module: str) -> int:
    group = _group(module)
    return 2 if group in FLOOR_2 else 1 if group in FLOOR_1 else 0


def _chain_part(module: str) -> str | None:
    """The phase of chain/ a module belongs to (its first name under chain), None outside chain/."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "chain" else None


def _chain_floor(module: str) -> int:
    return CHAIN_FLOORS.get(_chain_part(module) or "", 0)


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every fusion_extract module this file imports (relative imports resolved)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return {name for name in found if name == "fusion_extract" or name.startswith("fusion_extract.")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    return {name: _imports(path, name) & set(modules) for name, path in modules.items()}


def test_architecture_no_module_imports_upward_or_sideways():
    # Given every module's imports
    graph = _graph()

    # When each import is compared with the floors
    wrong = [
        f"{module} (floor {_floor(module)}) imports {target} (floor {_floor(target)})"
        for module, targets in graph.items()
        for target in targets
        if _group(target) != _group(module)
        and target != "fusion_extract"
        and (_floor(target) > _floor(module) or (_floor(target) == _floor(module) == 1))
    ]

    # Then chain, fusion and oci depend only on the shared vocabulary below them
    assert wrong == []


def test_architecture_chain_phases_depend_only_downward():
    # Given the imports between modules of chain/
    graph = _graph()

    # When each is compared with the chain's floors
    wrong = [
        f"{module} (chain floor {_chain_floor(module)}) imports {target} (chain floor {_chain_floor(target)})"
        for module, targets in graph.items()
        for target in targets
        if _chain_part(module) is not None
        and _chain_part(target) is not None
        and _chain_part(target) != _chain_part(module)
        and (_chain_floor(target) > _chain_floor(module) or _chain_floor(target) == _chain_floor(module) > 0)
    ]

    # Then the ledger knows nothing of transfers, a transfer nothing of runs' endings, nothing of the steps
    assert wrong == []


def test_architecture_has_no_import_cycle():
    # Given the import graph
    graph = _graph()

    # When it is walked depth first
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if target not in graph or target == module:
                continue
            if state.get(target) == "open":
                cycles.append(
                    [*trail[trail.index(target) :], target] if target in trail else [module, target]
                )
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])

    # Then there is none
    assert cycles == []


def test_architecture_check_sees_an_upward_import(tmp_path):
    # Given a floor-0 module that imports the chain (what the rule exists to catch)
    fake = tmp_path / "fusion_extract" / "ports.py"
    fake.parent.mkdir()
    fake.write_text("from fusion_extract.chain.ledger.store import Ledger\n")

    # When its imports are read
    imported = _imports(fake, "fusion_extract.ports")

    # Then the import is found, and it goes upward
    assert "fusion_extract.chain.ledger.store" in imported
    assert _floor("fusion_extract.chain.ledger.store") > _floor("fusion_extract.ports")
