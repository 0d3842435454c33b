"""Files generated from the product's own tables: README's configuration table and each func.yaml's
`expects.config` from the configuration keys (`fusion_extract.config.KEYS`), and docs/states.md from the
state machines (`fusion_extract.chain.ledger.machine`). `make docs` writes them;
tests/unit/test_generated_files.py fails when one is out of step.

    python -m tests.generated          # rewrite the files
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from fusion_extract.chain.ledger.machine import MACHINES, diagram
from fusion_extract.config import KEYS

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
STATES = REPO / "docs" / "states.md"
FUNCTIONS = ("submit", "poll", "transfer")
BEGIN = "<!-- configuration table: generated from fusion_extract.config by `make docs` -->"
END = "<!-- end of configuration table -->"
_HEADER_KEYS = ("schema_version", "name", "version", "runtime", "build_image", "run_image", "entrypoint")


def configuration_table() -> str:
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for key in KEYS:
        default = "required" if key.required else "unset" if key.default is None else f"`{key.default}`"
        rows.append(f"| `{key.env}` | {default} | {key.doc} |")
    return "\n".join(rows)


def readme(text: str) -> str:
    """README with its configuration table regenerated between the markers."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"README.md lacks the markers {BEGIN!r} ... {END!r}")
    return pattern.sub(lambda _: f"{BEGIN}\n{configuration_table()}\n{END}", text)


def func_yaml(text: str) -> str:
    """A func.yaml with its leading comments, header and sizing kept and `expects.config` regenerated."""
    spec = yaml.safe_load(text)
    comments = [line for line in text.splitlines() if line.startswith("#")]
    lines = [*comments, *(f"{name}: {spec[name]}" for name in _HEADER_KEYS)]
    lines += [f"memory: {spec['memory']}", f"timeout: {spec['timeout']}", "expects:", "  config:"]
    for key in KEYS:
        lines += [f"    - name: {key.env}", f"      required: {str(key.required).lower()}"]
    return "\n".join(lines) + "\n"


def states() -> str:
    """docs/states.md: each state machine of the ledger, drawn from its table."""
    parts = [
        "# State machines",
        "",
        "Generated from `shared/fusion_extract/chain/ledger/machine.py` by `make docs`;",
        "a test keeps it in step.",
        "Every change of a run's, a file's or a unit's state is one of these moves, saved with one",
        "conditional write of its record (the ledger refuses any other). A state no arrow leaves is final.",
    ]
    for machine in MACHINES:
        parts += ["", f"## {machine.name}", "", "```mermaid", diagram(machine), "```"]
    return "\n".join(parts) + "\n"


def targets() -> dict[Path, str]:
    """Each generated file and the content it should have."""
    wanted = {README: readme(README.read_text()), STATES: states()}
    for name in FUNCTIONS:
        path = REPO / "functions" / name / "func.yaml"
        wanted[path] = func_yaml(path.read_text())
    return wanted


def main() -> None:
    for path, content in targets().items():
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
            print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
