"""What the submit function's answer means to the person who asked: an exit code and a sentence that says
what was done, or what was refused and why, with the exact command that would do something instead."""

from __future__ import annotations

from typing import Any

from fusion_extract.chain.ledger.records import Run, RunState
from fusion_extract.cli.exits import Exit, Stop


def failure(step: str, status: int, body: dict[str, Any]) -> Stop:
    """An invocation that did not answer: the chain refused the message, or the target is not usable."""
    message = str(body.get("message", body))
    if status == 0:
        return Stop(Exit.UNUSABLE, f"cannot reach the {step} function: {message}")
    if body.get("error") == "MessageError":
        return Stop(Exit.REFUSED, f"refused: {message}")
    kind = body.get("error", f"answer {status}")
    return Stop(Exit.UNUSABLE, f"the {step} function could not do it ({kind}): {message}")


def outcome(asked: str, body: dict[str, Any], run: Run | None = None) -> tuple[Exit, str]:
    """The code and sentence for a submit answer to what was `asked` (submit, rerun, reland, cancel);
    `run` is the run the request named, if it named one."""
    result, run_id = str(body.get("outcome", "")), body.get("run_id")
    if result == "submitted":
        return Exit.OK, f"submitted: run {run_id}, job {body.get('job_id')}"
    if result == "relanding":
        return Exit.OK, f"re-landing job {body.get('job_id')}: run {run_id}"
    if result == "cancelled":
        return Exit.OK, f"cancelled: run {run_id}"
    if result == "deferred":
        retry = body.get("retry_at")
        return (
            Exit.OK,
            f"run {run_id} started; its job is not submitted yet ({body.get('reason')}): retried at {retry}",
        )
    if result == "failed":
        return Exit.RUN_FAILED, f"run {run_id} FAILED: {body.get('reason')}"
    if result == "already_running":
        return Exit.REFUSED, (
            f"{body.get('extract')} is already running (run {run_id}): follow it with "
            f"`fusion-extract watch {run_id}`, or stop it with `fusion-extract cancel {run_id}`"
        )
    if result == "not_due":
        return (
            Exit.REFUSED,
            f"run {run_id} is rerun by the chain itself at {body.get('next_at')}: nothing to do before",
        )
    if result == "in_progress":
        return Exit.REFUSED, (
            f"run {run_id} changed meanwhile (another invocation is at work on it): see it with "
            f"`fusion-extract show {run_id}`, then ask again if need be"
        )
    if result == "nothing_to_do" and run is not None:
        return Exit.REFUSED, nothing_to_do(asked, run)
    return Exit.REFUSED, f"not done: {result or body}"


def nothing_to_do(asked: str, run: Run) -> str:
    """Why the chain had nothing to do for this run (a rerun or a cancel), and what would do something."""
    state, rid = run.state, run.run_id
    if not state.final and state is not RunState.FINISHING:
        if asked == "cancel":  # not reached: an active run is cancelled
            return f"run {rid} is {state.value} and could not be cancelled now: ask again"
        return (
            f"run {rid} is {state.value}: it goes on by itself; follow it with `fusion-extract watch {rid}`, "
            f"or stop it with `fusion-extract cancel {rid}`"
        )
    if state is RunState.FINISHING:
        return f"run {rid} is FINISHING (writing its _SUCCESS): it ends LANDED; nothing to {asked}"
    if asked == "cancel":
        return (
            f"run {rid} is {state.value} already: nothing to cancel (`fusion-extract show {rid}` tells more)"
        )
    reland = f"`fusion-extract reland {run.job_id} --extract {quoted(run.extract)} --mode {run.mode}`"
    new_run = f"`fusion-extract submit {quoted(run.extract)} --mode {run.mode}`"
    if state is RunState.LANDED:
        return (
            f"run {rid} LANDED: a rerun is for a run that FAILED or TIMED_OUT. A re-land lands its job "
            f"again: {reland}; a new run submits a new job: {new_run}"
        )
    if run.reland and run.job_id:
        return f"run {rid} was a re-land of job {run.job_id}: land it again with {reland}"
    return (
        f"run {rid} was {state.value}: a rerun is for a FAILED or TIMED_OUT run; start a new run: {new_run}"
    )


def quoted(extract: str) -> str:
    return f"'{extract}'" if " " in extract else extract
