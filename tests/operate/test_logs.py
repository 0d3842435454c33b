"""`fusion-extract logs RUN`: the run's log lines, from the emulators' files (--endpoints) and, through a
profile made by `configure`, from the invoke log in OCI Logging (the emulator's Logging Search, over HTTP
with the real SDK)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fusion_extract.chain.ledger.records import RunState
from fusion_extract.cli.logs import Search, folder_lines, window
from fusion_extract.config import Settings
from tests.operate.conftest import Operated
from tests.operate.test_configure import configured, fusion_extract, terraform_output


@pytest.fixture(scope="module")
def landed(operated: Operated) -> dict[str, Any]:
    """A Sales run, submitted through the CLI and followed to its end."""
    answer = operated.cli_json("submit", "Sales", "--mode", "full")
    assert answer["outcome"] in ("submitted", "already_running"), answer
    run = operated.chain.wait_for_final_run("Sales")
    assert run.state is RunState.LANDED
    return {"run_id": run.run_id, "job_id": run.job_id}


def test_logs_locally_prints_every_line_of_the_run_from_the_function_log_files(
    operated: Operated, landed: dict[str, Any]
) -> None:
    # Given a landed run, When its logs are asked for from the emulators
    shown = operated.cli_json("logs", landed["run_id"])

    # Then every line names it, oldest first, from each of the three functions, its landing among them
    lines = shown["lines"]
    assert lines and {line["run_id"] for line in lines} == {landed["run_id"]}
    assert [line["timestamp"] for line in lines] == sorted(line["timestamp"] for line in lines)
    assert {line["function"] for line in lines} == {"submit", "poll", "transfer"}
    assert {"job submitted", "file landed", "run landed"} <= {line["message"] for line in lines}
    # And as text, one line each after a heading
    text = operated.cli("logs", landed["run_id"])
    assert text.exit_code == 0 and f"{len(lines)} log lines" in text.output
    assert "file landed" in text.output and f"job_id={landed['job_id']}" in text.output


def test_logs_in_the_cloud_searches_the_invoke_log_with_the_sdk_and_finds_the_same_lines(
    operated: Operated, landed: dict[str, Any], tmp_path: Path
) -> None:
    # Given a profile made from `terraform output -json`, which names the invoke log and its log group
    sample = tmp_path / "terraform-output.json"
    sample.write_text(json.dumps(terraform_output(operated)))
    assert configured(operated, tmp_path, sample).exit_code == 0
    searches = len(operated.chain.logsearch.searches)

    # When the run's logs are asked for with it
    result = fusion_extract(tmp_path, "--profile", "emu", "--json", "logs", landed["run_id"])

    # Then the lines come from a Logging search of that log for the run, over the run's time window
    assert result.exit_code == 0, result.output
    [asked] = operated.chain.logsearch.searches[searches:]
    log = operated.doc["logging"]
    assert (
        f'search "{operated.doc["compartment"]}/{log["log_group_id"]}/{log["log_id"]}"'
        in asked["searchQuery"]
    )
    assert landed["run_id"] in asked["searchQuery"]
    # And they are the very lines the function log files hold for it
    folder = Path(operated.doc["logs"])
    assert json.loads(result.output)["lines"] == sorted(
        folder_lines(folder, landed["run_id"]), key=lambda line: line["timestamp"]
    )


def test_logs_search_follows_every_page(operated: Operated, landed: dict[str, Any]) -> None:
    # Given the invoke log searched five results a page
    run = operated.chain.runs("Sales")[-1]
    log = operated.doc["logging"]
    settings = Settings.from_mapping(operated.doc["config"])
    search = Search(settings, operated.doc["compartment"], log["log_group_id"], log["log_id"],
                    operated.doc["oci"]["endpoint"], page_size=5)  # fmt: skip
    searches = len(operated.chain.logsearch.searches)

    # When the run's lines are read over its window
    found = list(search.lines(landed["run_id"], *window(run, run.updated_at)))

    # Then every page was asked for in turn, and together they hold every line of the run
    pages = operated.chain.logsearch.searches[searches:]
    assert len(pages) > 2 and pages[0]["page"] is None and all(p["page"] for p in pages[1:])
    assert len(found) == len(list(folder_lines(Path(operated.doc["logs"]), landed["run_id"])))


def test_logs_of_an_unknown_run_exits_4(operated: Operated) -> None:
    # Given no such run, When its logs are asked for, Then exit 4 naming it
    result = operated.cli("logs", "20990101T000000Z-nothing")
    assert result.exit_code == 4 and "no run '20990101T000000Z-nothing'" in result.output


def test_logs_of_a_rerun_run_keep_to_its_own_lines_though_its_rerun_mentions_it(
    operated: Operated, tmp_path: Path
) -> None:
    # Given a Broken run that FAILED, and its rerun (whose lines name the failed run as `rerun_of`)
    started = operated.cli_json("submit", "Broken", "--mode", "full")
    failed = operated.chain.wait_for_final_run("Broken", count=len(operated.chain.runs("Broken")))
    assert failed.run_id == started["run_id"] and failed.state is RunState.FAILED
    rerun = operated.cli_json("rerun", failed.run_id)
    operated.chain.wait_for_final_run("Broken", count=len(operated.chain.runs("Broken")))
    sample = tmp_path / "terraform-output.json"
    sample.write_text(json.dumps(terraform_output(operated)))
    assert configured(operated, tmp_path, sample).exit_code == 0

    # When the failed run's logs are searched for in the invoke log
    result = fusion_extract(tmp_path, "--profile", "emu", "--json", "logs", failed.run_id)

    # Then the search met the rerun's lines that mention it, but only the failed run's own are shown
    lines = json.loads(result.output)["lines"]
    mentioning = [line for line in operated.chain.log_lines() if failed.run_id in line.message]
    assert any(rerun["run_id"] in line.message for line in mentioning)
    assert lines and {line["run_id"] for line in lines} == {failed.run_id}
    # And so it is from the emulators' files, which hold every run's lines
    local = operated.cli_json("logs", failed.run_id)["lines"]
    assert local == lines
