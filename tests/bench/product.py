"""Where the benchmark touches the product's API, and nowhere else: re-point this file when that API moves.

`transfer_file` is the measured call: it drives one output file to LANDED as the chain would, without
Notifications: the transfer step for the file message `{"kind": "transfer", "run_id", "files": [name]}`,
then, reading the file record from the ledger after each invocation, the message the chain would have
published: the file message again while the fetch goes on (PENDING), a unit message for each unit of the
archive not yet DONE (UNPACKING). Every invocation gets a fresh Runtime (a new container). They run one
after another in this process: CPU adds up over the invocations, and peak RSS is the largest one's (in
production each is an instance of its own).

`transfer_file_parallel` does the same with every invocation in a process of its own, started as soon as
its message would have been published, so that the units of an archive run AT THE SAME TIME (as separate
function instances would): `python -m tests.bench.product invoke` with the message as JSON on stdin.

`prepare_run` (submit, then poll until the job's files are planned) and `finish_run` (the remaining files,
which lands the run and releases the extract's lease) set a run up and close it, outside any measurement.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusion_extract.chain.messages import PollRequest, RunRequest, TransferRequest
from fusion_extract.chain.records import FileRecord, FileState, RunState, UnitState
from fusion_extract.chain.steps.poll import poll
from fusion_extract.chain.steps.submit import submit
from fusion_extract.chain.steps.transfer import transfer
from fusion_extract.config import Settings
from fusion_extract.models import ExtractRequest, Mode
from fusion_extract.runtime import Runtime

MAX_POLLS = 50
MAX_INVOCATIONS = 2000  # a file that has not landed after this many invocations is going round in circles
POLL_SECONDS = 0.05  # how often the parallel driver reads the ledger for work to hand out
GOING_ON = {"continued", "unpacked", "landed", "nothing_to_do", "in_progress"}  # anything else: stop
IDLE = ("nothing_to_do", "in_progress")  # outcomes of an invocation that found nothing to do
MAX_IDLE = 20  # this many in a row: the driver hands out work nobody can take
REPO = Path(__file__).resolve().parents[2]
Message = int | None  # None: the file message; i: the message of unit i


class Stuck(RuntimeError):
    """The file did not land: the driver went round without progress, or past its cap of invocations."""


def messages_due(record: FileRecord, busy: set[Message]) -> list[Message] | None:
    """What the chain would have in flight for this file now, not counting `busy` (messages whose
    invocation is running): None once the file LANDED; [None] while its fetch goes on (PENDING); the
    units not DONE of an archive being unpacked (UNPACKING). The invocation of the file message unpacks
    unit 0 itself, so while it runs unit 0 is its own. Raises Stuck for a file that FAILED."""
    if record.state is FileState.LANDED:
        return None
    if record.state is FileState.FAILED:
        raise Stuck(f"{record.name} FAILED: {record.reason}")
    if record.state is FileState.PENDING:
        return [] if None in busy else [None]
    if record.state is FileState.UNPACKING:
        due: list[Message] = []
        for index, unit in enumerate(record.units):
            mine = index in busy or (index == 0 and None in busy)
            if unit.state is not UnitState.DONE and not mine:
                due.append(index)
        return due
    return []  # TRANSFERRING: an invocation holds the claim


@dataclass
class Driven:
    """What driving one file took: the last outcome and every invocation's figures."""

    outcome: dict[str, Any] = field(default_factory=dict)
    walls: list[float] = field(default_factory=list)  # each invocation's own wall (imports excluded)
    processes: list[dict[str, Any]] = field(default_factory=list)  # parallel: each process's figures
    landed: dict[str, Any] | None = None  # the outcome that landed the file, whatever came after it

    def record(self, outcome: dict[str, Any], wall: float) -> None:
        self.outcome = outcome
        self.walls.append(wall)
        if outcome.get("outcome") == "landed":
            self.landed = outcome

    def report(self) -> dict[str, Any]:
        return {
            **(self.landed or self.outcome),
            "invocations": len(self.walls),
            "longest_invocation_s": max(self.walls, default=0.0),
            "invocation_walls_s": [round(wall, 3) for wall in self.walls],
        }


