"""`make stage PREFIX=<p>` names the functions as Terraform does with name_prefix = <p>, so
`fn deploy --app <p>` updates the very functions the topics, schedules and policies know; and the fn route
builds an image the way the repository's Dockerfile does, the OCI SDK pruned."""

from pathlib import Path

import pytest
import yaml

from tests.terraform import tfcheck
from tests.terraform.evaluate import evaluate, terraform_binary
from tests.terraform.test_scale import example_inputs
from tools.stage import DEFAULT_PREFIX, PREFIX, stage

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"


def staged_names(dest: Path, prefix: str) -> dict[str, str]:
    return {
        folder.name: yaml.safe_load((folder / "func.yaml").read_text())["name"]
        for folder in stage(dest, prefix=prefix)
    }


def test_stage_with_a_prefix_names_each_function_prefix_dash_name(tmp_path: Path) -> None:
    # Given the folders staged with the prefix acme, When their func.yaml names are read
    names = staged_names(tmp_path, "acme")

    # Then they are acme-submit, acme-poll, acme-transfer
    assert names == {"submit": "acme-submit", "poll": "acme-poll", "transfer": "acme-transfer"}


@pytest.mark.skipif(terraform_binary() is None, reason="needs terraform >= 1.3 on PATH")
def test_stage_names_are_the_names_terraform_gives_for_the_same_prefix(tmp_path: Path) -> None:
    # Given Terraform's function names for name_prefix = acme, as Terraform itself evaluates them
    outputs = evaluate(TERRAFORM, example_inputs(name_prefix="acme"), tmp_path / "tf")
    terraform = {name: spec["display_name"] for name, spec in outputs["functions"].items()}

    # When the folders are staged with the same prefix, Then the names agree function by function
    assert staged_names(tmp_path / "stage", "acme") == terraform


def test_stage_takes_exactly_the_prefixes_terraform_takes(tmp_path: Path) -> None:
    # Given Terraform's rule for name_prefix and its default
    variable = tfcheck.load(TERRAFORM).variables()["name_prefix"]

    # Then stage checks the same pattern, defaults to the same prefix, and refuses what Terraform refuses
    assert PREFIX.pattern.replace("\\", "\\\\") in variable["validation"][0]["condition"]
    assert variable["default"] == DEFAULT_PREFIX
    with pytest.raises(SystemExit, match="lower-case letters"):
        stage(tmp_path, prefix="Acme_Corp")


def test_staged_folder_builds_with_a_dockerfile_that_prunes_the_sdk(tmp_path: Path) -> None:
    # Given a staged folder
    folder = stage(tmp_path, prefix="acme")[0]
    spec = yaml.safe_load((folder / "func.yaml").read_text())
    dockerfile = (folder / "Dockerfile").read_text()

    # Then fn builds it with its Dockerfile (runtime: docker), not fn's own recipe, which does not prune
    assert spec["runtime"] == "docker" and not {"build_image", "run_image", "entrypoint"} & set(spec)
    # And that Dockerfile installs the pinned requirements and prunes them with the repository's script
    assert "pip3 install --target /python/ --no-cache-dir -r requirements.txt" in dockerfile
    assert "python3 prune_oci.py /python" in dockerfile
    assert (folder / "prune_oci.py").read_bytes() == (REPO / "tools" / "prune_oci.py").read_bytes()
    # And runs the function as the repository's image does, readable by the functions' uid 1000
    repository = (REPO / "Dockerfile").read_text()
    for line in (
        "ENV PYTHONPATH=/function:/python",
        'ENTRYPOINT ["/python/bin/fdk", "/function/func.py", "handler"]',
    ):
        assert line in dockerfile and line in repository
    assert "chmod -R o+rX /python" in dockerfile and "chmod -R o+rX /function" in dockerfile
    # And every file the Dockerfile copies is in the folder
    for copied in ("requirements.txt", "prune_oci.py", "func.py", "fusion_extract"):
        assert (folder / copied).exists(), copied
