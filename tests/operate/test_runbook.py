"""The runbook's `oci` commands (docs/operating.md: Runbook), run with the real OCI CLI against the emulators.

The OCI CLI lives in its own environment (`.local/oci-cli`, `make oci-cli`): it pins its own `oci` SDK.
Each command is the runbook's, with `--config-file` and `--endpoint` aimed at the emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.chain import REPO
from tests.operate.conftest import Operated

OCI = REPO / ".local" / "oci-cli" / "bin" / "oci"
pytestmark = pytest.mark.skipif(
    not OCI.exists() and os.environ.get("CI") is None, reason="the OCI CLI is not installed: make oci-cli"
)


def oci_cli(operated: Operated, *args: str) -> Any:
    """Run `oci <args>` against the emulator; its JSON output (or text), failing on a non-zero exit."""
    config = operated.doc["config"]
    command = [
        str(OCI),
        "--config-file",
        config["OCI_CONFIG_FILE"],
        "--endpoint",
        operated.doc["oci"]["endpoint"],
        *args,
    ]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(Path(config["OCI_CONFIG_FILE"]).parent),
        "OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING": "True",
    }
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
    try:
        return json.loads(done.stdout)
    except ValueError:
        return done.stdout


@pytest.fixture(scope="module")
def landed(operated: Operated) -> dict[str, Any]:
    operated.cli_json("submit", "Sales", "--mode", "full")
    run = operated.chain.wait_for_final_run("Sales")
    assert run.state.value == "LANDED"
    return {
        "run_id": run.run_id,
        "folder": operated.chain.env and f"landing/Sales/dt={run.created_at:%Y-%m-%d}/run={run.job_id}",
    }


def test_runbook_list_landed_objects_of_a_run(operated: Operated, landed: dict[str, Any]) -> None:
    # When the runbook's listing of a run folder runs
    listing = oci_cli(
        operated, "os", "object", "list", "--namespace", "emuns", "--bucket-name", "fusion-landing",
        "--prefix", landed["folder"] + "/", "--all",
    )  # fmt: skip

    # Then it lists the members, _manifest.json and _SUCCESS
    names = [item["name"].rsplit("/", 1)[-1] for item in listing["data"]]
    assert "_manifest.json" in names and "_SUCCESS" in names and len(names) > 2


def test_runbook_get_a_landed_object(operated: Operated, landed: dict[str, Any], tmp_path: Path) -> None:
    # When the runbook's download of a run's manifest runs
    target = tmp_path / "manifest.json"
    oci_cli(
        operated, "os", "object", "get", "--namespace", "emuns", "--bucket-name", "fusion-landing",
        "--name", landed["folder"] + "/_manifest.json", "--file", str(target),
    )  # fmt: skip

    # Then the file is the run's manifest
    assert json.loads(target.read_text())["run_id"] == landed["run_id"]


def test_runbook_read_a_run_document(operated: Operated, landed: dict[str, Any]) -> None:
    # When the runbook's read of the run's ledger document runs (to stdout)
    text = oci_cli(
        operated, "os", "object", "get", "--namespace", "emuns", "--bucket-name", "fusion-landing",
        "--name", f"_state/runs/{landed['run_id']}.json", "--file", "-",
    )  # fmt: skip

    # Then it is the run's document
    assert text["run_id"] == landed["run_id"] and text["state"] == "LANDED"


def test_runbook_publish_a_rerun_to_the_rerun_topic(operated: Operated) -> None:
    # Given a Broken run that FAILED
    finals = sum(1 for run in operated.chain.runs("Broken") if run.state.final)
    operated.cli_json("submit", "Broken", "--mode", "full")
    failed = operated.chain.wait_for_final_run("Broken", count=finals + 1)
    assert failed.state.value == "FAILED"

    # When the runbook's publish of a rerun message to the rerun topic runs
    body = json.dumps({"kind": "rerun", "run_id": failed.run_id})
    answer = oci_cli(
        operated, "ons", "message", "publish", "--topic-id", operated.doc["topics"]["rerun"], "--body", body,
        "--title", "rerun",
    )  # fmt: skip

    # Then Notifications accepted it and submit started a new run linked to the failed one
    assert answer["data"]["message-id"]
    operated.chain.wait_for_final_run("Broken", count=finals + 2)
    assert any(r.rerun_of == failed.run_id for r in operated.chain.runs("Broken"))


def test_runbook_invoke_a_function(operated: Operated) -> None:
    # When the runbook's `oci fn function invoke` runs (GetFunction first, then the invoke endpoint)
    out = oci_cli(
        operated, "fn", "function", "invoke", "--function-id", operated.doc["functions"]["poll"],
        "--file", "-", "--body", '{"kind": "sweep"}',
    )  # fmt: skip

    # Then the function ran and answered its outcome
    assert out["outcome"] == "swept"


def test_readme_shows_oci_aimed_at_the_emulator_with_flags_that_work(
    operated: Operated, landed: dict[str, Any]
) -> None:
    # Given README's `oci` command for the emulator, with make emulator's paths replaced by this chain's
    readme = (REPO / "README.md").read_text()
    block = readme.split("the namespace is `emuns`", 1)[1]
    command = block.split("```\n", 2)[1]
    for written, here in (
        (".local/oci-cli/bin/oci", str(OCI)),
        (".local/emulator/oci/config", operated.doc["config"]["OCI_CONFIG_FILE"]),
        (".local/endpoints.json", str(operated.endpoints)),
        (".venv/bin/python", sys.executable),
    ):
        assert written in command, written
        command = command.replace(written, here)

    # When it runs in a shell, Then it lists the ledger's run documents
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    names = [item["name"] for item in json.loads(done.stdout)["data"]]
    assert f"_state/runs/{landed['run_id']}.json" in names
