"""Every table that describes code is generated from it (`make docs`, tests/generated.py): the configuration
table and each func.yaml from the keys, the message, field and outcome tables, the exit codes, the state
machines. Each committed file must be what `make docs` would write."""

from pathlib import Path

import pytest
import yaml

from fusion_extract.chain.messages import KINDS
from fusion_extract.chain.outcomes import Result
from fusion_extract.cli.exits import Exit
from fusion_extract.config import KEYS
from tests import generated


@pytest.mark.parametrize("path", list(generated.targets()), ids=lambda p: str(p.relative_to(generated.REPO)))
def test_generated_file_is_in_step_with_the_code_it_describes(path: Path):
    # Given the file as committed, and what `make docs` would write
    wanted = generated.targets()[path]

    # Then they are the same (run `make docs` when this fails)
    assert path.read_text() == wanted


@pytest.mark.parametrize("name", generated.FUNCTIONS)
def test_func_yaml_declares_the_function_and_every_key(name):
    # Given a function folder's func.yaml
    folder = generated.REPO / "functions" / name
    spec = yaml.safe_load((folder / "func.yaml").read_text())

    # Then it names the function, sizes it within the platform's limits, and expects every key
    declared = {entry["name"]: entry["required"] for entry in spec["expects"]["config"]}
    assert declared == {key.env: key.required for key in KEYS}
    assert spec["name"] == f"fusion-extract-{name}"
    assert spec["timeout"] <= 300 and spec["memory"] in (128, 256, 512, 1024, 2048, 3072)
    assert (folder / "func.py").read_text().count("\n") < 20  # a thin adapter


def test_configuration_table_lists_every_key_once():
    # Given the configuration table
    table = generated.configuration_table()

    # Then each key has exactly one row
    assert all(table.count(f"| `{key.env}` |") == 1 for key in KEYS)


def test_message_tables_list_every_kind_and_every_field_with_its_kind():
    # Given the message and field tables, from the one declaration the parsers check against
    kinds, fields = generated.message_table(), generated.field_table()

    # Then each kind has one row, and each of its fields one row naming the kind (the transfer's unit too)
    assert all(kinds.count(f"| `{kind.kind}` |") == 1 for kind in KINDS)
    assert all(f"| `{kind.kind}` | `{field.name}` |" in fields for kind in KINDS for field in kind.fields)
    assert "| `transfer` | `unit` | no |" in fields


def test_outcome_and_exit_tables_list_every_member_with_its_meaning():
    # Given the outcome and exit code tables
    outcomes, exits = generated.outcome_table(), generated.exit_table()

    # Then every result and every exit code has its row
    assert all(f"| `{result.value}` | {result.meaning} |" in outcomes for result in Result)
    assert all(f"| `{int(code)}` | {code.meaning} |" in exits for code in Exit)


def test_a_page_without_its_markers_is_refused_not_rewritten_whole():
    # Given a page whose table markers were deleted by hand
    text = "# Configuration\n\nsome prose\n"

    # When its table is embedded, Then it is refused with the markers it needs
    with pytest.raises(ValueError, match="configuration table: generated"):
        generated.embed(text, "configuration table", "fusion_extract/config.py", "| t |")
