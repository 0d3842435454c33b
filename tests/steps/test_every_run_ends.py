"""Every run ends, and says why: the failure policy, deadlines, cancel, and the cases once seen to hang.

Each of these once left a run RUNNING or TRANSFERRING for ever, with no alert and the extract's lease held
(docs/architecture.md). The end state is asserted: the run's state, the alert, the lease, the objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from oci.object_storage.models import CreateMultipartUploadDetails

from fusion_extract.chain.ledger.records import FileState, Run, RunState
from fusion_extract.chain.ledger.store import Ledger
from fusion_extract.chain.transfer.archive_source import ArchiveSource
from fusion_extract.errors import ConflictError, MessageError, TransientError
from fusion_extract.models import JobStatus, OutputFile, SourceVersion
from fusion_extract.ports import FusionApi, ObjectStore
from tests.emulators.fusion import BadLink, ExtractScenario
from tests.emulators.oci.http import Request, Response
from tests.steps.conftest import EXTRACT, MakeSteps, Steps, is_zip
from tests.steps.test_landing_never_lies import WritingMeanwhile

OVERDUE = 900.0  # STEP_OVERDUE_SECONDS, the default
DEADLINE = 10 * 3600.0  # RUN_DEADLINE_HOURS, the default


def status_calls(steps: Steps) -> int:
    return steps.fusion_calls(r"/jobscheduler/v1/jobRequests/\d+$")


# -- permanent errors end the run, at once, with an alert and the lease free ---------------------------


def test_poll_when_a_download_link_leaves_the_api_fails_the_run_and_frees_the_lease(steps: Steps) -> None:
    # Given a job whose output listing links a file outside /api/saas-batch/ (a URL rule)
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(bad_link=BadLink.OUTSIDE_API, seconds_running=1))
    run = steps.start()

    # When the job is followed to its end
    steps.clock.advance(10)
    outcomes = steps.deliver("poll")

    # Then the run failed naming the rule, people were told, the lease is free, and no transfer was asked
    final = steps.run(run.run_id)
    assert outcomes[-1]["outcome"] == "failed"
    assert final.state is RunState.FAILED and final.reason is not None and "refused URL" in final.reason
    assert steps.alerts() == ["failed"]
    assert steps.deps.ledger.lease_holder(EXTRACT) is None
    assert steps.published("transfer") == []


def test_reland_of_a_job_fusion_does_not_know_is_refused_holding_nothing(steps: Steps) -> None:
    # Given no job 99999 in Fusion

    # When an operator asks to re-land it, Then the request is refused with a clear error
    with pytest.raises(MessageError, match="job 99999 does not exist in Fusion"):
        steps.submit(kind="reland", extract=EXTRACT, job_id="99999", mode="full")

    # And nothing was recorded or held
    assert steps.runs() == [] and steps.deps.ledger.lease_holder(EXTRACT) is None


# -- transient errors wait and retry; deadlines and people's attention bound them -----------------------


def test_poll_whose_status_calls_keep_failing_ends_timed_out_at_the_deadline_without_asking_fusion(
    make_steps: MakeSteps,
) -> None:
    # Given a running job whose every status call answers 503 (one try per call)
    steps = make_steps(HTTP_MAX_ATTEMPTS="1")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(seconds_running=DEADLINE * 2))
    run = steps.start()
    steps.fusion.fail_next(r"/jobRequests/\d+$", 503, count=10_000, method="GET")

    # When poll runs, Then the run waits for a retry instead of failing or hanging
    assert steps.deliver("poll")[-1]["outcome"] == "deferred"
    assert steps.run(run.run_id).state is RunState.RUNNING and steps.run(run.run_id).failures == 1

    # When the deadline passes and the sweep runs
    steps.clock.advance(DEADLINE)
    calls_before = status_calls(steps)
    swept = steps.sweep()

    # Then the run ended TIMED_OUT without another status call, people were told, the lease is free
    assert swept["redriven"] == {run.run_id: "timed_out"}
    assert status_calls(steps) == calls_before
    assert steps.run(run.run_id).state is RunState.TIMED_OUT
    assert "timed_out" in steps.alerts()
    assert steps.deps.ledger.lease_holder(EXTRACT) is None


def test_transfer_transient_failures_do_not_count_against_the_file(make_steps: MakeSteps) -> None:
    # Given Object Storage refusing uploads with 503 for longer than FILE_MAX_ATTEMPTS transfers
    steps = make_steps(HTTP_MAX_ATTEMPTS="1", FILE_MAX_ATTEMPTS="2", DEFER_SECONDS="0")
    run = steps.until_transferring()
    first = next(f.name for f in steps.planned(run) if is_zip(f.name))
    steps.oci.inject_fault("PUT", r"/n/[^/]+/b/[^/]+/o/_staging.*", 503, "ServiceUnavailable", times=4)

    # When that file is transferred five times
    outcomes = [steps.transfer(run.run_id, first)["outcome"] for _ in range(5)]

    # Then the outage was waited out, the file landed, and its attempts count only the real one
    assert outcomes == ["retry_scheduled"] * 4 + ["landed"]
    record = steps.file(run.run_id, first)
    assert record.state is FileState.LANDED and record.attempts == 1 and record.retries == 4
    assert steps.run(run.run_id).state is not RunState.FAILED


def test_a_file_whose_transfer_keeps_failing_transiently_tells_a_person_once_naming_the_file(
    make_steps: MakeSteps,
) -> None:
    # Given Object Storage refusing uploads with 503, and a person told after two failures in a row
    steps = make_steps(HTTP_MAX_ATTEMPTS="1", STALL_ALERT_AFTER="2", DEFER_SECONDS="0")
    run = steps.until_transferring()
    first = next(f.name for f in steps.planned(run) if is_zip(f.name))
    steps.oci.inject_fault("PUT", r"/n/[^/]+/b/[^/]+/o/_staging.*", 503, "ServiceUnavailable", times=3)

    # When that file is transferred three times
    outcomes = [steps.transfer(run.run_id, first)["outcome"] for _ in range(3)]

    # Then each waited, and one "stuck" alert named the file, the failures in a row and the latest
    assert outcomes == ["retry_scheduled"] * 3
    [stuck] = [a for a in steps.published("alerts") if a["event"] == "stuck"]
    assert stuck["reason"].startswith(f"{first}: 2 transient failures in a row; the latest: "), stuck


def test_sweep_that_cannot_re_drive_a_run_puts_it_off_naming_the_sweep_and_goes_on(
    make_steps: MakeSteps,
) -> None:
    # Given a run whose poll message was lost, and Notifications refusing every try of the sweep's re-drive
    steps = make_steps(HTTP_MAX_ATTEMPTS="1")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(seconds_running=36_000))
    run = steps.start()
    steps.forget("poll")
    steps.oci.inject_fault("POST", r".*/messages$", 503, "ServiceUnavailable", times=2)

    # When the sweep runs once the poll is overdue
    steps.clock.advance(OVERDUE + 1)
    swept = steps.sweep()

    # Then the run was put off with the failure on record, named as the sweep's
    assert swept["redriven"] == {run.run_id: "deferred"}
    problem = steps.run(run.run_id).problem
    assert problem is not None and problem.startswith("sweep: "), problem
    # And the next sweep, once it is due, re-drives it
    steps.clock.advance(steps.deps.settings.defer_seconds)
    assert steps.sweep()["redriven"] == {run.run_id: "poll"}


def test_sweep_tells_a_person_once_when_it_keeps_re_driving_a_run_without_progress(
    make_steps: MakeSteps,
) -> None:
    # Given a long job whose poll messages are all lost
    steps = make_steps(STALL_ALERT_AFTER="3")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(seconds_running=DEADLINE / 2))
    run = steps.start()

    # When the sweep re-drives it five times, each message lost again
    for _ in range(5):
        steps.forget("poll")
        steps.clock.advance(OVERDUE + 1)
        steps.sweep()

    # Then exactly one "overdue" alert went out, naming the re-drives, and the run still waits
    overdue = [a for a in steps.published("alerts") if a["event"] == "overdue"]
    assert len(overdue) == 1 and "re-drove it 3 times" in overdue[0]["reason"]
    assert steps.run(run.run_id).state is RunState.RUNNING


# -- the ledger and the finish survive crashes and lost answers ------------------------------------------


def test_sweep_quarantines_an_unreadable_run_document_alerts_and_sweeps_the_others(steps: Steps) -> None:
    # Given one run whose poll message was lost, and another run whose document is corrupt
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(seconds_running=36_000))
    steps.fusion.define_extract("Payroll", ExtractScenario(seconds_running=36_000))
    good = steps.start()
    bad = steps.start("Payroll")
    steps.forget("poll")
    steps.deps.store.put_bytes(f"_state/runs/{bad.run_id}.json", b'{"run_id": "half a docu')

    # When the sweep runs once the poll is overdue
    steps.clock.advance(OVERDUE + 1)
    swept = steps.sweep()

    # Then the good run was re-driven, the bad document moved aside, and a person told
    assert swept["redriven"] == {good.run_id: "poll", f"_state/runs/{bad.run_id}.json": "quarantined"}
    assert steps.objects(f"_state/quarantine/runs/{bad.run_id}") == [
        f"_state/quarantine/runs/{bad.run_id}.json"
    ]
    [alert] = [a for a in steps.published("alerts") if a["event"] == "unreadable_document"]
    assert alert["document"] == f"_state/runs/{bad.run_id}.json"
    # And it left the index of runs in flight, so no sweep lists it again
    assert steps.objects(f"_state/active/{bad.run_id}") == []
    # And the next sweep is clean, and Payroll's lease no longer blocks a new run
    assert steps.sweep()["redriven"] == {}
    steps.clock.advance(OVERDUE)
    assert steps.submit(extract="Payroll", mode="full")["outcome"] == "submitted"


def test_sweep_finishes_a_run_whose_transfer_died_between_its_record_and_its_marker(
    make_steps: MakeSteps,
) -> None:
    # Given every file landed, but writing the last two files' landed markers failed after their records
    # were saved
    steps = make_steps(HTTP_MAX_ATTEMPTS="1")
    run = steps.until_transferring()
    names = [f.name for f in steps.planned(run)]
    others, last = names[:-2], names[-2:]
    for name in others:
        steps.transfer(run.run_id, name)
    for name in last:
        steps.oci.inject_fault("PUT", r"/n/[^/]+/b/[^/]+/o/_state%2Flanded%2F.*", 503, "ServiceUnavailable")
        with pytest.raises(TransientError):
            steps.transfer(run.run_id, name)
        assert steps.file(run.run_id, name).state is FileState.LANDED
    assert steps.run(run.run_id).state is RunState.TRANSFERRING

    # When the sweep runs once the run is overdue
    steps.clock.advance(OVERDUE + 1)
    swept = steps.sweep()

    # Then the marker was repaired and the run finished: LANDED, _SUCCESS written, lease free, people told
    assert swept["redriven"] == {run.run_id: "finish"}
    assert steps.run(run.run_id).state is RunState.LANDED
    assert "_SUCCESS" in steps.landed(run)
    assert steps.deps.ledger.lease_holder(EXTRACT) is None
    assert steps.alerts() == ["landed"]


def test_finish_claimed_by_one_finisher_is_not_written_again_by_another(steps: Steps) -> None:
    # Given a run whose files all landed
    run = steps.until_transferring()
    ledger = steps.deps.ledger
    for name in [f.name for f in steps.planned(run)]:
        claimed = ledger.save_file(
            ledger.load_file(run.run_id, name), steps.file(run.run_id, name).but(state=FileState.TRANSFERRING)
        )
        ledger.save_file(claimed, claimed.value.but(state=FileState.LANDED))
        ledger.mark_landed(run.run_id, name)
    current = steps.deps.ledger.load_run(run.run_id)

    # When two finishers start from the same version of the run
    first = steps.deps.finisher.finish_if_complete(current)
    manifest = steps.read(steps.deps.layout.manifest(run))
    second = steps.deps.finisher.finish_if_complete(current)

    # Then only the first finished; the manifest is the first's, and one "landed" alert went out
    assert first is not None and first.result.value == "landed" and second is None
    assert steps.read(steps.deps.layout.manifest(run)) == manifest
    assert steps.alerts() == ["landed"]


class AnswerLost:
    """An ObjectStore whose next conditional write takes effect, but whose answer is lost on the way back:
    the retry then meets its own write, as the SDK's retry of a 503 does (Object Storage answers 412)."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self.lose_next = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def put_bytes(self, name: str, data: bytes, **conditions: Any) -> str:
        etag = self._store.put_bytes(name, data, **conditions)
        if self.lose_next and (conditions.get("if_match") or conditions.get("if_none_match")):
            self.lose_next = False
            return self._store.put_bytes(name, data, **conditions)  # the retry: 412, ConflictError
        return etag


