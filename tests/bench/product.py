"""Where the benchmark touches the product's API, and nowhere else: re-point this file when that API moves.

`drive` is the measured call: it drives one output file to LANDED as the chain would, without
Notifications: the file message `{"kind": "transfer", "run_id", "files": [name]}`, then, reading the file
record from the ledger (on the emulator's disk), each message the chain would have published as soon as
it is due: the file message again while the fetch goes on (PENDING), a unit message for each unit of the
archive not yet DONE (UNPACKING), at most four at once. Each invocation is a call of the transfer
function's handler in a function instance (tests.bench.instances): cold, a new instance per invocation;
warm, primed instances reused.

`transfer_file` drives a file the same way with every invocation in this process, one after another, each
with a fresh Runtime: what closes a run (the `.mf`), outside any measurement (this process is not a
function instance: the driver's own memory, and not the heap setting `runtime_for` makes, heap.py).

`prepare_run` (submit, then poll until the job's files are planned) and `finish_run` (the remaining files,
which lands the run and releases the extract's lease) set a run up and close it, outside any measurement.
"""

from __future__ import annotations

import contextlib
import json
import queue
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fusion_extract.chain.ledger.codec import file_from_doc
from fusion_extract.chain.ledger.records import FileRecord, FileState, RunState, UnitState
from fusion_extract.chain.messages import PollRequest, RunRequest, TransferRequest, encode
from fusion_extract.chain.steps.poll import poll
from fusion_extract.chain.steps.submit import submit
from fusion_extract.chain.steps.transfer import transfer
from fusion_extract.config import Settings
from fusion_extract.models import ExtractRequest, Mode
from fusion_extract.runtime import Runtime
from tests.bench.instances import Answer, Instance

MAX_POLLS = 50
MAX_INVOCATIONS = 2000  # a file that has not landed after this many invocations is going round in circles
POLL_SECONDS = 0.05  # how often the parallel driver reads the ledger for work to hand out
# Anything else: stop.
GOING_ON = {"continued", "unpacked", "promoted", "landed", "nothing_to_do", "in_progress"}
IDLE = ("nothing_to_do", "in_progress")  # outcomes of an invocation that found nothing to do
MAX_IDLE = 20  # this many in a row: the driver hands out work nobody can take
MOST_AT_ONCE = 4  # invocations of one file at once: the file's and TRANSFER_FANOUT's default of units
WARM_UP_RUN = "bench-warm-up"  # a run that does not exist: a warm instance's first call finds nothing
Message = int | None  # None: the file message; i: the message of unit i


class Stuck(RuntimeError):
    """The file did not land: the driver went round without progress, or past its cap of invocations."""


def messages_due(record: FileRecord, busy: set[Message], handing_out: bool = False) -> list[Message] | None:
    """What the chain would have in flight for this file now, not counting `busy` (messages whose
    invocation is running): None once the file LANDED; [None] while its fetch goes on (PENDING). For an
    archive being unpacked (UNPACKING), as the transfer publishes them: a message per unit not yet staged;
    once every unit is staged, a message per unit waiting to be promoted (DONE: a promotion that paused,
    or one handed out); once every unit is promoted, one message to land the file (a landing put off). The
    invocation of the file message unpacks unit 0 itself, so while it runs unit 0 is its own; any running
    invocation may be promoting any unit, so nothing is due for a unit PROMOTING. `handing_out`: an
    invocation that was unpacking when the last unit was staged still runs; the one that staged it
    promotes the DONE units itself and hands out, as it ends, those it did not reach, so none is due
    before. A message delivered twice is harmless: its invocation finds nothing to do. Raises Stuck for
    a file that FAILED."""
    if record.state is FileState.LANDED:
        return None
    if record.state is FileState.FAILED:
        raise Stuck(f"{record.name} FAILED: {record.reason}")
    if record.state is FileState.PENDING:
        return [] if None in busy else [None]
    if record.state is not FileState.UNPACKING:
        return []  # TRANSFERRING: an invocation holds the claim

    def free(index: int) -> bool:
        return index not in busy and not (index == 0 and None in busy)

    states = [unit.state for unit in record.units]
    waiting: tuple[UnitState, ...]
    if any(state in (UnitState.PENDING, UnitState.WORKING) for state in states):
        waiting = (UnitState.PENDING, UnitState.WORKING)
    elif all(state is UnitState.PROMOTED for state in states):
        return [0] if not busy else []
    elif handing_out:
        return []
    else:
        waiting = (UnitState.DONE,)
    return [index for index, state in enumerate(states) if state in waiting and free(index)]


def _all_staged(record: FileRecord) -> bool:
    staged = (UnitState.DONE, UnitState.PROMOTING, UnitState.PROMOTED)
    return record.state is FileState.UNPACKING and all(unit.state in staged for unit in record.units)


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


