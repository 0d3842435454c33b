"""The log lines of a step name the run they are about (fusion_extract/logging.py): the sweep, which goes
through many runs, names each on the lines about it; an invocation about one run names it to its last line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from fusion_extract import logging as jsonlog
from tests.emulators.fusion import ExtractScenario
from tests.steps.conftest import EXTRACT, Steps

OVERDUE = 900.0  # STEP_OVERDUE_SECONDS, the default


class Lines(logging.Handler):
    """Every line logged meanwhile, as the functions write it (JSON)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(jsonlog.JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def saying(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["message"] == message]


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler, root = Lines(), logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)  # setLevel, not the attribute: loggers cache what their level lets through
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_the_sweep_names_each_run_on_the_lines_about_it(steps: Steps, lines: Lines) -> None:
    # Given one run whose poll message was lost, and another whose document is corrupt
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(seconds_running=36_000))
    steps.fusion.define_extract("Payroll", ExtractScenario(seconds_running=36_000))
    good = steps.start()
    bad = steps.start("Payroll")
    steps.forget("poll")
    steps.deps.store.put_bytes(f"_state/runs/{bad.run_id}.json", b'{"run_id": "half a docu')

    # When the sweep runs once the poll is overdue
    steps.clock.advance(OVERDUE + 1)
    steps.sweep()

    # Then its re-drive line names the run it re-drove, its extract and job
    [redrove] = lines.saying("sweep re-drove run")
    assert (redrove["run_id"], redrove["extract"], redrove["job_id"]) == (good.run_id, EXTRACT, good.job_id)
    # And the lines of the quarantine name the run the document was
    about_bad = lines.saying("ledger document quarantined") + lines.saying("alert sent")
    assert len(about_bad) == 2 and {line.get("run_id") for line in about_bad} == {bad.run_id}


def test_an_invocation_about_a_run_names_it_after_the_step_too(steps: Steps, lines: Lines) -> None:
    # Given a run being followed, When one poll invocation ends and logs how it ended (as function.py does)
    run = steps.start()
    with jsonlog.invocation(function="poll", call_id="call-1"):
        steps.poll(run.run_id, run.poll_seq)
        logging.getLogger("fusion_extract.function").info("step done")

    # Then its last line names the run, its extract and job, as its first did
    [done] = lines.saying("step done")
    assert (done["run_id"], done["extract"], done["job_id"], done["call_id"]) == (
        run.run_id, EXTRACT, run.job_id, "call-1",
    )  # fmt: skip
    # And a line logged after the invocation names no run
    logging.getLogger("fusion_extract.function").info("between invocations")
    [between] = lines.saying("between invocations")
    assert "run_id" not in between


def test_a_run_that_fails_logs_its_end_as_an_error_and_a_cancelled_one_as_info(
    steps: Steps, lines: Lines
) -> None:
    # Given a job cancelled in Fusion (its run fails: no rerun), and a run a person will cancel
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(outcome="CANCELLED"))
    steps.fusion.define_extract("Payroll", ExtractScenario(seconds_running=36_000))
    failing = steps.start()
    cancelled = steps.start("Payroll")

    # When poll follows the first to its end, and the second is cancelled
    steps.deliver("poll", keep=lambda message: message["run_id"] == failing.run_id)
    steps.submit(kind="cancel", run_id=cancelled.run_id)

    # Then the failure's last word is an error (what LOG_LEVEL=ERROR still shows), naming its state and
    # reason, and the cancel's, which a person asked for, is information only
    ended = {line["run_id"]: line for line in lines.saying("run ended")}
    assert (ended[failing.run_id]["level"], ended[failing.run_id]["state"]) == ("ERROR", "FAILED")
    assert ended[failing.run_id]["reason"] == steps.run(failing.run_id).reason
    assert (ended[cancelled.run_id]["level"], ended[cancelled.run_id]["state"]) == ("INFO", "CANCELLED")