def test_ledger_write_whose_answer_was_lost_counts_as_done_but_another_writer_still_loses(
    ledger_steps: Steps,
) -> None:
    # Given a run, and a store that loses the answer to the next conditional write
    store = AnswerLost(ledger_steps.deps.store)
    ledger = Ledger(store, "_state", clock=ledger_steps.clock)
    now = ledger_steps.clock.now()
    created = ledger.create_run(Run("r1", EXTRACT, "full", RunState.RUNNING, now, now, now, attempt=1))
    changed = created.value.but(state=RunState.TRANSFERRING)

    # When a save takes effect but its retry meets the document it wrote
    store.lose_next = True
    saved = ledger.save_run(created, changed)

    # Then it counts as done (not as a lost race), with the stored version's ETag
    stored = ledger.load_run("r1")
    assert (saved.value, saved.etag) == (stored.value, stored.etag)
    assert saved.value == changed.but(history=saved.value.history) and len(saved.value.history) == 2

    # And a second writer of the very same content from the old version still loses: it is not that write
    with pytest.raises(ConflictError):
        ledger.save_run(created, changed)


# -- cancel ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["run_id", "extract"])
def test_cancel_ends_the_run_frees_the_lease_alerts_and_makes_late_messages_no_ops(
    steps: Steps, by: str
) -> None:
    # Given a running job with its next poll on its way
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(seconds_running=36_000))
    run = steps.start()

    # When an operator cancels it, by its id or by its extract
    answer = steps.submit(
        kind="cancel", **({"run_id": run.run_id} if by == "run_id" else {"extract": EXTRACT})
    )

    # Then it is CANCELLED, people were told, the extract is free, and the late poll does nothing
    assert answer["outcome"] == "cancelled" and answer["run_id"] == run.run_id
    assert answer["job_id"] == run.job_id
    assert steps.run(run.run_id).state is RunState.CANCELLED
    assert steps.alerts() == ["cancelled"]
    assert steps.deps.ledger.lease_holder(EXTRACT) is None
    assert [o["outcome"] for o in steps.deliver("poll")] == ["stale"]
    assert steps.submit(extract=EXTRACT, mode="full")["outcome"] == "submitted"


