"""Service levels against the emulators: `status` per extract, the sweep's `late` alert, and `history`
with its chart, through the CLI, the real SDK and the functions under fdk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from fusion_extract.cli.main import cli
from tests.emulators.chain import BUCKET, LocalChain
from tests.emulators.fusion import ExtractScenario

CATALOG = {
    # Lands on every run; expected within a day of its 02:00 start, so a run landed now is on time whenever
    # the test runs.
    "Sales": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=0", "expected_within_hours": 24},
    # Never lands, and the sweep has watched it since 1 January: late whenever the test runs.
    "Orders": {
        "mode": "full",
        "schedule": "0 3 * * *",
        "recurrence_type": "CRON",
        "expected_within_hours": 2,
    },
    "Broken": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=4;BYMINUTE=0"},  # no expectation; 2 jobs fail
}
WATCHED_SINCE = "2026-01-01T00:00:00.000000Z"


class Chain:
    def __init__(self, chain: LocalChain, endpoints: Path) -> None:
        self.chain = chain
        self.endpoints = endpoints

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--endpoints", str(self.endpoints), *args])

    def json(self, *args: str) -> Any:
        result = self.cli("--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    workdir = tmp_path_factory.mktemp("service-levels")
    with LocalChain(workdir, config={"RUN_MAX_ATTEMPTS": "2"}, catalog=CATALOG) as local:
        sales = ExtractScenario(chunks=2, rows_per_chunk=2_000, seconds_enqueued=0.4, seconds_running=0.6)
        local.fusion.define_extract("Sales", sales)
        local.fusion.define_extract("Broken", ExtractScenario(fail_first_jobs=1000, seconds_running=0.2))
        note = {"v": 1, "extract": "Orders", "since": WATCHED_SINCE}
        local.oci.put_object(BUCKET, "_state/watched/Orders.json", json.dumps(note).encode())
        local.write_endpoints(workdir / "endpoints.json")
        operated = Chain(local, workdir / "endpoints.json")
        for extract, count in (("Sales", 1), ("Sales", 2), ("Broken", 1)):
            assert operated.json("submit", extract, "--mode", "full")["outcome"] == "submitted"
            local.wait_for_final_run(extract, count=count)
        yield operated


def test_status_shows_each_extract_against_its_service_level_and_its_next_run(chain: Chain) -> None:
    # Given Sales landed twice, Orders never landed since January, Broken failed without an expectation
    # When `status` runs
    before = datetime.now(UTC)
    rows = {row["extract"]: row for row in chain.json("status")}

    # Then Sales is on time, with its latest run, a landing seconds old, and its next 02:00 UTC start
    sales = rows["Sales"]
    latest = max((run for run in chain.chain.runs("Sales")), key=lambda run: run.created_at)
    assert (sales["verdict"], sales["last_run"], sales["late"]) == ("on time", latest.run_id, False)
    assert 0 <= sales["age_hours"] < 0.1
    following = datetime.fromisoformat(sales["next_run"].replace("Z", "+00:00"))
    assert following.hour == 2 and following.minute == 0 and before < following <= before + timedelta(days=1)
    # And Orders is late for its latest 03:00 start, by the hours since 05:00 that day
    orders = rows["Orders"]
    assert orders["verdict"] == "LATE" and orders["last_landed"] is None and orders["hours_late"] > 0
    assert orders["scheduled"].endswith("T03:00:00.000000Z") and orders["expected_by"].endswith(
        "T05:00:00.000000Z"
    )
    # And Broken has no expectation to be late against
    assert (rows["Broken"]["verdict"], rows["Broken"]["late"]) == ("no expectation", False)

    # When printed for a person, Then each extract is a row that says so
    text = chain.cli("status").output
    assert "on time" in text and "LATE by" in text and "no expectation" in text


def test_sweep_alerts_late_once_for_an_extract_that_slipped(chain: Chain) -> None:
    # Given Orders late (above), When the sweep runs twice
    for _ in range(2):
        chain.chain.sweep()
        chain.chain.settle()

    # Then one `late` alert names Orders and its missed start; nothing is late for Sales or Broken
    late = [alert for alert in chain.chain.alerts if alert["event"] == "late"]
    assert [alert["extract"] for alert in late] == ["Orders"]
    assert "never landed" in late[0]["reason"]


def test_history_shows_each_run_with_its_durations_volume_and_outcome(chain: Chain) -> None:
    # Given two landed runs of Sales, When its history is read
    runs = chain.json("history", "Sales")

    # Then both are there, oldest first, with queue, job and transfer time, bytes and rows
    assert [run["state"] for run in runs] == ["LANDED", "LANDED"]
    assert runs[0]["started"] < runs[1]["started"]
    for run in runs:
        parts = [run["queue_seconds"], run["job_seconds"], run["transfer_seconds"]]
        assert all(part is not None and part >= 0 for part in parts), run
        assert run["queue_seconds"] >= 0.3  # the job waited ENQUEUED 0.4 s before Fusion ran it
        assert sum(parts) <= run["total_seconds"] + 0.01
        assert (run["files"], run["rows"]) == (3, 4_000) and run["bytes"] > 0  # 2 chunks and the .mf
        assert run["earlier_jobs_seconds"] is None  # its first job landed
    # And a failed run says how it ended and why, and the time its first, failed job took before the second
    (broken,) = chain.json("history", "Broken")
    assert broken["state"] == "FAILED" and "ERROR" in broken["reason"] and broken["transfer_seconds"] is None
    assert broken["attempts"] == 2 and broken["earlier_jobs_seconds"] > 0.2


def test_history_plot_and_html_write_a_chart_of_the_runs(chain: Chain, tmp_path: Path) -> None:
    # Given the runs of Sales, When its history is drawn as a PNG and as a page
    png, page = tmp_path / "sales.png", tmp_path / "sales.html"
    result = chain.cli("history", "Sales", "--plot", str(png), "--html", str(page))

    # Then the table is printed, and a PNG and a self-contained page are written
    assert result.exit_code == 0, result.output
    assert "LANDED" in result.output and f"wrote {png}" in result.output
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 800 and height >= 700
    text = page.read_text()
    assert "<svg" in text and text.count("<tr>") == 3 and "Sales: run history" in text


def test_history_of_an_unknown_extract_exits_4_naming_the_known_ones(chain: Chain) -> None:
    # Given a typo, When its history is asked for, Then it exits 4 naming the catalog's extracts
    result = chain.cli("history", "Salse")
    assert result.exit_code == 4
    assert "no extract 'Salse'" in result.output and "Sales" in result.output
