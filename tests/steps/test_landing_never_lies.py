"""A `_SUCCESS` never lies: a run folder with `_SUCCESS` holds exactly that run's data, and a run that ends
FAILED, TIMED_OUT or CANCELLED leaves nothing in its landing folder (docs/landing.md).

Each case here was seen to break an earlier build (issue 16, "Seen"); interleavings are made exact by an
archive source or a Fusion client that does something else just as the step reaches a given point.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from fusion_extract.chain.ledger.records import FileRecord, FileState, RunState
from fusion_extract.chain.ledger.store import Ledger
from fusion_extract.chain.transfer.archive_source import ArchiveSource
from fusion_extract.errors import TransientError
from fusion_extract.models import OutputFile, SourceVersion
from fusion_extract.ports import FusionApi, ObjectStore
from tests.emulators.fusion import ExtractScenario, Hostile
from tests.steps.conftest import EXTRACT, Steps, is_zip
from tests.steps.test_landing import zipped


def with_extra_files(steps: Steps, *files: tuple[str, bytes], chunks: int = 2) -> None:
    """Sales' jobs list these files after their `chunks` archives (and before the .mf manifest)."""
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(chunks=chunks, extra_files=files))


@dataclass
class Meanwhile:
    """An archive source that does `action` once, as the first bytes of `when`'s download arrive."""

    inner: ArchiveSource
    when: str
    action: Callable[[], object]
    done: bool = False

    def open(self, file: OutputFile, start: int = 0, version: SourceVersion | None = None) -> Iterator[bytes]:
        chunks = self.inner.open(file, start, version)
        yield next(chunks)
        if file.name == self.when and not self.done:
            self.done = True
            self.action()
        yield from chunks


@dataclass
class ListingMeanwhile:
    """A Fusion client that does `action` once, just before it lists a job's output files."""

    inner: FusionApi
    action: Callable[[], object]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def output_files(self, job_id: str) -> list[OutputFile]:
        self.action()
        return self.inner.output_files(job_id)


def land_everything(steps: Steps) -> None:
    """Deliver every transfer message, units and continuations included, until none is left."""
    steps.deliver("transfer")


# -- names the run folder reserves -------------------------------------------------------------------------


@pytest.mark.parametrize("listed", ["_SUCCESS", "_manifest.json", "_success", "_SUCCESS.tmp", "raw"])
def test_a_listed_file_named_like_the_runs_own_files_fails_the_run_before_anything_lands(
    steps: Steps, listed: str
) -> None:
    # Given a job that lists, beside its archives, a file named like (or extending) the run folder's own
    with_extra_files(steps, (listed, b"not ours\n"))

    # When its job succeeds and poll plans the transfer
    run = steps.until_transferring()

    # Then the run FAILED naming the file, no transfer was handed out, and its folder is empty
    failed = steps.run(run.run_id)
    assert failed.state is RunState.FAILED
    assert "reserves" in (failed.reason or "")
    assert steps.published("transfer") == []
    assert steps.landed(failed) == []
    assert steps.alerts() == ["failed"]


# -- collisions between the files of one run ---------------------------------------------------------------


def test_two_files_holding_one_member_name_fail_the_run_and_leave_its_folder_empty(steps: Steps) -> None:
    # Given a job whose only two archives hold a member of the same name and the same bytes
    same = zipped(**{"dup.csv": b"ID\n1\n"})
    with_extra_files(steps, ("extra_a.zip", same), ("extra_b.zip", same), chunks=0)
    run = steps.until_transferring()

    # When every file is transferred
    land_everything(steps)

    # Then the run FAILED naming the member, and nothing of it is visible
    failed = steps.run(run.run_id)
    assert failed.state is RunState.FAILED
    assert "dup.csv" in (failed.reason or "")
    assert steps.landed(failed) == []
    assert steps.objects("_staging/") == []


def test_a_listed_file_named_like_a_member_fails_the_run_and_leaves_its_folder_empty(steps: Steps) -> None:
    # Given a job that also lists a plain file named like the data member of its first archive
    with_extra_files(steps, ("carriers_1.csv", b"ID\n1\n"))
    run = steps.until_transferring()

    # When every file is transferred
    land_everything(steps)

    # Then the run FAILED, and nothing of it is visible
    failed = steps.run(run.run_id)
    assert failed.state is RunState.FAILED
    assert "carriers_1.csv" in (failed.reason or "")
    assert steps.landed(failed) == []


# -- a run that ends without landing takes back what it showed ---------------------------------------------


