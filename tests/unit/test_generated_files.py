"""README's configuration table and each func.yaml are generated from the one table of keys (`make docs`)."""

from pathlib import Path

import pytest
import yaml

from fusion_extract.config import KEYS
from tests import generated


@pytest.mark.parametrize("path", list(generated.targets()), ids=lambda p: str(p.relative_to(generated.REPO)))
def test_generated_file_is_in_step_with_the_configuration_keys(path: Path):
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


def test_readme_table_lists_every_key_once():
    # Given README's configuration table
    table = generated.configuration_table()

    # Then each key has exactly one row
    assert all(table.count(f"| `{key.env}` |") == 1 for key in KEYS)