def _invoke(env: Mapping[str, str], run_id: str, name: str, unit: Message) -> dict[str, Any]:
    """One invocation in a new container: a fresh Runtime, one transfer step; its outcome."""
    runtime = Runtime(Settings.from_mapping(env))
    return transfer(TransferRequest(run_id, (name,), unit), runtime).to_json()


def _observer(env: Mapping[str, str]) -> Callable[[str, str], FileRecord]:
    runtime = Runtime(Settings.from_mapping(env))
    return lambda run_id, name: runtime.ledger.load_file(run_id, name).value


def transfer_file(
    env: Mapping[str, str], run_id: str, name: str, *, max_invocations: int = MAX_INVOCATIONS
) -> dict[str, Any]:
    """THE adapter: drive `name` to LANDED, invocation after invocation, in this process. The last
    outcome, `invocations` and `longest_invocation_s`. Stops at the first outcome that is a failure
    (returned as it is); raises Stuck when the file goes round without landing."""
    load = _observer(env)
    driven = Driven()

    def invoke(unit: Message) -> dict[str, Any]:
        if len(driven.walls) >= max_invocations:
            raise Stuck(f"{name}: not landed after {max_invocations} invocations; the last: {driven.outcome}")
        started = time.perf_counter()
        outcome = _invoke(env, run_id, name, unit)
        driven.record(outcome, time.perf_counter() - started)
        return outcome

    invoke(None)
    while driven.outcome.get("outcome") in GOING_ON:
        record = load(run_id, name)
        due = messages_due(record, set())
        if due is None:
            break
        if not due:
            raise Stuck(f"{name}: {record.state.value} with nothing to invoke; the last: {driven.outcome}")
        answers = []
        for unit in due:
            answers.append(invoke(unit)["outcome"])
            if answers[-1] not in GOING_ON:
                break
        if all(answer in IDLE for answer in answers):
            units = [unit.state.value for unit in record.units]
            raise Stuck(f"{name}: {record.state.value}, units {units}: no invocation made progress")
    return driven.report()


# -- every invocation in a process of its own -----------------------------------------------------------


@dataclass
class _Running:
    message: Message
    process: subprocess.Popen[str]
    started: float


@dataclass
class _Parallel:
    """Hands out each message due to a process of its own; collects what each one reports."""

    env: Mapping[str, str]
    run_id: str
    name: str
    max_invocations: int
    driven: Driven = field(default_factory=Driven)
    running: dict[Message, _Running] = field(default_factory=dict)
    most_at_once: int = 0
    idle: int = 0
    failure: dict[str, Any] | None = None

    def start(self, unit: Message) -> None:
        if len(self.driven.processes) + len(self.running) >= self.max_invocations:
            raise Stuck(
                f"{self.name}: not landed after {self.max_invocations} invocations;"
                f" the last: {self.driven.outcome}"
            )
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.product", "invoke"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if not k.startswith("OCI_SDK_")},  # as a new container
            text=True,
        )
        assert process.stdin is not None
        message = {"env": dict(self.env), "run_id": self.run_id, "name": self.name, "unit": unit}
        process.stdin.write(json.dumps(message))
        process.stdin.close()
        self.running[unit] = _Running(unit, process, time.perf_counter())
        self.most_at_once = max(self.most_at_once, len(self.running))

    def reap(self) -> None:
        """Collect every process that ended; the first failure stops handing out work."""
        for unit, child in list(self.running.items()):
            figures = _reaped(child)
            if figures is None:
                continue
            del self.running[unit]
            self.driven.processes.append(figures)
            outcome = figures.get("outcome") or {"outcome": "crashed", **figures}
            self.driven.record(outcome, figures.get("wall_s", figures["process_wall_s"]))
            answer = outcome["outcome"]
            if answer not in GOING_ON:
                self.failure = outcome
            self.idle = self.idle + 1 if answer in IDLE else 0
            if self.idle > MAX_IDLE:
                raise Stuck(f"{self.name}: {self.idle} invocations in a row made no progress")

    def stop(self) -> None:
        for child in self.running.values():  # only on an error of ours: never leave a child behind
            child.process.kill()
            child.process.wait()

    def report(self) -> dict[str, Any]:
        processes = self.driven.processes
        return {
            **self.driven.report(),
            "processes_cpu_s": sum(p["process_cpu_s"] for p in processes),
            "invocations_cpu_s": sum(p.get("cpu_s", 0.0) for p in processes),
            "largest_peak_rss_mib": max((p.get("peak_rss_mib") or 0.0 for p in processes), default=0.0),
            "most_at_once": self.most_at_once,
            "claim_conflicts": sum(
                1 for p in processes if p["message"] is not None and _answer(p) == "in_progress"
            ),
            "per_invocation": [
                {
                    "message": p["message"],
                    "outcome": _answer(p),
                    **{
                        k: round(p[k], 3)
                        for k in ("wall_s", "cpu_s", "process_cpu_s", "peak_rss_mib")
                        if k in p
                    },
                }
                for p in processes
            ],
        }


