"""One local chain for the operator's tools (the CLI, the runbook's `oci` commands): emulators, the three
functions under fdk, a catalog of three extracts with their schedules, and `endpoints.json` as `make emulator`
writes it. Shared by the package's tests; each test that breaks something breaks a copy of the endpoints."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from fusion_extract.cli.main import cli
from tests.emulators.chain import LocalChain
from tests.emulators.fusion import ExtractScenario

CATALOG = {
    "Sales": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=0"},
    "Orders": {"mode": "incremental", "schedule": "0 3 * * *", "recurrence_type": "CRON"},
    "Broken": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=4;BYMINUTE=0"},
}


class Operated:
    """The chain, its endpoints file, and the CLI run against it."""

    def __init__(self, chain: LocalChain, endpoints: Path, hold: threading.Event) -> None:
        self.chain = chain
        self.endpoints = endpoints
        self.hold = hold  # Orders' jobs run until this is set
        self.doc: dict[str, Any] = json.loads(endpoints.read_text())

    def cli(self, *args: str, endpoints: Path | None = None, stdin: str | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(cli, ["--endpoints", str(endpoints or self.endpoints), *args], input=stdin)

    def cli_json(self, *args: str) -> Any:
        result = self.cli("--json", *args)
        return json.loads(result.output)

    def broken(self, tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
        """A copy of the endpoints file with `change` applied to it."""
        doc = json.loads(self.endpoints.read_text())
        change(doc)
        path = tmp_path / "endpoints.json"
        path.write_text(json.dumps(doc))
        return path


@pytest.fixture(scope="package")
def operated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operated]:
    workdir = tmp_path_factory.mktemp("operate")
    hold = threading.Event()
    config = {"RUN_MAX_ATTEMPTS": "1"}
    with LocalChain(workdir, config=config, catalog=CATALOG) as chain:
        chain.fusion.define_extract(
            "Sales", ExtractScenario(chunks=2, seconds_enqueued=0.2, seconds_running=0.5)
        )
        chain.fusion.define_extract("Orders", ExtractScenario(hold=hold, view="orders"))
        chain.fusion.define_extract("Broken", ExtractScenario(fail_first_jobs=1000, seconds_running=0.2))
        chain.schedule_catalog()
        chain.write_endpoints(workdir / "endpoints.json")
        yield Operated(chain, workdir / "endpoints.json", hold)
        hold.set()