@pytest.mark.parametrize("ending", ["cancelled", "failed"])
def test_a_run_ending_after_some_files_landed_leaves_nothing_in_its_folder(steps: Steps, ending: str) -> None:
    # Given a run whose first archive is hostile and whose second one already landed (visible)
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(hostile=Hostile.ZIP_SLIP))
    run = steps.until_transferring()
    hostile, good = (f.name for f in steps.planned(run) if is_zip(f.name))
    steps.transfer(run.run_id, good)
    assert steps.landed(run) != []

    # When it is cancelled, or the hostile archive fails it
    if ending == "cancelled":
        steps.submit(kind="cancel", run_id=run.run_id)
    else:
        steps.transfer(run.run_id, hostile)

    # Then its folder is empty and nothing is staged
    ended = steps.run(run.run_id)
    assert ended.state.value.lower() == ending
    assert steps.landed(ended) == []
    assert steps.objects("_staging/") == []


def test_a_cancelled_reland_keeps_the_first_landing_of_its_job_whole(steps: Steps) -> None:
    # Given a job that landed, with _SUCCESS
    first = steps.until_transferring()
    land_everything(steps)
    landed = steps.run(first.run_id)
    folder = steps.deps.layout.run_folder(landed)
    before = {name: steps.read(f"{folder}/{name}") for name in steps.landed(landed)}
    assert "_SUCCESS" in before

    # When it is re-landed, one file of the re-land lands again, and the re-land is cancelled
    answer = steps.submit(kind="reland", extract=EXTRACT, job_id=landed.job_id, mode="full")
    steps.deliver("poll")
    steps.transfer(answer["run_id"], steps.planned(landed)[0].name)
    steps.submit(kind="cancel", run_id=answer["run_id"])

    # Then the re-land is CANCELLED, and the first landing is still there, byte for byte
    assert steps.run(answer["run_id"]).state is RunState.CANCELLED
    assert {name: steps.read(f"{folder}/{name}") for name in steps.landed(landed)} == before


# -- endings are final ---------------------------------------------------------------------------------------


def test_a_file_failing_after_its_run_was_cancelled_leaves_it_cancelled_with_one_alert(steps: Steps) -> None:
    # Given a hostile archive being downloaded when an operator cancels its run
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(hostile=Hostile.ZIP_SLIP))
    run = steps.until_transferring()
    name = next(f.name for f in steps.planned(run) if is_zip(f.name))
    cancel = lambda: steps.submit(kind="cancel", run_id=run.run_id)  # noqa: E731
    steps.deps.archives = Meanwhile(steps.deps.archives, name, cancel)

    # When the transfer meets the hostile member
    steps.transfer(run.run_id, name)

    # Then the run stays CANCELLED and people were told once
    assert steps.run(run.run_id).state is RunState.CANCELLED
    assert steps.alerts() == ["cancelled"]


def test_two_files_failing_at_once_end_their_run_once(steps: Steps) -> None:
    # Given two hostile archives, the second failing the run while the first is being downloaded
    escape = zipped(**{"../escape.csv": b"x\n"})
    with_extra_files(steps, ("evil_a.zip", escape), ("evil_b.zip", escape))
    run = steps.until_transferring()
    first, second = "evil_a.zip", "evil_b.zip"
    steps.deps.archives = Meanwhile(steps.deps.archives, first, lambda: steps.transfer(run.run_id, second))

    # When the first one's transfer meets its hostile member too
    steps.transfer(run.run_id, first)

    # Then the run FAILED once: one alert
    assert steps.run(run.run_id).state is RunState.FAILED
    assert steps.alerts() == ["failed"]


def test_a_poll_in_flight_when_its_run_is_cancelled_plans_no_files(steps: Steps) -> None:
    # Given a run whose job succeeded, cancelled just as poll lists the job's files
    run = steps.start()
    steps.deps.fusion = ListingMeanwhile(
        steps.deps.fusion, lambda: steps.submit(kind="cancel", run_id=run.run_id)
    )

    # When that poll goes on
    steps.deliver("poll")

    # Then the run stays CANCELLED with no file records and nothing handed to transfer
    assert steps.run(run.run_id).state is RunState.CANCELLED
    assert steps.deps.ledger.files(run.run_id) == []
    assert steps.published("transfer") == []


def test_a_run_whose_poll_died_before_recording_its_files_has_them_made_and_landed_by_the_sweep(
    steps: Steps,
) -> None:
    # Given a run whose plan was saved but whose poll died before writing its files' records
    run = steps.until_transferring()
    for name in steps.objects(f"_state/files/{run.run_id}/"):
        steps.deps.store.delete(name)
    steps.forget("transfer")

    # When the sweep comes round after the step is overdue
    steps.clock.advance(steps.deps.settings.step_overdue_seconds + 1)
    steps.sweep()
    land_everything(steps)

    # Then every file was made and handed out again, and the run landed
    assert steps.run(run.run_id).state is RunState.LANDED