def test_a_cancel_that_meets_another_steps_write_of_the_run_leaves_it_to_that_step(steps: Steps) -> None:
    # Given a running run, and another step saving it just before the cancel writes it
    run = steps.start()
    other = Ledger(steps.deps.store, steps.deps.settings.state_prefix)

    def meanwhile() -> None:
        current = other.load_run(run.run_id)
        other.save_run(current, current.value.but(redrives=1))

    healthy = steps.deps
    steps.deps = steps.container()
    steps.deps.store = WritingMeanwhile(steps.deps.store, f"/runs/{run.run_id}.json", meanwhile)

    # When an operator cancels it
    answer = steps.submit(kind="cancel", run_id=run.run_id)
    steps.deps = healthy

    # Then the answer says the run is in progress, naming it; the run goes on and nobody was told
    assert (answer["outcome"], answer["run_id"]) == ("in_progress", run.run_id)
    assert steps.run(run.run_id).state is RunState.RUNNING and steps.alerts() == []
    # And a second cancel ends it
    assert steps.submit(kind="cancel", run_id=run.run_id)["outcome"] == "cancelled"


@dataclass
class CancelledWhileAsked:
    """A Fusion whose job status call is answered only after an operator cancelled the run."""

    inner: FusionApi
    steps: Steps
    run_id: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def job_status(self, job_id: str) -> JobStatus:
        self.steps.submit(kind="cancel", run_id=self.run_id)
        return self.inner.job_status(job_id)