def _reader(env: Mapping[str, str], bucket_folder: Path) -> Callable[[str, str], FileRecord]:
    """The file record read from the emulator's disk (records are replaced whole, with os.replace), so
    that watching the ledger adds no request to those the transfer makes."""
    prefix = Runtime(Settings.from_mapping(env)).ledger.prefix

    def load(run_id: str, name: str) -> FileRecord:
        path = bucket_folder / prefix / "files" / run_id / f"{name}.json"
        return file_from_doc(json.loads(path.read_bytes()), str(path))

    return load


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


# -- every invocation in a function instance -----------------------------------------------------------


@dataclass
class _Chain:
    """Hands each message due to a function instance (tests.bench.instances) and collects what they say.
    Cold: a new instance per message, which exits after answering. Warm: a pool of instances started and
    primed before the clock starts, each taking message after message."""

    env: dict[str, str]
    run_id: str
    name: str
    warm: bool
    most: int  # instances at once
    max_invocations: int
    log: IO[str] | None  # the instances' stderr
    wrapper: Callable[[], tuple[str, ...]]  # the command each instance runs under, if any
    own_rusage: bool = False  # each instance tells its ru_maxrss (instances.py --own-rusage)
    answers: queue.Queue[Answer] = field(default_factory=queue.Queue)
    pool: list[Instance] = field(default_factory=list)  # every instance started
    driven: Driven = field(default_factory=Driven)
    calls: list[dict[str, Any]] = field(default_factory=list)
    started: float = 0.0
    landed_after: float | None = None
    failure: dict[str, Any] | None = None
    idle_answers: int = 0
    most_at_once: int = 0
    unpackers: set[int] = field(default_factory=set)  # running instances started before all was staged

    @property
    def running(self) -> dict[Message, Instance]:
        return {instance.busy[0]: instance for instance in self.pool if instance.busy is not None}

    @property
    def handing_out(self) -> bool:
        """Whether an invocation started before every unit was staged still runs (messages_due)."""
        return any(self.pool[index].busy is not None for index in self.unpackers)

    def prime(self) -> None:
        """Warm: `most` instances that have each served a call (imports, Runtime, signer, connections)."""
        self.pool = [self._new() for _ in range(self.most)]
        for instance in self.pool:
            instance.send(self.env, json.dumps(encode("transfer", run_id=WARM_UP_RUN, files=[self.name])))
        for _ in self.pool:
            answer = self.answers.get(timeout=120)
            if answer.exited or answer.figures.get("status") != 200:
                raise Stuck(f"a warm instance did not come up: {answer.figures}")

    def _new(self) -> Instance:
        return Instance(self.answers, self.log, self.wrapper(), own_rusage=self.own_rusage)

    def start(self, unit: Message, *, unpacking: bool = True) -> None:
        """Hand `unit`'s message to an instance; `unpacking`: some unit of the file is not staged yet."""
        if len(self.calls) + len(self.running) >= self.max_invocations:
            raise Stuck(f"{self.name}: not landed after {self.max_invocations} invocations")
        idle = [instance for instance in self.pool if instance.busy is None and instance.status is None]
        instance = idle[0] if self.warm else self._new()
        if not self.warm:
            self.pool.append(instance)
        body = encode(
            "transfer", run_id=self.run_id, files=[self.name], **({} if unit is None else {"unit": unit})
        )
        instance.busy = (unit, time.perf_counter())
        self.unpackers.discard(self.pool.index(instance))
        if unpacking:
            self.unpackers.add(self.pool.index(instance))
        instance.send(self.env, json.dumps(body), last=not self.warm)
        self.most_at_once = max(self.most_at_once, len(self.running))

    def free(self) -> int:
        return self.most - len(self.running) if not self.warm else sum(1 for i in self.pool if i.busy is None)

    def take(self, answer: Answer) -> None:
        instance, figures = answer.instance, answer.figures
        if instance.busy is None:
            return  # an exit after its answer
        unit, sent = instance.busy
        instance.busy = None
        if answer.exited:  # gone without answering
            figures = {"outcome": {"outcome": "crashed", "status": figures.get("status")}}
        outcome = dict(figures.get("outcome") or {"outcome": "crashed"})
        # cold: the instance's start-up is on the chain's clock, from the moment its message was due
        since = answer.received - (instance.started if not self.warm else sent)
        self.driven.record(outcome, since)
        self.calls.append(
            {
                "instance": self.pool.index(instance),
                "message": unit,
                "outcome": outcome.get("outcome"),
                "wall_s": round(since, 3),
                "call_wall_s": round(float(figures.get("wall_s", 0.0)), 3),
                "cpu_s": round(float(figures.get("cpu_s", 0.0)), 3),
                "peak_rss_mib": round(float(figures.get("peak_rss_mib", 0.0)), 1),
                "disk_write_bytes": int(figures.get("disk_write_bytes", 0)),
            }
        )
        answer_name = outcome.get("outcome")
        if answer_name == "landed" and self.landed_after is None:
            self.landed_after = answer.received - self.started
        elif answer_name not in GOING_ON and self.failure is None:
            self.failure = outcome
        self.idle_answers = self.idle_answers + 1 if answer_name in IDLE else 0
        if self.idle_answers > MAX_IDLE:
            raise Stuck(f"{self.name}: {self.idle_answers} invocations in a row made no progress")

    def finish(self) -> None:
        """Every instance told to stop, and every exit collected (their CPU), killing stragglers."""
        for instance in self.pool:
            instance.stop()
        deadline = time.perf_counter() + 60
        while any(instance.status is None for instance in self.pool) and time.perf_counter() < deadline:
            with contextlib.suppress(queue.Empty):
                self.take(self.answers.get(timeout=1))
        for instance in self.pool:
            instance.kill()

    def report(self) -> dict[str, Any]:
        cold = not self.warm
        for call in self.calls:  # known once the instance ended
            call["max_rss_mib"] = self.pool[call["instance"]].max_rss_mib
        cpu = sum(i.cpu_s or 0.0 for i in self.pool) if cold else sum(c["cpu_s"] for c in self.calls)
        return {
            **self.driven.report(),
            "ok": self.landed_after is not None and self.failure is None,
            "wall_s": self.landed_after,
            "cpu_s": cpu,
            "peak_rss_mib": max((c["peak_rss_mib"] for c in self.calls), default=0.0),
            "disk_write_bytes": sum(c["disk_write_bytes"] for c in self.calls),
            "most_at_once": self.most_at_once,
            "startup_s": round(sum(c["wall_s"] - c["call_wall_s"] for c in self.calls), 3) if cold else 0.0,
            "claim_conflicts": sum(
                1 for c in self.calls if c["message"] is not None and c["outcome"] == "in_progress"
            ),
            "per_invocation": self.calls,
        }