def test_a_sweep_making_a_file_record_that_a_late_poll_made_meanwhile_goes_on_with_it(steps: Steps) -> None:
    # Given a run whose poll died before writing its files' records
    run = steps.until_transferring()
    for name in steps.objects(f"_state/files/{run.run_id}/"):
        steps.deps.store.delete(name)
    steps.forget("transfer")
    # And a late invocation that writes the first file's record just before the sweep writes it
    planned = steps.planned(run)[0]
    first = planned.name
    late = Ledger(steps.deps.store, steps.deps.settings.state_prefix)
    record = FileRecord(run.run_id, first, FileState.PENDING, next_at=steps.clock.now(), planned=planned)
    healthy = steps.deps
    steps.deps = steps.container()
    steps.deps.store = WritingMeanwhile(steps.deps.store, f"/{first}.json", lambda: late.create_file(record))

    # When the sweep comes round after the step is overdue
    steps.clock.advance(steps.deps.settings.step_overdue_seconds + 1)
    swept = steps.sweep()
    steps.deps = healthy
    land_everything(steps)

    # Then the sweep took the record it met for the one it meant to make, and the run landed
    assert swept["redriven"] == {run.run_id: f"transfer x{len(steps.planned(run))}"}
    assert steps.run(run.run_id).state is RunState.LANDED


# -- every run ends ------------------------------------------------------------------------------------------


def test_a_json_member_nested_past_what_the_reader_can_read_fails_the_run_at_once(steps: Steps) -> None:
    # Given a job whose only archive holds a JSON member nested 100,000 levels deep
    deep = b"[" * 100_000 + b"]" * 100_000
    with_extra_files(steps, ("deep.zip", zipped(**{"items.json": deep})), chunks=0)
    run = steps.until_transferring()

    # When it is transferred
    land_everything(steps)

    # Then the run FAILED saying why (not retried for ever as if the fault were passing), folder empty
    failed = steps.run(run.run_id)
    assert failed.state is RunState.FAILED
    assert "nested too deeply" in (failed.reason or "")
    assert steps.landed(failed) == []


def test_a_transfer_that_outlives_its_deadline_ends_timed_out_and_leaves_nothing(steps: Steps) -> None:
    # Given a run one of whose files landed, the others' messages lost again and again
    run = steps.until_transferring()
    steps.transfer(run.run_id, steps.planned(run)[0].name)
    steps.forget("transfer")

    # When the sweep comes after the transfer's deadline
    steps.clock.advance(steps.deps.settings.run_deadline_hours * 3600 + 1)
    steps.sweep()

    # Then the run is TIMED_OUT, people were told, its extract is free and its folder empty
    ended = steps.run(run.run_id)
    assert ended.state is RunState.TIMED_OUT
    assert "was not done at the deadline (1 of 3 files)" in (ended.reason or "")
    assert steps.alerts() == ["timed_out"]
    assert steps.deps.ledger.lease_holder(EXTRACT) is None
    assert steps.landed(ended) == [] and steps.objects("_staging/") == []


# -- the finisher writes _manifest.json and _SUCCESS once ---------------------------------------------------


def test_a_finish_resumed_after_its_writes_were_made_does_not_write_them_again(steps: Steps) -> None:
    # Given a run whose finisher wrote _manifest.json and _SUCCESS, then died before marking it LANDED
    run = steps.until_transferring()
    last = steps.planned(run)[-1].name
    steps.deliver("transfer", keep=lambda message: message["files"] != [last])
    healthy = steps.deps
    steps.deps = steps.container()
    steps.deps.store = DyingBeforeLanded(steps.deps.store)
    steps.transfer(run.run_id, last)
    steps.deps = healthy
    assert steps.run(run.run_id).state is RunState.FINISHING
    layout, store = steps.deps.layout, steps.deps.store
    written = [store.head(layout.manifest(run)), store.head(layout.success(run))]

    # When the finish is resumed (as the sweep resumes it)
    steps.deps.finisher.finish_if_complete(steps.deps.ledger.load_run(run.run_id), resume=True)

    # Then the run is LANDED and neither file was written again
    assert steps.run(run.run_id).state is RunState.LANDED
    assert [store.head(layout.manifest(run)), store.head(layout.success(run))] == written