def test_a_poll_that_fails_after_its_run_was_cancelled_answers_stale_and_changes_nothing(
    make_steps: MakeSteps,
) -> None:
    # Given a running run whose next status call fails (503), the run cancelled while it is asked
    steps = make_steps(HTTP_MAX_ATTEMPTS="1")
    assert steps.fusion is not None
    run = steps.start()
    steps.fusion.fail_next(r"/jobRequests/\d+$", 503, method="GET")
    steps.deps.fusion = CancelledWhileAsked(steps.deps.fusion, steps, run.run_id)

    # When the poll is delivered
    [answer] = steps.deliver("poll")

    # Then its failure changes nothing: the answer names the run and its final state; it stays CANCELLED
    assert (answer["outcome"], answer["run_id"], answer["state"]) == ("stale", run.run_id, "CANCELLED")
    assert steps.run(run.run_id).state is RunState.CANCELLED and steps.alerts() == ["cancelled"]


def test_cancel_of_a_finished_run_changes_nothing(steps: Steps) -> None:
    # Given a run that landed
    run = steps.until_transferring()
    steps.deliver("transfer")

    # When it is cancelled, Then nothing changes and nobody is told again; the answer says why
    answer = steps.submit(kind="cancel", run_id=run.run_id)
    assert (answer["outcome"], answer["run_id"], answer["state"]) == ("nothing_to_do", run.run_id, "LANDED")
    assert steps.run(run.run_id).state is RunState.LANDED and steps.alerts() == ["landed"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"run_id": "20260301T080000Z-none"}, "no run '20260301T080000Z-none' to cancel"),
        ({"extract": "Idle"}, "extract 'Idle' has no active run to cancel"),
    ],
)
def test_cancel_of_nothing_is_refused_with_a_clear_error(
    steps: Steps, body: dict[str, str], problem: str
) -> None:
    with pytest.raises(MessageError, match=problem):
        steps.submit(kind="cancel", **body)