def transfer_file_parallel(
    env: Mapping[str, str],
    run_id: str,
    name: str,
    *,
    max_invocations: int = MAX_INVOCATIONS,
    poll_seconds: float = POLL_SECONDS,
) -> dict[str, Any]:
    """Drive `name` to LANDED with each invocation in a process of its own, started as soon as the
    ledger shows its message due (the units of an archive then run at once). The last outcome,
    `invocations`, `longest_invocation_s` (inside the invocation), and the processes' own figures:
    `processes_cpu_s` (every process, imports included, from wait4), `largest_peak_rss_mib`,
    `most_at_once`, `per_invocation`, and `claim_conflicts`: unit invocations that answered in_progress
    while their unit stayed PENDING (in the chain their message is then spent and the unit waits for
    the sweep; here the unit is handed out again at once, as the ledger shows it due)."""
    load = _observer(env)
    driver = _Parallel(env, run_id, name, max_invocations)
    driver.start(None)
    try:
        while True:
            driver.reap()
            if driver.failure is not None:
                if not driver.running:
                    break
            else:
                due = messages_due(load(run_id, name), set(driver.running))
                if due is None and not driver.running:
                    break
                for unit in due or []:
                    driver.start(unit)
            time.sleep(poll_seconds)
    finally:
        driver.stop()
    return driver.report()


def _answer(process: dict[str, Any]) -> str | None:
    outcome: dict[str, Any] = process.get("outcome") or {}
    return outcome.get("outcome")


def _reaped(child: _Running) -> dict[str, Any] | None:
    """The finished child's figures (its report plus wait4's CPU), or None while it runs."""
    pid, status, usage = os.wait4(child.process.pid, os.WNOHANG)
    if pid == 0:
        return None
    child.process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    assert child.process.stdout is not None
    lines = child.process.stdout.read().strip().splitlines()
    child.process.stdout.close()
    figures: dict[str, Any] = {
        "message": child.message,
        "process_wall_s": time.perf_counter() - child.started,
        "process_cpu_s": usage.ru_utime + usage.ru_stime,
    }
    if child.process.returncode != 0 or not lines:
        return {**figures, "error": f"invocation exited with status {child.process.returncode}"}
    return {**figures, **json.loads(lines[-1])}


def _invoke_child() -> None:
    """`python -m tests.bench.product invoke`: one invocation, the message as JSON on stdin; one JSON line
    (outcome, wall and CPU of the invocation, peak RSS of the process) on stdout."""
    params = json.loads(sys.stdin.read())
    started, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    answer = _invoke(params["env"], params["run_id"], params["name"], params["unit"])
    after = resource.getrusage(resource.RUSAGE_SELF)
    peak = next(
        int(line.split()[1]) / 1024
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    wall = time.perf_counter() - started
    print(json.dumps({"outcome": answer, "wall_s": wall, "cpu_s": cpu, "peak_rss_mib": peak}), flush=True)


# -- set-up and close, outside any measurement ----------------------------------------------------------


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
    for name in names:
        transfer_file(env, run_id, name)
    runtime = Runtime(Settings.from_mapping(env))
    run = runtime.ledger.load_run(run_id).value
    members = {
        member.path: member.size
        for current in runtime.ledger.files(run_id)
        for member in current.value.members
    }
    return {"state": run.state.value, "reason": run.reason, "members": members}


if __name__ == "__main__" and sys.argv[1:] == ["invoke"]:
    _invoke_child()
