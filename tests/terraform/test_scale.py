"""A deployment of 500 extracts passes the offline checks: Terraform itself evaluates every variable's
validation, the locals and the preconditions (tests/terraform/evaluate.py), and the function configuration
stays inside OCI's 4 KB however long the catalog, which travels as an object of the bucket instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
import pytest

from fusion_extract.catalog import parse_catalog
from tests.terraform.conftest import TERRAFORM
from tests.terraform.evaluate import TerraformRefused, evaluate, terraform_binary

pytestmark = pytest.mark.skipif(terraform_binary() is None, reason="needs terraform >= 1.3 on PATH")


def example_inputs(**changes: Any) -> dict[str, Any]:
    """examples/example.tfvars, as a person fills it in, with some inputs changed."""
    with (TERRAFORM / "examples" / "example.tfvars").open() as handle:
        example = hcl2.load(handle, serialization_options=hcl2.SerializationOptions(strip_string_quotes=True))
    return {**{k: v for k, v in example.items() if not k.startswith("__")}, **changes}


def extracts(count: int) -> dict[str, dict[str, Any]]:
    """`count` extracts with names of 24 characters, every tenth with its own landing template, every fourth
    expected within 1.5 hours."""
    found: dict[str, dict[str, Any]] = {}
    for index in range(count):
        entry: dict[str, Any] = {
            "mode": "incremental",
            "recurrence": f"FREQ=DAILY;BYHOUR={index % 24};BYMINUTE=0",
        }
        if index % 10 == 0:
            entry["landing_template"] = "{prefix}/{extract}/{date}/{job_id}"
        if index % 4 == 0:
            entry["expected_within_hours"] = 1.5
        found[f"Finance Extract No {index:05d}"] = entry
    return found


def test_five_hundred_extracts_pass_every_check_and_the_configuration_fits(tmp_path: Path) -> None:
    # Given the example inputs with 500 extracts
    inputs = example_inputs(extracts=extracts(500))

    # When Terraform evaluates the variables, the locals and the preconditions
    outputs = evaluate(TERRAFORM, inputs, tmp_path)

    # Then nothing refused them; the configuration fits 4 KB, counted as the precondition counts it
    config = outputs["function_config"]
    octets = sum(len(key.encode()) + len(value.encode()) for key, value in config.items())
    assert outputs["function_config_octets"] >= octets  # each created OCID counted at its longest
    assert outputs["function_config_octets"] <= outputs["config_limit_octets"] == 4096
    # And the catalog is not in it: an object named there, which the product reads back whole
    assert "EXTRACT_CATALOG" not in config and config["EXTRACT_CATALOG_OBJECT"]
    assert outputs["catalog_object"].startswith("_catalog/extracts-")
    catalog = parse_catalog(outputs["extract_catalog"])
    assert len(catalog) == 500 and len(catalog.templates()) == 50
    # And each extract's service level travels in it, Terraform's default where none was given
    hours = [entry.expected_within_hours for entry in catalog]
    assert (hours.count(1.5), hours.count(4)) == (125, 375)
    # And IAM does not grow with the catalog; every enabled extract is watched by a late alarm
    assert len(outputs["scheduler_statements"]) == 1
    assert len(outputs["watched_extracts"]) == 500


def test_configuration_past_4_kb_is_refused_at_plan_naming_the_limit(tmp_path: Path) -> None:
    # Given inputs whose configuration would pass 4 KB (a Fusion URL of 4,000 characters)
    inputs = example_inputs(fusion_base_url="https://" + "f" * 4000 + ".example.com")

    # When Terraform evaluates them, Then the precondition refuses them with its message
    with pytest.raises(TerraformRefused, match=r"OCI allows 4096"):
        evaluate(TERRAFORM, inputs, tmp_path)


def test_multibyte_values_count_in_utf8_octets(tmp_path: Path) -> None:
    # Given a landing template of 1,300 three-octet characters: under 4,096 characters, over in octets
    inputs = example_inputs(landing_template="{prefix}/" + "€" * 1300 + "/{job_id}")

    # When Terraform evaluates them, Then it is refused: the limit is in octets, not characters
    with pytest.raises(TerraformRefused, match=r"OCI allows 4096"):
        evaluate(TERRAFORM, inputs, tmp_path)


def test_a_refused_validation_carries_terraforms_message(tmp_path: Path) -> None:
    # Given an extract with a mode Terraform does not know
    inputs = example_inputs(extracts={"Sales": {"mode": "weekly", "recurrence": "0 2 * * *"}})

    # When Terraform evaluates them, Then the variable's own validation message comes back
    with pytest.raises(TerraformRefused, match=r"mode must be full or incremental"):
        evaluate(TERRAFORM, inputs, tmp_path)


def test_a_state_prefix_that_would_expire_the_catalog_is_refused(tmp_path: Path) -> None:
    # Given the ledger's prefix (whose lifecycle rule deletes what sits unchanged) set to the catalog's
    inputs = example_inputs(state_prefix="_catalog")

    # When Terraform evaluates them, Then the catalog object's precondition refuses them
    with pytest.raises(TerraformRefused, match=r"_catalog/ holds the extract catalog"):
        evaluate(TERRAFORM, inputs, tmp_path)