# -- the sweep's cost follows the active runs ------------------------------------------------------------


def test_sweep_reads_only_the_active_runs_however_long_the_history(steps: Steps) -> None:
    # Given 30 runs that ended long ago and one that runs now
    assert steps.fusion is not None
    for _ in range(30):
        run = steps.start()
        steps.submit(kind="cancel", run_id=run.run_id)
    steps.fusion.define_extract(EXTRACT, ExtractScenario(seconds_running=36_000))
    active = steps.start()
    steps.sweep()  # the first sweep indexes a ledger written before the index existed, once
    served = len(steps.oci.served)

    # When the sweep runs
    steps.sweep()

    # Then it read one run document, the active one
    reads = [
        path
        for method, path, _ in steps.oci.served[served:]
        if method == "GET" and "_state%2Fruns%2F" in path
    ]
    assert reads == [f"/n/emuns/b/landing/o/_state%2Fruns%2F{active.run_id}.json"]


def test_sweep_indexes_runs_recorded_before_the_index_existed(steps: Steps) -> None:
    # Given a running run whose poll was lost, recorded by a release that kept no index of active runs
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(seconds_running=36_000))
    run = steps.start()
    steps.forget("poll")
    steps.deps.store.delete(f"_state/active/{run.run_id}")

    # When the sweep runs once the poll is overdue
    steps.clock.advance(OVERDUE + 1)

    # Then it found the run all the same, and indexed it
    assert steps.sweep()["redriven"] == {run.run_id: "poll"}
    assert steps.objects("_state/active/") == [f"_state/active/{run.run_id}"]


