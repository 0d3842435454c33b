"""A run's history (chain/ledger/history.py): each event is noted, with its time and invocation, by the very
write of the step that makes it; the documents keep it bounded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from fusion_extract import logging as jsonlog
from fusion_extract.chain.ledger.records import HISTORY_KEPT, Entry, FileState, History, RunState, What
from fusion_extract.clock import isoformat
from tests.emulators.fusion import ExtractScenario
from tests.steps.conftest import EXTRACT, MakeSteps, Steps, is_zip


@contextmanager
def call(call_id: str) -> Iterator[None]:
    """One function invocation, as fdk names it (function.py binds its call id to the log context)."""
    with jsonlog.bind(call_id=call_id):
        yield


def kinds(entries: tuple[Entry, ...] | Any) -> list[str]:
    return [entry.what.value for entry in entries]


def only(entries: Any, what: What) -> list[Entry]:
    return [entry for entry in entries if entry.what is what]


def writes_of(steps: Steps, run_id: str) -> int:
    """PUTs of the run's document the emulator served so far."""
    name = f"_state%2Fruns%2F{run_id}.json"
    return sum(1 for method, path, _ in steps.oci.served if method == "PUT" and path.endswith(name))


def test_history_notes_the_creation_and_the_job_with_the_call_that_submitted_it(steps: Steps) -> None:
    # Given a run request, When submit runs in invocation "call-1"
    with call("call-1"):
        run = steps.start()

    # Then its history has its creation, the job with its request id and attempt, and its move to RUNNING
    history = steps.run(run.run_id).history
    assert kinds(history) == ["changed", "changed", "job"]
    created, moved, job = history.entries
    assert (created.source, created.to, moved.source, moved.to) == (
        None, RunState.SUBMITTING, RunState.SUBMITTING, RunState.RUNNING,
    )  # fmt: skip
    assert job.facts == {"job_id": run.job_id, "attempt": 1}
    # And each at the time of its write, by that invocation
    assert {entry.call_id for entry in history} == {"call-1"}
    assert {entry.at for entry in history} == {steps.clock.now()}


def test_history_notes_the_job_in_the_write_that_records_it(steps: Steps) -> None:
    # Given a run request, When submit runs
    served = len(steps.oci.served)
    run = steps.start()

    # Then its document was written twice (created; RUNNING with its job): none for the history alone
    assert writes_of(steps, run.run_id) == 2, steps.oci.served[served:]


def test_history_notes_a_transient_failure_with_its_problem_and_retry(make_steps: MakeSteps) -> None:
    # Given Fusion answering the job POST with 503, one attempt per HTTP call
    steps = make_steps(HTTP_MAX_ATTEMPTS="1")
    assert steps.fusion is not None
    steps.fusion.fail_next(r"/jobRequests$", 503, method="POST")

    # When a run request arrives in invocation "call-7"
    with call("call-7"):
        steps.submit(extract=EXTRACT, mode="full")

    # Then the failed attempt is in its history: how many in a row, the problem, when it is tried again
    [run] = steps.runs()
    [attempt] = only(run.history, What.ATTEMPT)
    assert attempt.call_id == "call-7" and attempt.facts["failures"] == 1
    assert "503" in str(attempt.facts["problem"])
    assert attempt.facts["retry_at"] == isoformat(steps.clock.now() + timedelta(seconds=60))


def test_history_notes_each_claim_of_a_file_and_of_its_units_in_the_file_document(steps: Steps) -> None:
    # Given a run whose job succeeded
    run = steps.until_transferring()
    [name] = [f.name for f in steps.planned(run) if is_zip(f.name)][:1]

    # When the transfer of one of its archives runs in invocation "call-9"
    with call("call-9"):
        steps.transfer(run.run_id, name)

    # Then the file's history has its claim (attempt 1) and the claim of its unit, by that invocation
    record = steps.file(run.run_id, name)
    assert record.state is FileState.LANDED
    claims = only(record.history, What.CLAIM)
    assert [entry.facts for entry in claims] == [
        {"file": name, "attempt": 1},
        {"file": name, "unit": 0, "work": "WORKING"},
        {"file": name, "unit": 0, "work": "PROMOTING"},
    ]
    assert {entry.call_id for entry in claims} == {"call-9"}


def test_history_notes_each_failed_attempt_of_a_file_and_when_it_was_given_up(make_steps: MakeSteps) -> None:
    # Given a ZIP listed with a checksum it does not have, 3 attempts per file, retries due at once
    steps = make_steps(FILE_MAX_ATTEMPTS="3", FILE_RETRY_SECONDS="0")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(chunks=1, wrong_checksum=True))
    run = steps.until_transferring()

    # When its transfer messages are delivered (the retry included)
    steps.deliver("transfer", keep=lambda message: is_zip(message["files"][0]))

    # Then the file's history has three claims, two failed attempts tried again (the same problem each
    # time), and the last given up
    [name] = [f.name for f in steps.planned(run) if is_zip(f.name)]
    history = steps.file(run.run_id, name).history
    assert kinds(history) == ["claim", "attempt", "claim", "attempt", "claim", "attempt"]
    first, second, last = only(history, What.ATTEMPT)
    assert first.facts["problem"] == second.facts["problem"] and "SHA-256" in str(first.facts["problem"])
    assert "retry_at" in first.facts and "retry_at" in second.facts
    assert last.facts.get("given_up") == 1 and "retry_at" not in last.facts
    # And the run's history has the failure and the alert that told people, titled as they read it
    failed = steps.run(run.run_id)
    [alert] = only(failed.history, What.ALERT)
    assert alert.facts == {"event": "failed", "title": f"FAILED {EXTRACT} {run.run_id}"}
    assert failed.history.changes[-1].facts["reason"] == failed.reason
    assert steps.alerts() == ["failed"]


