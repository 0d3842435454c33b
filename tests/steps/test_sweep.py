"""The sweep (poll in sweep mode, on a schedule): re-drives every run whose next step is overdue or due."""

from __future__ import annotations

from fusion_extract.chain.ledger.records import FileState, RunState
from tests.emulators.fusion import ExtractScenario
from tests.steps.conftest import EXTRACT, MakeSteps, Steps, is_zip

OVERDUE = 900.0  # STEP_OVERDUE_SECONDS, the default


def test_sweep_reposts_the_poll_of_a_running_run_with_a_new_seq_once_overdue(steps: Steps) -> None:
    # Given a running job whose first poll message was lost
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(seconds_running=36_000))
    run = steps.start()
    steps.forget("poll")

    # When the sweep runs before the poll is overdue, Then it leaves the run alone
    steps.clock.advance(OVERDUE)
    assert steps.sweep() == {"outcome": "swept", "redriven": {}}
    assert len(steps.published("poll")) == 1

    # When it runs once the poll is overdue
    steps.clock.advance(1)
    swept = steps.sweep()

    # Then it published a poll with a new seq, which the run now expects
    assert swept["redriven"] == {run.run_id: "poll"}
    assert steps.published("poll")[-1] == {"v": 1, "kind": "poll", "run_id": run.run_id, "seq": 2}
    assert steps.run(run.run_id).poll_seq == 2
    # And the lost message, if it ever arrives, is stale, while the new one follows the job
    assert steps.poll(run.run_id, 1)["outcome"] == "stale"
    assert steps.poll(run.run_id, 2)["outcome"] == "running"


def test_sweep_republishes_a_rerun_for_a_submitting_run_once_overdue(steps: Steps) -> None:
    # Given a run whose submit died after Fusion received the job
    run, job_id = steps.crashed_submit()

    # When the sweep runs before and after the submit is overdue
    steps.clock.advance(OVERDUE)
    early = steps.sweep()
    steps.clock.advance(1)
    late = steps.sweep()

    # Then only the late sweep asked for a rerun, and that rerun resumes the run with its job
    assert early["redriven"] == {}
    assert late["redriven"] == {run.run_id: "rerun"}
    assert steps.published("rerun") == [{"v": 1, "kind": "rerun", "run_id": run.run_id, "attempt": 1}]
    assert steps.deliver("rerun")[0]["outcome"] == "submitted"
    assert steps.run(run.run_id).job_id == job_id
    assert steps.fusion is not None and len(steps.fusion.jobs) == 1


def test_sweep_republishes_the_rerun_of_a_rerun_pending_run_when_due(steps: Steps) -> None:
    # Given a run whose first job failed, its rerun due 300 s later
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(fail_first_jobs=1))
    run = steps.start()
    steps.deliver("poll")
    due = steps.run(run.run_id).next_at

    # When the sweep runs before and at next_at
    steps.clock.advance((due - steps.clock.now()).total_seconds() - 1)
    early = steps.sweep()
    steps.clock.advance(1)
    on_time = steps.sweep()

    # Then the rerun of attempt 2 was asked for when due, and it submits attempt 2
    assert early["redriven"] == {}
    assert on_time["redriven"] == {run.run_id: "rerun"}
    assert steps.published("rerun") == [{"v": 1, "kind": "rerun", "run_id": run.run_id, "attempt": 2}]
    assert steps.deliver("rerun")[0]["outcome"] == "submitted"
    assert steps.run(run.run_id).attempt == 2


def test_sweep_republishes_lost_transfer_messages_once_overdue(steps: Steps) -> None:
    # Given a run whose job succeeded, and every transfer message lost
    run = steps.until_transferring()
    steps.forget("transfer")
    fanned_out = len(steps.published("transfer"))

    # When the sweep runs before and once the files are overdue
    steps.clock.advance(OVERDUE - 1)
    early = steps.sweep()
    steps.clock.advance(1)
    late = steps.sweep()

    # Then the late sweep handed every file out again, and delivering them lands the run
    assert early["redriven"] == {}
    assert late["redriven"] == {run.run_id: "transfer x3"}
    again = steps.published("transfer")[fanned_out:]
    assert sorted(name for m in again for name in m["files"]) == sorted(f.name for f in steps.planned(run))
    steps.deliver("transfer")
    assert steps.run(run.run_id).state is RunState.LANDED