def test_transfer_after_a_killed_attempt_aborts_the_upload_it_left_open(steps: Steps) -> None:
    # Given a file whose first transfer was killed mid-upload: claimed, its multipart upload left open
    run = steps.until_transferring()
    name = next(f.name for f in steps.planned(run) if is_zip(f.name))
    current = steps.deps.ledger.load_file(run.run_id, name)
    claimed = current.value.but(state=FileState.TRANSFERRING, attempts=1, claimed_at=steps.clock.now())
    steps.deps.ledger.save_file(current, claimed)
    client = steps.deps.oci.object_storage
    details = CreateMultipartUploadDetails(object=f"_staging/{run.run_id}/{name}/1/members/part.csv")
    client.create_multipart_upload("emuns", "landing", details)

    # When, its claim gone stale, the file is transferred again (the run's other files still to come)
    steps.clock.advance(OVERDUE + 1)
    answer = steps.transfer(run.run_id, name)

    # Then it landed, and the dead attempt's upload is no longer open
    assert answer["outcome"] == "landed" and steps.run(run.run_id).state is RunState.TRANSFERRING
    assert client.list_multipart_uploads("emuns", "landing").data == []


@dataclass
class CancellingSource:
    """An archive source that cancels the run as the first bytes arrive (an operator, mid-transfer)."""

    inner: ArchiveSource
    steps: Steps
    run_id: str

    def open(self, file: OutputFile, start: int = 0, version: SourceVersion | None = None) -> Iterator[bytes]:
        chunks = self.inner.open(file, start, version)
        yield next(chunks)
        self.steps.submit(kind="cancel", run_id=self.run_id)
        yield from chunks


def test_transfer_when_the_run_is_cancelled_mid_download_lands_nothing_and_leaves_nothing(
    steps: Steps,
) -> None:
    # Given a run whose file is being downloaded when an operator cancels the run
    run = steps.until_transferring()
    name = next(f.name for f in steps.planned(run) if is_zip(f.name))
    steps.deps.archives = CancellingSource(steps.deps.archives, steps, run.run_id)

    # When the transfer finishes its download
    answer = steps.transfer(run.run_id, name)

    # Then nothing became visible and nothing is left staged; the run stays CANCELLED
    assert answer["outcome"] == "stale"
    assert steps.landed(run) == [] and steps.objects("_staging/") == []
    assert steps.run(run.run_id).state is RunState.CANCELLED


def test_transfer_when_the_run_is_cancelled_mid_unpacking_lands_nothing_and_leaves_nothing(
    steps: Steps,
) -> None:
    # Given a run whose archive is being unpacked when an operator cancels the run (as its first member is
    # staged)
    run = steps.until_transferring()
    name = next(f.name for f in steps.planned(run) if is_zip(f.name))
    cancelled: list[str] = []

    def cancel_first(request: Request, serve: Callable[[Request], Response]) -> Response:
        if not cancelled:
            cancelled.append(steps.submit(kind="cancel", run_id=run.run_id)["outcome"])
        return serve(request)

    steps.oci.intercept("PUT", r"/n/[^/]+/b/[^/]+/o/_staging%2F.*%2Fmembers%2F.*", cancel_first)

    # When the transfer goes on unpacking
    answer = steps.transfer(run.run_id, name)

    # Then nothing became visible and nothing is left staged; the run stays CANCELLED
    assert cancelled == ["cancelled"] and (answer["outcome"], answer["file"]) == ("stale", name)
    assert steps.landed(run) == [] and steps.objects("_staging/") == []
    assert steps.run(run.run_id).state is RunState.CANCELLED


# -- the real service's quirks ----------------------------------------------------------------------------


