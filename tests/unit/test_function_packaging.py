"""Each function folder declares what the platform needs, in step with the one configuration table."""

from pathlib import Path

import pytest
import yaml

from fusion_extract.config import KEYS

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@pytest.mark.parametrize("name", ["submit", "poll", "transfer"])
def test_func_yaml_expects_exactly_the_config_keys(name):
    spec = yaml.safe_load((FUNCTIONS / name / "func.yaml").read_text())

    declared = {entry["name"]: entry["required"] for entry in spec["expects"]["config"]}

    assert declared == {key.env: key.default is None and not key.optional for key in KEYS}
    assert spec["name"] == f"fusion-extract-{name}"
    assert spec["timeout"] <= 300 and spec["memory"] in (128, 256, 512, 1024, 2048, 3072)
    assert (FUNCTIONS / name / "func.py").read_text().count("\n") < 20  # a thin adapter
