"""Where the benchmark touches the product's API, and nowhere else: re-point this file when that API moves.

`transfer_file` is the measured call: one transfer invocation landing one output file, exactly what the
transfer function does for a message `{"kind": "transfer", "run_id", "files": [name]}`. `prepare_run`
(submit, then poll until the job's files are planned) and `finish_run` (the remaining files, which lands
the run and releases the extract's lease) set a run up and close it, outside any measurement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fusion_extract.chain.messages import PollRequest, RunRequest, TransferRequest
from fusion_extract.chain.records import RunState
from fusion_extract.chain.steps.poll import poll
from fusion_extract.chain.steps.submit import submit
from fusion_extract.chain.steps.transfer import transfer
from fusion_extract.config import Settings
from fusion_extract.models import ExtractRequest, Mode
from fusion_extract.runtime import Runtime

MAX_POLLS = 50


def transfer_file(env: Mapping[str, str], run_id: str, name: str) -> dict[str, Any]:
    """THE adapter: a fresh Runtime (a cold container), one transfer step for one file; its outcome."""
    runtime = Runtime(Settings.from_mapping(env))
    return transfer(TransferRequest(run_id, (name,)), runtime).to_json()


def prepare_run(env: Mapping[str, str], extract: str) -> tuple[str, list[tuple[str, str]]]:
    """A run of `extract` whose job succeeded and whose files are planned: (run id, [(name, download
    link)], ZIPs first)."""
    runtime = Runtime(Settings.from_mapping(env))
    outcome = submit(RunRequest(ExtractRequest(extract, Mode.FULL)), runtime).to_json()
    if outcome.get("outcome") != "submitted":
        raise RuntimeError(f"submit of {extract}: {outcome}")
    run_id = str(outcome["run_id"])
    for _ in range(MAX_POLLS):
        run = runtime.ledger.load_run(run_id).value
        if run.state is RunState.TRANSFERRING:
            files = sorted(
                ((f.name, f.url) for f in run.files), key=lambda file: not file[0].endswith(".zip")
            )
            return run_id, files
        if run.state is not RunState.RUNNING:
            raise RuntimeError(f"run {run_id} ended {run.state.value}: {run.reason}")
        poll(PollRequest(run_id, run.poll_seq), runtime)
    raise RuntimeError(f"run {run_id} was not transferring after {MAX_POLLS} polls")


def finish_run(env: Mapping[str, str], run_id: str, names: list[str]) -> dict[str, Any]:
    """Transfer the other files; the run must end LANDED. Its landed members: {path: size}."""
    runtime = Runtime(Settings.from_mapping(env))
    for name in names:
        transfer(TransferRequest(run_id, (name,)), runtime)
    run = runtime.ledger.load_run(run_id).value
    members = {
        member.path: member.size
        for current in runtime.ledger.files(run_id)
        for member in current.value.members
    }
    return {"state": run.state.value, "reason": run.reason, "members": members}
