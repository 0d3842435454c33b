"""What the CLI says of the submit function's answers: the exit code, and a sentence that names what would do
something when there was nothing to do (each command pasted as it would be run)."""

from __future__ import annotations

import pytest

from fusion_extract.chain.ledger.records import Run, RunState
from fusion_extract.cli import answers
from fusion_extract.cli.exits import Exit
from tests.clocks import EPOCH

RUN_ID = "20260301T080000Z-ab12"


def a_run(state: RunState, **changes: object) -> Run:
    run = Run(RUN_ID, "Sales Ledger", "full", state, EPOCH, EPOCH, EPOCH, job_id="44046")
    return run.but(**changes)


@pytest.mark.parametrize(
    ("run", "advice"),
    [
        (
            a_run(RunState.LANDED),
            "lands its job again: `fusion-extract reland 44046 --extract 'Sales Ledger' --mode full`",
        ),
        (a_run(RunState.CANCELLED), "start a new run: `fusion-extract submit 'Sales Ledger' --mode full`"),
        (a_run(RunState.RUNNING), f"follow it with `fusion-extract watch {RUN_ID}`"),
        (a_run(RunState.FINISHING), "it ends LANDED; nothing to rerun"),
        (
            a_run(RunState.FAILED, reland=True),
            "land it again with `fusion-extract reland 44046 --extract 'Sales Ledger' --mode full`",
        ),
    ],
    ids=["landed", "cancelled", "running", "finishing", "failed-reland"],
)
def test_rerun_with_nothing_to_do_is_refused_with_what_would_do_something(run: Run, advice: str) -> None:
    # Given the chain's answer that a rerun of this run has nothing to do
    body = {"outcome": "nothing_to_do", "run_id": RUN_ID, "state": run.state.value}

    # When the CLI reads it, Then refused (exit 5), with the command that would do something
    code, text = answers.outcome("rerun", body, run)
    assert code is Exit.REFUSED and advice in text


def test_cancel_of_a_final_run_says_nothing_to_cancel() -> None:
    body = {"outcome": "nothing_to_do", "run_id": RUN_ID, "state": "LANDED"}
    code, text = answers.outcome("cancel", body, a_run(RunState.LANDED))
    assert code is Exit.REFUSED and text.startswith(f"run {RUN_ID} is LANDED already: nothing to cancel")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"outcome": "submitted", "run_id": RUN_ID, "job_id": "1"}, Exit.OK),
        ({"outcome": "relanding", "run_id": RUN_ID, "job_id": "1"}, Exit.OK),
        ({"outcome": "cancelled", "run_id": RUN_ID}, Exit.OK),
        ({"outcome": "deferred", "run_id": RUN_ID, "reason": "Fusion unreachable"}, Exit.OK),
        ({"outcome": "failed", "run_id": RUN_ID, "reason": "401"}, Exit.RUN_FAILED),
        ({"outcome": "already_running", "run_id": RUN_ID, "extract": "Sales"}, Exit.REFUSED),
        ({"outcome": "not_due", "run_id": RUN_ID, "next_at": "2026-03-01T09:00:00Z"}, Exit.REFUSED),
        ({"outcome": "in_progress", "run_id": RUN_ID}, Exit.REFUSED),
    ],
)
def test_each_answer_has_its_exit_code(body: dict[str, str], code: Exit) -> None:
    assert answers.outcome("submit", body)[0] is code


@pytest.mark.parametrize(
    ("status", "body", "code", "said"),
    [
        (
            0,
            {"error": "TransientError", "message": "connection failed"},
            Exit.UNUSABLE,
            "cannot reach the submit",
        ),
        (
            502,
            {"error": "MessageError", "message": "run_id is missing"},
            Exit.REFUSED,
            "refused: run_id is missing",
        ),
        (
            502,
            {"error": "ConfigError", "message": "BUCKET_NAME is missing"},
            Exit.UNUSABLE,
            "could not do it",
        ),
        (504, {"error": "FunctionTimeout", "message": "timed out"}, Exit.UNUSABLE, "could not do it"),
    ],
)
def test_a_failed_invocation_says_why_without_transport_words(
    status: int, body: dict[str, str], code: Exit, said: str
) -> None:
    stop = answers.failure("submit", status, body)
    assert stop.code is code and said in stop.message
    assert "answered" not in stop.message and str(status) not in stop.message.split(":")[0]