def test_poll_takes_completed_without_confirmation_as_success_after_the_grace_and_says_so(
    steps: Steps,
) -> None:
    # Given a job that ends COMPLETED and never sets jobProgress.completed
    assert steps.fusion is not None
    steps.fusion.define_extract(
        EXTRACT, ExtractScenario(outcome="COMPLETED", completed_flag=None, seconds_running=1, chunks=1)
    )
    run = steps.start()

    ended = steps.clock.now() + timedelta(seconds=2)  # 1 s enqueued, 1 s running

    # When poll follows it (one step hands on to the next as long as the job runs)
    outcomes = steps.follow(run.run_id)

    # Then it kept polling through the grace (COMPLETED_GRACE_SECONDS, 30 minutes), then took the files
    assert outcomes[0]["outcome"] == "running" and outcomes[-1]["outcome"] == "transferring"
    assert steps.clock.now() - ended >= timedelta(seconds=1800)
    steps.deliver("transfer")
    landed = steps.run(run.run_id)
    assert landed.state is RunState.LANDED and landed.assumed_complete
    manifest = json.loads(steps.read(steps.deps.layout.manifest(landed)))
    assert manifest["job_completion"] == "assumed"
    assert steps.alerts() == ["assumed_complete", "landed"]


def test_poll_when_the_extract_definition_does_not_exist_fails_after_one_job(steps: Steps) -> None:
    # Given a mistyped extract name (Fusion runs the job and fails it: the definition does not exist)

    # When it is submitted and followed
    run = steps.start("Salse")
    steps.clock.advance(10)
    steps.deliver("poll")
    steps.deliver("rerun")

    # Then the run failed for good after one job, naming the validation failure
    final = steps.run(run.run_id)
    assert final.state is RunState.FAILED and final.reason is not None and "does not exist" in final.reason
    assert steps.fusion is not None and len(steps.fusion.jobs) == 1
    assert steps.alerts() == ["failed"]


def test_a_run_whose_step_keeps_failing_transiently_tells_a_person_once_naming_the_latest_failure(
    make_steps: MakeSteps,
) -> None:
    # Given a Fusion answering every status call 503, and a person told after two failures in a row
    steps = make_steps(STALL_ALERT_AFTER="2", DEFER_SECONDS="0", HTTP_MAX_ATTEMPTS="1")
    assert steps.fusion is not None
    run = steps.start()
    steps.fusion.fail_next(r"/jobRequests/\d+$", 503, count=100, method="GET")

    # When poll runs, and the sweep brings it back three times
    outcomes = steps.deliver("poll")
    for _ in range(3):
        steps.sweep()
        outcomes += steps.deliver("poll")

    # Then each poll was put off, the run still waits, and one "stuck" alert went out at the second failure
    assert [o["outcome"] for o in outcomes] == ["deferred"] * 4
    assert steps.run(run.run_id).state is RunState.RUNNING
    [stuck] = [a for a in steps.published("alerts") if a["event"] == "stuck"]
    assert stuck["reason"].startswith("2 failures in a row; the latest: poll: "), stuck
    assert "503" in stuck["reason"]


def test_poll_when_status_answers_are_not_json_fails_after_malformed_tries(make_steps: MakeSteps) -> None:
    # Given a proxy answering every status call with an HTML page, and two tries allowed
    steps = make_steps(MALFORMED_TRIES="2", DEFER_SECONDS="0")
    assert steps.fusion is not None
    run = steps.start()
    steps.fusion.fail_next(r"/jobRequests/\d+$", 200, count=100, method="GET", body=b"<html>gateway</html>")

    # When poll runs, and the sweep brings it back
    first = steps.deliver("poll")
    steps.sweep()
    second = steps.deliver("poll")

    # Then the first was put off, the second failed the run, naming the problem; the lease is free
    assert first[-1]["outcome"] == "deferred" and second[-1]["outcome"] == "failed"
    assert second[-1]["run_id"] == run.run_id
    final = steps.run(run.run_id)
    assert final.state is RunState.FAILED and final.reason is not None and "not JSON" in final.reason
    assert steps.deps.ledger.lease_holder(EXTRACT) is None