def test_a_resumed_finish_of_a_reland_writes_its_own_manifest_over_the_first_landings(steps: Steps) -> None:
    # Given a job that landed, and its re-land into the same folder, whose finisher claimed the finish and
    # died as it wrote _manifest.json (the folder still holds the first landing's, and its _SUCCESS)
    first = steps.until_transferring()
    land_everything(steps)
    landed = steps.run(first.run_id)
    answer = steps.submit(kind="reland", extract=EXTRACT, job_id=landed.job_id, mode="full")
    steps.deliver("poll")

    def die() -> None:
        raise TransientError("the invocation died here")

    healthy = steps.deps
    steps.deps = steps.container()
    steps.deps.store = WritingMeanwhile(steps.deps.store, "/_manifest.json", die)
    land_everything(steps)
    steps.deps = healthy
    reland = steps.run(answer["run_id"])
    assert reland.state is RunState.FINISHING
    assert steps.deps.layout.run_folder(reland) == steps.deps.layout.run_folder(landed)

    # When the finish is resumed (as the sweep resumes it)
    steps.deps.finisher.finish_if_complete(steps.deps.ledger.load_run(reland.run_id), resume=True)

    # Then the re-land is LANDED, and the folder's _manifest.json is its own (a _SUCCESS and a manifest of
    # another run are not this finish's writes)
    assert steps.run(reland.run_id).state is RunState.LANDED
    written = json.loads(steps.read(steps.deps.layout.manifest(reland)))
    assert (written["run_id"], written["reland"]) == (reland.run_id, True)


@dataclass
class DyingBeforeLanded:
    """A store whose invocation dies (here: raises) as it saves a run document that says LANDED."""

    inner: ObjectStore
    died: bool = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_bytes(self, name: str, data: bytes, **options: Any) -> str:
        if "/runs/" in name and b'"state": "LANDED"' in data and not self.died:
            self.died = True
            raise TransientError("the invocation died here")
        return self.inner.put_bytes(name, data, **options)


@dataclass
class WritingMeanwhile:
    """A store that does `action` once, just before it writes an object whose name ends with `suffix`."""

    inner: ObjectStore
    suffix: str
    action: Callable[[], object]
    done: bool = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_bytes(self, name: str, data: bytes, **options: Any) -> str:
        if name.endswith(self.suffix) and not self.done:
            self.done = True
            self.action()
        return self.inner.put_bytes(name, data, **options)


@dataclass
class LandingMeanwhile:
    """A store that does `action` once, just before it writes a file record that says LANDED."""

    inner: ObjectStore
    action: Callable[[], object]
    done: bool = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_bytes(self, name: str, data: bytes, **options: Any) -> str:
        if "/files/" in name and b'"state": "LANDED"' in data and not self.done:
            self.done = True
            self.action()
        return self.inner.put_bytes(name, data, **options)


def test_a_file_another_lander_landed_first_answers_nothing_to_do_and_the_run_still_lands(
    steps: Steps,
) -> None:
    # Given a run transferring, and another invocation landing its first file just as this one does
    run = steps.until_transferring()
    first = steps.planned(run)[0].name
    ledger = steps.deps.ledger

    def landed_by_another() -> None:
        current = ledger.load_file(run.run_id, first)
        ledger.save_file(current, current.value.but(state=FileState.LANDED, fetch=None, units=()))
        ledger.mark_landed(run.run_id, first)

    healthy = steps.deps
    steps.deps = steps.container()
    steps.deps.store = LandingMeanwhile(steps.deps.store, landed_by_another)

    # When this invocation lands the file
    answer = steps.transfer(run.run_id, first)

    # Then it leaves the landing to the other, answering nothing to do for that file
    assert (answer["outcome"], answer["file"]) == ("nothing_to_do", first)
    steps.deps = healthy
    assert steps.file(run.run_id, first).state is FileState.LANDED
    # And the run lands once the other files do
    steps.deliver("transfer", keep=lambda message: message["files"] != [first])
    assert steps.run(run.run_id).state is RunState.LANDED


def test_a_finisher_whose_run_is_saved_meanwhile_still_marks_it_landed(steps: Steps) -> None:
    # Given a run whose every file landed but the last, and a note saved on the run while it is finished
    run = steps.until_transferring()
    last = steps.planned(run)[-1].name
    steps.deliver("transfer", keep=lambda message: message["files"] != [last])
    deps = steps.container()
    note = lambda: deps.alerter.alert_once(deps.ledger.load_run(run.run_id), "stuck", "a note")  # noqa: E731
    deps.store = WritingMeanwhile(deps.store, "_manifest.json", note)
    steps.deps = deps

    # When the last file lands and its invocation finishes the run
    steps.transfer(run.run_id, last)

    # Then the run is LANDED at once (not left FINISHING, with _SUCCESS visible, for the sweep)
    assert steps.run(run.run_id).state is RunState.LANDED
