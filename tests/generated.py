"""Files generated from the product's own tables, so that no table describing code is written by hand:

- docs/configuration.md: the configuration keys (`fusion_extract.config.KEYS`), which each func.yaml's
  `expects.config` lists too;
- docs/messages.md: every message kind and its fields (`fusion_extract.chain.messages.KINDS`) and every
  outcome a step answers (`fusion_extract.chain.outcomes.MEANINGS`);
- docs/cli.md: the CLI's exit codes (`fusion_extract.cli.exits.MEANINGS`);
- docs/operating.md: every alert event, what it means and the advice its body carries
  (`fusion_extract.chain.alerts`, rendered for sample alerts);
- docs/states.md, whole: the state machines (`fusion_extract.chain.ledger.machine`).

A table sits between two markers in its page (`<!-- NAME: generated ... -->`, `<!-- end of NAME -->`), so the
prose around it is written by hand. `make docs` writes them; tests/unit/test_generated_files.py fails when
one is out of step.

    python -m tests.generated          # rewrite the files
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import yaml

from fusion_extract.chain import alerts
from fusion_extract.chain.ledger.machine import MACHINES, diagram
from fusion_extract.chain.messages import KINDS
from fusion_extract.chain.outcomes import Result
from fusion_extract.cli.exits import Exit
from fusion_extract.config import KEYS

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
STATES = DOCS / "states.md"
FUNCTIONS = ("submit", "poll", "transfer")
_HEADER_KEYS = ("schema_version", "name", "version", "runtime", "build_image", "run_image", "entrypoint")


def configuration_table() -> str:
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for key in KEYS:
        default = "required" if key.required else "unset" if key.default is None else f"`{key.default}`"
        rows.append(f"| `{key.env}` | {default} | {key.doc} |")
    return "\n".join(rows)


def message_table() -> str:
    rows = ["| kind | to | what it does | sent by |", "|---|---|---|---|"]
    rows += [f"| `{kind.kind}` | {kind.to} | {kind.meaning} | {kind.sent_by} |" for kind in KINDS]
    return "\n".join(rows)


def field_table() -> str:
    rows = ["| kind | field | required | JSON | meaning |", "|---|---|---|---|---|"]
    for kind in KINDS:
        for field in kind.fields:
            required = "yes" if field.required else "no"
            rows.append(f"| `{kind.kind}` | `{field.name}` | {required} | {field.form} | {field.meaning} |")
    return "\n".join(rows)


def outcome_table() -> str:
    rows = ["| outcome | meaning |", "|---|---|"]
    rows += [f"| `{result.value}` | {result.meaning} |" for result in Result]
    return "\n".join(rows)


def exit_table() -> str:
    rows = ["| code | meaning |", "|---|---|"]
    rows += [f"| `{int(code)}` | {code.meaning} |" for code in Exit]
    return "\n".join(rows)


# The alerts the table renders: one per event, several where the cause changes the advice.
_SAMPLE = {"extract": "EXTRACT", "run_id": "RUN", "job_id": "JOB", "mode": "full"}
_CASES: dict[str, list[tuple[str, dict[str, object]]]] = {
    "failed": [("", {}), ("a re-landing run", {"reland": True})],
    "timed_out": [
        ("no job", {"job_id": None, "reason": "submit never succeeded"}),
        ("the job still running", {"reason": "job still running"}),
        ("files not all landed", {"reason": "transfer not done"}),
    ],
    "unreadable_document": [
        ("a run's document, with a job", {"document_kind": "run", "quarantined": "Q", "bucket": "B"}),
        ("a file's document", {"document_kind": "file", "quarantined": "Q", "bucket": "B"}),
        ("no extract known", {"extract": None, "run_id": None, "quarantined": "Q", "bucket": "B"}),
    ],
}


def alert_table() -> str:
    """Each event, what it means, and the advice its alert carries, as rendered for sample alerts (EXTRACT,
    RUN, JOB stand for the alert's own values)."""
    rows = ["| event | what it means | what the alert advises |", "|---|---|---|"]
    for event, (meaning, _) in alerts.MEANING.items():
        advice = []
        for case, values in _CASES.get(event, [("", {})]):
            given = alerts.advise({**_SAMPLE, "event": event, **values})
            commands = "; ".join(f"`{command}`" for command in given.commands)
            advice.append(
                " ".join(part for part in (f"*{case}:*" if case else "", given.action, commands) if part)
            )
        rows.append(f"| `{event}` | {meaning} | {'<br>'.join(advice)} |")
    return "\n".join(rows)


# Each page, and the tables it holds: name -> (where the table comes from, the table).
TABLES: dict[Path, dict[str, tuple[str, Callable[[], str]]]] = {
    DOCS / "configuration.md": {"configuration table": ("fusion_extract/config.py", configuration_table)},
    DOCS / "messages.md": {
        "message table": ("fusion_extract/chain/messages.py KINDS", message_table),
        "field table": ("fusion_extract/chain/messages.py KINDS", field_table),
        "outcome table": ("fusion_extract/chain/outcomes.py", outcome_table),
    },
    DOCS / "cli.md": {"exit code table": ("fusion_extract/cli/exits.py", exit_table)},
    DOCS / "operating.md": {"alert table": ("fusion_extract/chain/alerts.py", alert_table)},
}


def markers(name: str, source: str) -> tuple[str, str]:
    return f"<!-- {name}: generated from {source} by `make docs` -->", f"<!-- end of {name} -->"


def embed(text: str, name: str, source: str, table: str) -> str:
    """A page with one of its tables regenerated between its markers."""
    begin, end = markers(name, source)
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if len(pattern.findall(text)) != 1:
        raise ValueError(f"the page must hold the markers {begin!r} ... {end!r} once")
    return pattern.sub(lambda _: f"{begin}\n{table}\n{end}", text)


def page(path: Path) -> str:
    """A page of TABLES with every table it holds regenerated."""
    text = path.read_text()
    for name, (source, table) in TABLES[path].items():
        text = embed(text, name, source, table())
    return text


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
    wanted = {path: page(path) for path in TABLES}
    wanted[STATES] = states()
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
