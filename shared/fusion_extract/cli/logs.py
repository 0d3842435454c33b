"""`fusion-extract logs RUN`: the functions' log lines about one run, oldest first.

Every line a step writes about a run names it (`run_id`, fusion_extract/logging.py), so the run's lines are
found by that field. Where they are read from depends on the target (cli/target.py, Logs):

    the emulators   the functions' JSON-lines files in the folder `make emulator` writes them to
    the cloud       the application's invoke log in OCI Logging, searched with the SDK's LogSearchClient over
                    the run's time window (from its creation to its last change, or now), page after page

In the cloud each entry holds one line a function wrote, as text in `data.message`: the search narrows the
log to the entries whose text holds the run id, and each is then read as JSON and kept only if it names
that very run (a line that merely mentions it, such as another run's `rerun_of`, is not its line).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import oci

from fusion_extract.chain.ledger.records import Run
from fusion_extract.cli.target import Logs
from fusion_extract.config import Settings
from fusion_extract.errors import ConfigError
from fusion_extract.oci.calls import translated
from fusion_extract.oci.clients import signer_and_config

PAGE = 500  # results asked per search call
MARGIN = timedelta(minutes=5)  # around the run's window: lines are logged a little before or after its saves
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")  # safe to quote in a query
Line = dict[str, Any]


def run_lines(
    logs: Logs, run: Run, settings: Settings, compartment: str | None, endpoint: str | None
) -> list[Line]:
    """The run's lines, oldest first: from the log folder when there is one, else from OCI Logging."""
    if logs.folder is not None:
        found = list(folder_lines(logs.folder, run.run_id))
    elif logs.log_id and logs.log_group_id and compartment:
        search = Search(settings, compartment, logs.log_group_id, logs.log_id, endpoint)
        found = list(search.lines(run.run_id, *window(run, datetime.now(UTC))))
    else:
        raise ConfigError(
            "this target names no log to read: a profile from `terraform output -json` of this version "
            "(outputs log_group_id and invoke_log_id, `fusion-extract configure`), or --local"
        )
    return sorted(found, key=lambda line: str(line.get("timestamp", "")))


def folder_lines(folder: Path, run_id: str) -> Iterator[Line]:
    """The lines naming the run in each `*.log` file of the folder (lines that are not JSON are skipped:
    the runtime's own start-up text names no run)."""
    for path in sorted(folder.glob("*.log")):
        for text in path.read_text(errors="replace").splitlines():
            line = _parsed(text)
            if line is not None and line.get("run_id") == run_id:
                yield line


def window(run: Run, now: datetime) -> tuple[datetime, datetime]:
    """From the run's creation to its last change (now, while it goes on), with a margin either side."""
    end = run.updated_at if run.state.final else now
    return run.created_at - MARGIN, max(end, run.created_at) + MARGIN


class Search:
    """The invoke log in OCI Logging, searched with the SDK (POST /20190909/search)."""

    def __init__(
        self,
        settings: Settings,
        compartment: str,
        log_group_id: str,
        log_id: str,
        endpoint: str | None,
        page_size: int = PAGE,
    ) -> None:
        self.stream = f"{compartment}/{log_group_id}/{log_id}"
        self.page_size = page_size
        config, signer = signer_and_config(settings)
        self.client = oci.loggingsearch.LogSearchClient(
            config,
            signer=signer,
            service_endpoint=endpoint,  # None: the region's
            timeout=(settings.connect_timeout, 60.0),
            retry_strategy=oci.retry.NoneRetryStrategy(),
            circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
        )

    def query(self, run_id: str) -> str:
        if not _RUN_ID.fullmatch(run_id):
            raise ConfigError(f"{run_id!r} is not a run id")
        return f"search \"{self.stream}\" | where data.message = '*{run_id}*' | sort by datetime asc"

    def lines(self, run_id: str, start: datetime, end: datetime) -> Iterator[Line]:
        details = oci.loggingsearch.models.SearchLogsDetails(
            time_start=start, time_end=end, search_query=self.query(run_id), is_return_field_info=False
        )
        page: str | None = None
        while True:
            with translated(f"search log {self.stream}"):
                response = self.client.search_logs(details, limit=self.page_size, page=page)
            for result in response.data.results or []:
                line = _entry_line(result.data)
                if line is not None and line.get("run_id") == run_id:
                    yield line
            page = response.headers.get("opc-next-page")
            if not page:
                return


def _entry_line(data: Any) -> Line | None:
    """The line a function wrote, from one search result (its `logContent.data.message`)."""
    content = data.get("logContent") if isinstance(data, dict) else None
    message = (content or {}).get("data", {}).get("message") if isinstance(content, dict) else None
    return _parsed(message) if isinstance(message, str) else None


def _parsed(text: str) -> Line | None:
    try:
        line = json.loads(text)
    except ValueError:
        return None
    return line if isinstance(line, dict) else None


SHOWN_FIRST = ("timestamp", "level", "function", "message")
# The run's identity is the same on every line: said once, above them.
LEFT_OUT = {*SHOWN_FIRST, "logger", "run_id", "extract"}


def text(line: Line) -> str:
    """`<timestamp> <LEVEL> <function> <message>  key=value ...`: one line a person reads."""
    head = " ".join(str(line.get(key, "-")) for key in SHOWN_FIRST)
    rest = " ".join(f"{key}={_value(value)}" for key, value in line.items() if key not in LEFT_OUT)
    return f"{head}  {rest}" if rest else head


def _value(value: Any) -> str:
    shown = value if isinstance(value, str) else json.dumps(value)
    return json.dumps(shown) if " " in shown else shown