def test_history_notes_the_landed_alert_in_the_write_that_lands_the_run(steps: Steps) -> None:
    # Given a run whose job succeeded, When every file is transferred
    run = steps.until_transferring()
    steps.deliver("transfer")

    # Then the move to LANDED and its alert are noted together
    landed = steps.run(run.run_id)
    assert landed.state is RunState.LANDED
    assert kinds(landed.history)[-2:] == ["changed", "alert"]
    last_change, alert = landed.history.entries[-2:]
    assert last_change.to is RunState.LANDED and alert.at == last_change.at
    assert alert.facts == {"event": "landed", "title": f"LANDED {EXTRACT} {run.run_id}"}


def test_history_links_a_rerun_both_ways(make_steps: MakeSteps) -> None:
    # Given a run that failed for good
    steps = make_steps(RUN_MAX_ATTEMPTS="1")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(fail_first_jobs=1))
    failed = steps.start()
    steps.deliver("poll")

    # When an operator reruns it, in invocation "call-3"
    steps.clock.advance(3600)
    with call("call-3"):
        rerun_id = steps.submit(kind="rerun", run_id=failed.run_id)["run_id"]

    # Then the new run says what it reruns, and the failed run what reran it; the failed run stays FAILED
    [rerun_of] = only(steps.run(rerun_id).history, What.RERUN)
    old = steps.run(failed.run_id)
    [rerun_by] = only(old.history, What.RERUN)
    assert rerun_of.facts == {"rerun_of": failed.run_id} and rerun_by.facts == {"rerun_by": rerun_id}
    assert (rerun_by.call_id, rerun_by.at) == ("call-3", steps.clock.now())
    assert old.state is RunState.FAILED and old.reruns == (rerun_id,)


def test_history_notes_each_redrive_of_the_sweep(make_steps: MakeSteps) -> None:
    # Given a run whose poll message was lost (its job runs a while)
    steps = make_steps()
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(seconds_running=3600))
    run = steps.start()
    steps.forget("poll")

    # When the sweep finds it overdue, in invocation "sweep-1"
    steps.clock.advance(1000)  # past STEP_OVERDUE_SECONDS
    with call("sweep-1"):
        steps.sweep()

    # Then the re-drive is in its history
    [redrive] = only(steps.run(run.run_id).history, What.REDRIVE)
    assert (redrive.facts, redrive.call_id) == ({"redrives": 1}, "sweep-1")


def test_history_of_a_file_stays_bounded_and_counts_what_it_dropped(steps: Steps) -> None:
    # Given a planned file claimed and paused far more often than its history keeps
    run = steps.until_transferring()
    name = steps.planned(run)[0].name
    ledger = steps.deps.ledger
    current = ledger.load_file(run.run_id, name)
    rounds = HISTORY_KEPT + 10
    for n in range(rounds):
        claimed = current.value.but(state=FileState.TRANSFERRING, attempts=n + 1)
        paused = claimed.but(state=FileState.PENDING, attempts=n)  # a pause gives its attempt back
        current = ledger.save_file(ledger.save_file(current, claimed), paused)

    # Then its document keeps the latest HISTORY_KEPT claims and counts the ones it dropped
    history = steps.file(run.run_id, name).history
    assert (len(history), history.dropped) == (HISTORY_KEPT, 10)
    assert history.entries[-1].facts == {"file": name, "attempt": rounds}
    assert history.since(rounds - 1) == history.entries[-1:]


def test_history_notes_a_unit_put_off_by_a_transient_failure(make_steps: MakeSteps) -> None:
    # Given a run whose job succeeded, and Object Storage answering the first upload of a member 503
    steps = make_steps(HTTP_MAX_ATTEMPTS="1")
    run = steps.until_transferring()
    name = next(f.name for f in steps.planned(run) if is_zip(f.name))
    steps.oci.inject_fault(
        "PUT", r"/n/[^/]+/b/[^/]+/o/_staging%2F.*%2Fmembers%2F.*", 503, "ServiceUnavailable"
    )

    # When the archive is transferred in invocation "call-5"
    with call("call-5"):
        outcome = steps.transfer(run.run_id, name)

    # Then the unit's failure is in the file's history: which unit, how many in a row, when it goes on
    assert outcome["outcome"] == "retry_scheduled", outcome
    [failed] = only(steps.file(run.run_id, name).history, What.ATTEMPT)
    unit = steps.file(run.run_id, name).units[0]
    assert unit.next_at is not None
    assert failed.facts == {"file": name, "unit": 0, "retries": 1, "retry_at": isoformat(unit.next_at)}
    assert failed.call_id == "call-5"


def test_history_is_the_ledgers_own_a_step_cannot_save_over_it(steps: Steps) -> None:
    # Given a started run, and a step's copy of it whose history was lost
    run = steps.start()
    ledger = steps.deps.ledger
    current = ledger.load_run(run.run_id)
    copy = current.value.but(history=History(), polls=1)

    # When the copy is saved, Then the run keeps every entry it had
    saved = ledger.save_run(current, copy)
    assert saved.value.history == current.value.history and saved.value.polls == 1
