"""`fusion-extract configure`: a profile from `terraform output -json`, then every command with --profile.

The sample output is what Terraform prints for the local chain: `function_config` is the configuration the
functions run with (without the emulator's endpoints: Terraform leaves those to the region), the function
OCIDs and invoke endpoint, the compartment and the region. `--endpoint` aims the profile's OCI services at
the emulator, as the `oci` CLI's own `--endpoint` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from fusion_extract.cli.configure import OUTPUTS, PROFILES_ENV
from fusion_extract.cli.main import cli
from tests.emulators.chain import FUNCTIONS
from tests.operate.conftest import Operated

REGION = "eu-frankfurt-1"


def terraform_output(operated: Operated) -> dict[str, Any]:
    """`terraform output -json` of a deployment that is the local chain."""
    env = operated.chain.env
    values: dict[str, Any] = {
        "function_config": {k: v for k, v in env.items() if not k.startswith("OCI_")},
        "function_ids": operated.doc["functions"],
        "invoke_endpoints": {name: operated.doc["oci"]["endpoint"] for name in FUNCTIONS},
        "compartment_id": operated.doc["compartment"],
        "region": REGION,
        "bucket": {"name": env["BUCKET_NAME"], "namespace": env["BUCKET_NAMESPACE"]},
        "topic_ids": operated.doc["topics"],
        "log_group_id": operated.doc["logging"]["log_group_id"],
        "invoke_log_id": operated.doc["logging"]["log_id"],
    }
    return {name: {"sensitive": False, "type": "string", "value": value} for name, value in values.items()}


def fusion_extract(tmp_path: Path, *args: str, stdin: str | None = None) -> Result:
    """The CLI with its profiles in tmp_path, and no endpoints file."""
    env = {PROFILES_ENV: str(tmp_path / "profiles"), "FUSION_EXTRACT_PROFILE": None}
    return CliRunner().invoke(cli, list(args), input=stdin, env=env)


@pytest.fixture
def sample(operated: Operated, tmp_path: Path) -> Path:
    path = tmp_path / "terraform-output.json"
    path.write_text(json.dumps(terraform_output(operated)))
    return path


def configured(operated: Operated, tmp_path: Path, sample: Path, *extra: str) -> Result:
    oci_config = operated.doc["config"]["OCI_CONFIG_FILE"]
    endpoint = operated.doc["oci"]["endpoint"]
    return fusion_extract(
        tmp_path, "configure", "emu", "--from", str(sample), "--oci-config-file", oci_config,
        "--endpoint", endpoint, *extra,
    )  # fmt: skip


def test_configure_from_terraform_output_makes_a_profile_every_command_can_use(
    operated: Operated, tmp_path: Path, sample: Path
) -> None:
    # Given `terraform output -json` of the deployment, When configure makes profile emu from it
    made = configured(operated, tmp_path, sample)
    assert made.exit_code == 0, made.output
    assert "profile emu written" in made.output and "--profile emu doctor" in made.output

    # Then doctor, run with --profile emu only, passes every check
    doctor = fusion_extract(tmp_path, "--profile", "emu", "--json", "doctor")
    assert doctor.exit_code == 0, doctor.output
    assert json.loads(doctor.output)["ok"] is True
    # And a run submitted with it lands, and show finds it
    submitted = json.loads(
        fusion_extract(tmp_path, "--profile", "emu", "--json", "submit", "Sales", "--mode", "full").output
    )
    assert submitted["outcome"] == "submitted"
    operated.chain.wait_for_final_run("Sales")
    shown = json.loads(
        fusion_extract(tmp_path, "--profile", "emu", "--json", "show", submitted["run_id"]).output
    )
    assert shown["run"]["state"] == "LANDED"


def test_configure_reads_terraform_output_from_stdin(
    operated: Operated, tmp_path: Path, sample: Path
) -> None:
    oci_config = operated.doc["config"]["OCI_CONFIG_FILE"]
    made = fusion_extract(
        tmp_path, "configure", "piped", "--from", "-", "--oci-config-file", oci_config,
        "--endpoint", operated.doc["oci"]["endpoint"], stdin=sample.read_text(),
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    profile = json.loads((tmp_path / "profiles" / "piped.json").read_text())
    assert profile["functions"] == operated.doc["functions"] and profile["region"] == REGION


def test_configure_when_an_output_is_missing_names_it_and_writes_nothing(
    operated: Operated, tmp_path: Path, sample: Path
) -> None:
    # Given the output of an older terraform/ without function_config
    doc = json.loads(sample.read_text())
    del doc["function_config"]
    sample.write_text(json.dumps(doc))

    # Then configure refuses, naming the output, and writes no profile
    made = configured(operated, tmp_path, sample)
    assert made.exit_code == 3 and "lacks the output function_config" in made.output
    assert not (tmp_path / "profiles" / "emu.json").exists()


def test_configure_in_the_cloud_refuses_an_oci_profile_of_another_region(
    operated: Operated, tmp_path: Path, sample: Path
) -> None:
    # Given a deployment in another region than the OCI config profile signs in to
    oci_config = operated.doc["config"]["OCI_CONFIG_FILE"]
    doc = json.loads(sample.read_text())
    doc["region"]["value"] = "us-phoenix-1"
    sample.write_text(json.dumps(doc))
    made = fusion_extract(
        tmp_path, "configure", "prod", "--from", str(sample), "--oci-config-file", oci_config
    )

    # Then configure says so and what to pass
    assert made.exit_code == 3 and "the deployment is in us-phoenix-1" in made.output
    assert "--oci-profile" in made.output and not (tmp_path / "profiles" / "prod.json").exists()


def test_configure_in_the_cloud_accepts_an_oci_profile_of_the_deployment_region(
    operated: Operated, tmp_path: Path, sample: Path
) -> None:
    # Given the emulator's OCI config profile, which signs in to the deployment's region
    oci_config = operated.doc["config"]["OCI_CONFIG_FILE"]
    made = fusion_extract(
        tmp_path, "configure", "prod", "--from", str(sample), "--oci-config-file", oci_config
    )

    # Then the profile is made with the region's own endpoints (none set)
    assert made.exit_code == 0, made.output
    profile = json.loads((tmp_path / "profiles" / "prod.json").read_text())
    assert "OCI_OBJECTSTORAGE_ENDPOINT" not in profile["config"] and profile["oci"] == {}


def test_configure_keeps_an_existing_profile_unless_forced(
    operated: Operated, tmp_path: Path, sample: Path
) -> None:
    assert configured(operated, tmp_path, sample).exit_code == 0
    again = configured(operated, tmp_path, sample)
    assert again.exit_code == 3 and "--force" in again.output
    assert configured(operated, tmp_path, sample, "--force").exit_code == 0


def test_a_command_with_an_unknown_profile_says_how_to_make_it(tmp_path: Path) -> None:
    result = fusion_extract(tmp_path, "--profile", "nope", "runs")
    assert result.exit_code == 3 and "configure nope --from -" in result.output


def test_terraform_declares_every_output_configure_reads() -> None:
    declared = (Path(__file__).resolve().parents[2] / "terraform" / "outputs.tf").read_text()
    for name in OUTPUTS:
        assert f'output "{name}" {{' in declared, name