def drive(
    env: Mapping[str, str],
    run_id: str,
    name: str,
    bucket_folder: Path,
    *,
    warm: bool,
    most: int = MOST_AT_ONCE,
    max_invocations: int = MAX_INVOCATIONS,
    poll_seconds: float = POLL_SECONDS,
    at_start: Callable[[], None] = lambda: None,
    log: IO[str] | None = None,
    wrapper: Callable[[], tuple[str, ...]] = tuple,
    own_rusage: bool = False,
) -> dict[str, Any]:
    """Drive `name` to LANDED as the chain would, each invocation in a function instance (cold: a new one
    per invocation; warm: `most` instances primed before the clock starts), started as soon as the ledger
    shows its message due, at most `most` at once. `wall_s`: from the first message to the answer that
    landed the file; `cpu_s`: cold, every instance's whole process (wait4: start-up and imports included);
    warm, the calls'; `peak_rss_mib`: the largest instance's; `disk_write_bytes`: the calls'; `startup_s`:
    cold, the instances' time before their call (interpreter, imports). `claim_conflicts`: unit
    invocations that answered in_progress while their unit stayed PENDING (in the chain their message is
    then spent and the unit waits for the sweep; here it is handed out again at once). `at_start` is
    called as the clock starts (after a warm pool is primed); the instances' stderr goes to `log`; each
    instance runs under the command `wrapper()` gives (a profiler), if any; `own_rusage`: each call's
    `max_rss_mib` is its instance's ru_maxrss (instances.py --own-rusage)."""
    load = _reader(env, bucket_folder)
    chain = _Chain(dict(env), run_id, name, warm, most, max_invocations, log, wrapper, own_rusage)
    try:
        if warm:
            chain.prime()
        at_start()
        chain.started = time.perf_counter()
        chain.start(None)
        while chain.running or (chain.landed_after is None and chain.failure is None):
            with contextlib.suppress(queue.Empty):
                chain.take(chain.answers.get(timeout=poll_seconds))
            if chain.landed_after is None and chain.failure is None:
                record = load(run_id, name)
                due = messages_due(record, set(chain.running), chain.handing_out)
                for unit in (due or [])[: chain.free()]:
                    chain.start(unit, unpacking=not _all_staged(record))
    finally:
        chain.finish()
    return chain.report()


def transfer_file_parallel(
    env: Mapping[str, str], run_id: str, name: str, bucket_folder: Path, log: IO[str] | None = None
) -> dict[str, Any]:
    """`drive`, cold (every invocation a new instance): what the fan-out part measures."""
    return drive(env, run_id, name, bucket_folder, warm=False, log=log)


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
                ((f.name, f.url) for f in runtime.ledger.planned_files(run)),
                key=lambda file: not file[0].endswith(".zip"),
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
