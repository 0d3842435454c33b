"""`make faults`: the chain under faults and hostile input, each scenario judged by its END STATE.

The fixtures are the steps harness's (tests/steps/conftest.py): each step in-process through the real
adapters against both emulators, on one ManualClock. `assert_end_state` is the one judgement every scenario
ends with: the run's final state, the bucket (exactly the expected objects with the expected bytes,
nothing partial, nothing stray, `_staging/` empty, no open upload), the lease free, the alert a person
needs, and one Fusion job per attempt.

Every log line the product emits during a scenario (its own JSON formatter, as the functions log) is
scanned for the credentials' secret and every token the Fusion emulator issued: none may appear.

At the end of the session a table lists every scenario of this folder and its outcome, then a line
`N passed, M failed` alone (an xfail, a product bug kept on record, counts as failed).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from fusion_extract.chain.ledger.records import FileState, Run, RunState
from fusion_extract.logging import JsonFormatter
from tests.emulators.chain import CLIENT_SECRET as CHAIN_CLIENT_SECRET
from tests.emulators.fusion.outputs import job_outputs
from tests.steps.conftest import *  # noqa: F403  (the fixtures: clock, oci, ons, topics, fusion, steps...)
from tests.steps.conftest import BUCKET, CLIENT_SECRET, Steps

FINAL_EVENT = {
    RunState.LANDED: "landed",
    RunState.FAILED: "failed",
    RunState.TIMED_OUT: "timed_out",
    RunState.CANCELLED: "cancelled",
}


@dataclass(frozen=True)
class Expect:
    """What a scenario's run must end as."""

    state: RunState
    reason: str | None = None  # a phrase the run's reason must contain
    alerts: tuple[str, ...] = ()  # other alerts a person must have had about the run, once each
    jobs: int | None = None  # Fusion jobs for the run (default: one per attempt)
    allow: tuple[str, ...] = ()  # other object prefixes the scenario put in the bucket itself


LANDED = Expect(RunState.LANDED)


def assert_end_state(steps: Steps, run: Run | str, expect: Expect = LANDED) -> Run:
    """The whole end state of one run; returns the run as the ledger holds it."""
    run_id = run if isinstance(run, str) else run.run_id
    final = steps.run(run_id)
    # The ledger: the expected final state, for the expected reason, no longer indexed as active.
    assert final.state is expect.state, f"{run_id} is {final.state} ({final.reason}), not {expect.state}"
    if expect.reason is not None:
        assert final.reason is not None and expect.reason in final.reason, final.reason
    assert steps.objects(f"_state/active/{run_id}") == [], "a final run is still indexed as active"
    # The lease: free of this run.
    assert steps.deps.ledger.lease_holder(final.extract) != run_id, "the lease is still held"
    # Staging: empty, and no multipart upload left open.
    assert steps.objects("_staging/") == [], steps.objects("_staging/")
    assert steps.oci.objectstorage.uploads.in_bucket(BUCKET) == [], "an upload was left open"
    # People: the final alert exactly once, and every other alert the scenario calls for, once.
    events = [a["event"] for a in steps.published("alerts") if a.get("run_id") == run_id]
    assert events.count(FINAL_EVENT[expect.state]) == 1, events
    for event in expect.alerts:
        assert events.count(event) == 1, (event, events)
    # Fusion: exactly one job per attempt, found by the run token in its description.
    _assert_one_job_per_attempt(steps, final, expect)
    # The bucket: the run folder holds exactly what landed, whole and verified; nothing stray anywhere.
    _assert_run_folder(steps, final)
    _assert_nothing_stray(steps, expect.allow)
    return final


def _assert_one_job_per_attempt(steps: Steps, run: Run, expect: Expect) -> None:
    if steps.fusion is None:
        return
    tokens = [str(job.request.get("description", "")) for job in steps.fusion.jobs]
    mine = [token for token in tokens if f"{run.run_id}-a" in token]
    expected = expect.jobs if expect.jobs is not None else (0 if run.reland else run.attempt)
    assert len(mine) == expected, f"{len(mine)} jobs for {run.run_id}, {expected} expected: {mine}"
    for attempt in range(1, run.attempt + 1):
        assert sum(f"{run.run_id}-a{attempt}" in t for t in mine) <= 1, f"attempt {attempt} submitted twice"


def _assert_run_folder(steps: Steps, run: Run) -> None:
    if run.job_id is None:
        return
    folder = steps.deps.layout.run_folder(run)
    present = set(steps.landed(run))
    records = {r.value.name: r.value for r in steps.deps.ledger.files(run.run_id)}
    if run.state.final and run.state is not RunState.LANDED:
        # A run that ends without landing leaves nothing in its folder.
        assert present == set(), f"left in the folder of a {run.state.value} run: {sorted(present)}"
        return
    if run.state is not RunState.LANDED:
        # Nothing says complete, and whatever is visible is a whole member of a file that landed.
        assert "_SUCCESS" not in present and "_manifest.json" not in present, present
        verified = {m.path: m for r in records.values() if r.state is FileState.LANDED for m in r.members}
        listed = {r.name for r in records.values() if r.state is FileState.LANDED and not r.members}
        assert present <= set(verified) | listed, f"partial or stray objects: {present - set(verified)}"
        for path in present & set(verified):
            data = steps.read(f"{folder}/{path}")
            assert hashlib.sha256(data).hexdigest() == verified[path].sha256, path
        return
    assert all(r.state is FileState.LANDED for r in records.values()), records
    expected = _expected_objects(steps, run)
    assert present == {*expected, "_manifest.json", "_SUCCESS"}, present ^ {*expected, "_manifest.json"}
    for path, data in expected.items():
        assert steps.read(f"{folder}/{path}") == data, f"{path} differs from what Fusion produced"
    assert steps.read(f"{folder}/_SUCCESS") == b""
    manifest = json.loads(steps.read(f"{folder}/_manifest.json"))
    sources = _source_digests(steps, run)
    for entry in manifest["files"]:
        if entry["name"] in sources:  # (a file listed under an unsafe name lands under another)
            assert entry["sha256"] == sources[entry["name"]], f"{entry['name']}: not the source's SHA-256"
        for member in entry.get("members", []):
            assert member["sha256"] == hashlib.sha256(expected[member["path"]]).hexdigest()