def test_sweep_makes_the_file_records_a_poll_died_before_from_the_plan_and_the_run_lands(
    steps: Steps,
) -> None:
    # Given a job whose success was saved, but whose poll died before the files' records were all made
    # (two of the three are gone), its transfer messages lost
    run = steps.until_transferring()
    steps.forget("transfer")
    *gone, kept = steps.planned(run)
    for planned in gone:
        steps.deps.store.delete(f"_state/files/{run.run_id}/{planned.name}.json")

    # When the sweep runs once the run is overdue
    steps.clock.advance(OVERDUE)
    swept = steps.sweep()

    # Then the missing records are made from the run's plan, each as listed, and every file is handed out
    assert swept["redriven"] == {run.run_id: "transfer x3"}
    assert [steps.file(run.run_id, p.name).planned for p in steps.planned(run)] == [*gone, kept]
    # And delivering the messages lands the run
    steps.deliver("transfer")
    assert steps.run(run.run_id).state is RunState.LANDED


def test_sweep_republishes_a_file_whose_retry_came_due(make_steps: MakeSteps) -> None:
    # Given a ZIP whose download failed once (503), its retry due 60 s later; the other messages not yet sent
    steps = make_steps(FILE_RETRY_SECONDS="60", HTTP_MAX_ATTEMPTS="1")
    assert steps.fusion is not None
    run = steps.until_transferring()
    first = next(f.name for f in steps.planned(run) if is_zip(f.name))
    steps.forget("transfer")
    steps.fusion.fail_next(r"/content$", 503)
    assert steps.transfer(run.run_id, first)["outcome"] == "retry_scheduled"
    assert steps.file(run.run_id, first).state is FileState.PENDING

    # When the sweep runs before and when the retry is due
    steps.clock.advance(59)
    early = steps.sweep()
    steps.clock.advance(1)
    due = steps.sweep()

    # Then only that file was handed out again (the others are not overdue yet), and it lands
    assert early["redriven"] == {}
    assert due["redriven"] == {run.run_id: "transfer x1"}
    assert steps.published("transfer")[-1]["files"] == [first]
    assert steps.deliver("transfer")[0]["outcome"] == "landed"
    assert (steps.file(run.run_id, first).state, steps.file(run.run_id, first).attempts) == (
        FileState.LANDED,
        2,
    )


def test_sweep_finishes_a_run_whose_files_all_landed_but_whose_finisher_died(make_steps: MakeSteps) -> None:
    # Given every file landed, but writing _SUCCESS failed (Object Storage 503) so the run never finished
    steps = make_steps(HTTP_MAX_ATTEMPTS="1")
    run = steps.until_transferring()
    steps.oci.inject_fault("PUT", r".*%2F_SUCCESS", 503, "ServiceUnavailable")
    assert steps.deliver("transfer")[-1]["outcome"] == "deferred"
    assert steps.run(run.run_id).state is RunState.FINISHING
    assert all(steps.file(run.run_id, f.name).state is FileState.LANDED for f in steps.planned(run))
    assert "_SUCCESS" not in steps.landed(run)

    # When the sweep runs before and after the run is overdue
    early = steps.sweep()
    steps.clock.advance(OVERDUE + 1)
    late = steps.sweep()

    # Then the late sweep finished it: _SUCCESS written, LANDED, lease free, people told
    assert early["redriven"] == {}
    assert late["redriven"] == {run.run_id: "finish"}
    assert steps.run(run.run_id).state is RunState.LANDED
    assert {"_SUCCESS", "_manifest.json"} <= set(steps.landed(run))
    assert steps.deps.ledger.lease_holder(EXTRACT) is None
    assert steps.alerts() == ["landed"]


def test_sweep_leaves_final_runs_untouched(steps: Steps) -> None:
    # Given a run that landed and one that failed (a cancelled job of another extract)
    assert steps.fusion is not None
    landed = steps.until_transferring()
    steps.deliver("transfer")
    steps.fusion.define_extract("Payroll", ExtractScenario(outcome="CANCELLED"))
    failed = steps.start("Payroll")
    steps.deliver("poll")
    before = {current.value.run_id: current for current in steps.deps.ledger.runs()}
    assert {v.value.state for v in before.values()} == {RunState.LANDED, RunState.FAILED}
    published = len(steps.ons.published)

    # When the sweep runs a day later
    steps.clock.advance(86_400)
    swept = steps.sweep()

    # Then it re-drove nothing: no message, no change to either run
    assert swept["redriven"] == {}
    assert len(steps.ons.published) == published
    assert {current.value.run_id: current for current in steps.deps.ledger.runs()} == before
    assert set(before) == {landed.run_id, failed.run_id}