def _expected_objects(steps: Steps, run: Run) -> dict[str, bytes]:
    """What Fusion produced for the run's job, unpacked independently of the product (zipfile)."""
    if steps.fusion is None or run.job_id is None:
        return {}
    expected: dict[str, bytes] = {}
    for output in job_outputs(steps.fusion.job(run.job_id)):
        data = b"".join(output.read(0, output.digest().size))
        if output.name.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                expected.update({i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()})
        else:
            expected[output.name] = data
    return expected


def _source_digests(steps: Steps, run: Run) -> dict[str, str]:
    """The SHA-256 of each output file of the run's job, as Fusion produced it (not as the product saw it)."""
    if steps.fusion is None or run.job_id is None:
        return {}
    outputs = job_outputs(steps.fusion.job(run.job_id))
    return {output.name: output.digest().sha256 for output in outputs}


def _assert_nothing_stray(steps: Steps, allow: tuple[str, ...]) -> None:
    folders = tuple(steps.deps.layout.run_folder(r) + "/" for r in steps.runs() if r.job_id is not None)
    stray = [name for name in steps.objects("") if not name.startswith(("_state/", *folders, *allow))]
    assert stray == [], f"stray objects: {stray}"


# -- secrets never logged ----------------------------------------------------------------------------------


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(autouse=True)
def no_secret_logged(request: pytest.FixtureRequest) -> Iterator[_Lines]:
    """Every line logged during the scenario, formatted as the functions emit it, free of secrets."""
    # Fusion's tokens are read after the scenario: Fusion must outlive this fixture.
    fusion = request.getfixturevalue("fusion") if "fusion" in request.fixturenames else None
    lines, root = _Lines(), logging.getLogger()
    level = root.level
    root.addHandler(lines)
    root.setLevel(min(level, logging.INFO) or logging.INFO)
    try:
        yield lines
    finally:
        root.removeHandler(lines)
        root.setLevel(level)
    secrets = {CLIENT_SECRET, CHAIN_CLIENT_SECRET}
    if fusion is not None:
        secrets |= set(fusion.issued_tokens)
    secrets |= set(getattr(request.node, "extra_secrets", ()))
    leaked = [line for line in lines.lines for secret in secrets if secret and secret in line]
    assert leaked == [], f"a secret or token was logged: {leaked[:3]}"


# -- the table -------------------------------------------------------------------------------------------


@dataclass
class _Table:
    rows: dict[str, str] = field(default_factory=dict)  # scenario -> outcome, in the order they ran


_TABLE = _Table()
_RANK = {"passed": 0, "skipped": 1, "xfailed": 2, "failed": 3}


def _scenario(nodeid: str) -> tuple[str, str] | None:
    path, _, name = nodeid.partition("::")
    if "tests/faults/" not in path:
        return None
    module = path.rsplit("/", 1)[-1]
    kind = "hostile" if "hostile" in module else "property" if "property" in module else "fault"
    return kind, name


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    found = _scenario(report.nodeid)
    if found is None:
        return
    key = f"{found[0]:<8} {found[1]}"
    # An xfail is a product bug on record; an XPASS(strict) fails.
    outcome = ("xfailed" if report.skipped else "failed") if hasattr(report, "wasxfail") else report.outcome
    if report.when != "call" and outcome == "passed":
        _TABLE.rows.setdefault(key, "passed")
        return
    previous = _TABLE.rows.get(key, "passed")
    _TABLE.rows[key] = outcome if _RANK.get(outcome, 3) >= _RANK.get(previous, 0) else previous


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _TABLE.rows:
        return
    write = terminalreporter.write_line
    width = max(len(k) for k in _TABLE.rows)
    write("")
    write(f"{'kind     scenario':<{width}}  outcome")
    write("-" * (width + 10))
    for key, outcome in _TABLE.rows.items():
        write(f"{key:<{width}}  {outcome}")
    kinds: dict[str, int] = {}
    for key in _TABLE.rows:
        kinds[key.split()[0]] = kinds.get(key.split()[0], 0) + 1
    write("-" * (width + 10))
    write("scenarios: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
    passed = sum(1 for outcome in _TABLE.rows.values() if outcome == "passed")
    failed = sum(1 for outcome in _TABLE.rows.values() if outcome in ("failed", "xfailed"))
    write(f"{passed} passed, {failed} failed")
