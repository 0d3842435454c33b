"""transfer at any file size: work that does not fit an invocation's budget goes on in the next one without
starting over, and an archive's members are spread over parallel invocations.

The budget is measured on the injected clock; TRANSFER_BUDGET_SECONDS=0 makes every invocation stop at its
first chance (after its one guaranteed piece of progress), which is the hardest case for resuming.
"""

from __future__ import annotations

import functools
import hashlib
import random
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fusion_extract.chain.ledger.records import FileState, RunState, Unit, UnitState
from fusion_extract.chain.steps.transfer import _claim, _NotClaimable
from fusion_extract.chain.transfer.fetch import PARTS_PER_SAVE
from fusion_extract.errors import TransientError
from fusion_extract.fusion.download import PARALLEL_FROM
from fusion_extract.ports import ObjectStore
from tests.emulators.fusion import ExtractScenario
from tests.emulators.oci.http import Request, Response, error
from tests.steps.conftest import EXTRACT, MakeSteps, Steps

MiB = 2**20
PROMOTIONS = r"/n/[^/]+/b/[^/]+/actions/renameObject"  # a staged member made visible


def csv_text(rng: random.Random, size: int) -> bytes:
    """Invoice-like rows that deflate about 3:1 into many blocks."""
    rows = [b"INVOICE_ID,SUPPLIER,AMOUNT,NOTE\n"]
    total = len(rows[0])
    while total < size:
        amount, note = rng.random() * 1e5, rng.choice("abcdef") * 8
        row = f"{rng.randrange(10**9)},S{rng.randrange(5000)},{amount:.2f},{note}\n"
        rows.append(row.encode())
        total += len(row)
    return b"".join(rows)


def many_members(seed: int, count: int) -> dict[str, bytes]:
    """`count` members of half a MiB each."""
    rng = random.Random(seed)
    return {f"part_{i:02}.csv": csv_text(rng, MiB // 2) for i in range(count)}


def archive(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def transferring(
    make_steps: MakeSteps, zip_path: Path, *, dated_only: bool = False, **config: str
) -> tuple[Steps, str, str]:
    """The archive's run TRANSFERRING, its other files landed (`dated_only`: versions named by date)."""
    steps = make_steps(UPLOAD_PART_MB="1", **config)
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(prebuilt_zip=str(zip_path), dated_only=dated_only))
    run = steps.until_transferring()
    [name] = [f.name for f in steps.planned(run) if f.name.endswith(".zip")]
    for other in steps.planned(
        run
    ):  # Fusion's .mf manifest lands first; the tests deliver the archive's messages
        if other.name != name:
            assert steps.transfer(run.run_id, other.name)["outcome"] == "landed"
    steps.forget("transfer")
    return steps, run.run_id, name


def downloaded_bytes(steps: Steps, name: str) -> list[str | None]:
    """The Range header of every download of `name` from Fusion, in order."""
    assert steps.fusion is not None
    return [r.headers.get("range") for r in steps.fusion.requests if r.path.endswith(f"/{name}/content")]


def test_a_transfer_past_its_budget_goes_on_in_the_next_invocation_without_starting_over(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given a 5 MiB member (several deflate blocks, several 1 MiB parts) and small ones, in one archive
    rng = random.Random(7)
    members = {"big.csv": csv_text(rng, 5 * MiB), **{f"small_{i}.csv": csv_text(rng, 2000) for i in range(5)}}
    zip_path = archive(tmp_path / "a.zip", members)
    steps, run_id, name = transferring(make_steps, zip_path, TRANSFER_BUDGET_SECONDS="0")

    # When its transfer message is delivered, and every continuation the chain publishes
    outcomes = [steps.transfer(run_id, name), *steps.deliver("transfer")]

    # Then it took several invocations, each going on where the last one stopped
    results = [o["outcome"] for o in outcomes]
    assert results[-1] == "landed", results
    fetching = [o for o in outcomes if o["outcome"] == "continued" and "unit" not in o]
    unpacking = [o for o in outcomes if o["outcome"] == "continued" and "unit" in o]
    assert len(fetching) >= 1 and len(unpacking) >= 3  # the big member stopped mid-way, more than once
    assert all(
        (o["run_id"], o["file"]) == (run_id, name) for o in fetching + unpacking
    )  # each names its work
    # And Fusion served each byte of the archive once: every download after the first starts where it stopped
    ranges = downloaded_bytes(steps, name)
    assert len(ranges) >= 2 and ranges[0] is None
    starts = [int(r.split("=")[1].split("-")[0]) for r in ranges[1:] if r]
    assert starts == sorted(starts) and all(start % MiB == 0 for start in starts)
    # And what landed is every member, byte for byte, with its SHA-256 and row count on record
    run = steps.run(run_id)
    assert run.state is RunState.LANDED
    for path, data in members.items():
        assert steps.read(steps.deps.layout.member(run, path)) == data
    record = steps.file(run_id, name)
    big = next(m for m in record.members if m.path == "big.csv")
    assert big.sha256 == hashlib.sha256(members["big.csv"]).hexdigest()
    assert big.rows == members["big.csv"].count(b"\n") - 1
    # And the fetch that stopped for the budget counted as one attempt with the one that went on
    assert record.attempts == 1
    # And nothing is left staged, no upload is open
    assert steps.objects("_staging/") == []


@dataclass
class DyingAtPart:
    """A store whose invocation dies (here: raises) as it uploads part `number` of a file, once."""

    inner: ObjectStore
    number: int
    died: bool = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upload_part(self, name: str, upload_id: str, number: int, data: bytes | memoryview) -> str:
        if number == self.number and not self.died:
            self.died = True
            raise TransientError("the invocation died here")
        return self.inner.upload_part(name, upload_id, number, data)


def test_a_fetch_that_dies_midway_goes_on_from_its_last_saved_part_not_from_the_start(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of 18 parts of 1 MiB, fetched by an invocation that dies as it uploads part 18
    member = random.Random(5).randbytes(17 * MiB + MiB // 2)
    with zipfile.ZipFile(tmp_path / "big.zip", "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("big.bin", member)
    steps, run_id, name = transferring(make_steps, tmp_path / "big.zip")
    healthy = steps.deps
    steps.deps = steps.container()
    steps.deps.store = DyingAtPart(steps.deps.store, 18)

    # When its transfer message is delivered
    steps.transfer(run_id, name)

    # Then the progress saved on the way (every PARTS_PER_SAVE parts) is on record
    fetch = steps.file(run_id, name).fetch
    assert fetch is not None and fetch.offset == PARTS_PER_SAVE * MiB and len(fetch.parts) == PARTS_PER_SAVE

    # When the sweep hands the file out again
    before = len(downloaded_bytes(steps, name))
    steps.deps = healthy
    steps.clock.advance(3600)
    steps.sweep()
    steps.deliver("transfer")

    # Then the next invocation asked Fusion for the rest only, and the member landed byte for byte
    resumed = [int(str(r).split("=")[1].split("-")[0]) for r in downloaded_bytes(steps, name)[before:]]
    assert min(resumed) == PARTS_PER_SAVE * MiB, resumed
    run = steps.run(run_id)
    assert run.state is RunState.LANDED
    assert steps.read(steps.deps.layout.member(run, "big.bin")) == member


def test_an_archive_is_unpacked_by_parallel_units_and_lands_once_the_last_is_done(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of 40 members, 20 MiB in all, TRANSFER_FANOUT=3, and a budget that cannot hold its
    # unpacking (the clock stands still: it is never spent)
    members = many_members(11, 40)
    steps, run_id, name = transferring(
        make_steps, archive(tmp_path / "m.zip", members), TRANSFER_FANOUT="3", TRANSFER_BUDGET_SECONDS="0.5"
    )

    # When the file's message is delivered
    first = steps.transfer(run_id, name)

    # Then that invocation fetched it, unpacked the first unit, and published one message for each other unit
    assert first["outcome"] == "unpacked" and first["unit"] == 0
    published = [m for m in steps.published("transfer") if m.get("unit") is not None]
    assert sorted(m["unit"] for m in published) == [1, 2]
    record = steps.file(run_id, name)
    assert record.state is FileState.UNPACKING
    assert [u.state for u in record.units] == [UnitState.DONE, UnitState.PENDING, UnitState.PENDING]
    assert sum(u.count for u in record.units) == 40
    # And none of its members is visible before every unit is done
    assert not set(steps.landed(steps.run(run_id))) & set(members)
    # And a duplicate of the done unit's message, or one naming a unit the file does not have, does nothing,
    # saying which unit and why
    again, stray = steps.transfer_unit(run_id, name, 0), steps.transfer_unit(run_id, name, 3)
    assert (again["outcome"], again["unit"], again["state"]) == ("nothing_to_do", 0, UnitState.DONE.value)
    assert (stray["outcome"], stray["file"], stray["unit"]) == ("nothing_to_do", name, 3)

    # When the unit messages are delivered (each would be an invocation of its own)
    outcomes = steps.deliver("transfer")

    # Then the last unit to finish landed the file, and the run
    assert [o["outcome"] for o in outcomes] == ["unpacked", "landed"]
    run = steps.run(run_id)
    assert run.state is RunState.LANDED
    manifests = [f.name for f in steps.planned(run) if f.name != name]
    assert sorted(steps.landed(run)) == sorted([*members, *manifests, "_manifest.json", "_SUCCESS"])
    record = steps.file(run_id, name)
    assert [m.path for m in record.members] == list(members)


def test_an_archive_whose_unpacking_fits_the_budget_lands_in_the_invocation_that_fetched_it(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given the same archive of 40 members, 20 MiB, TRANSFER_FANOUT=3, and the default budget (240 s)
    members = many_members(11, 40)
    steps, run_id, name = transferring(make_steps, archive(tmp_path / "m.zip", members), TRANSFER_FANOUT="3")

    # When the file's message is delivered
    outcome = steps.transfer(run_id, name)

    # Then that invocation fetched it, unpacked every member and landed it: no unit was handed out
    assert outcome["outcome"] == "landed", outcome
    assert [m for m in steps.published("transfer") if m.get("unit") is not None] == []
    assert [m.path for m in steps.file(run_id, name).members] == list(members)
    assert steps.run(run_id).state is RunState.LANDED


def test_a_unit_whose_invocation_died_is_handed_out_again_by_the_sweep(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive split in two units (its budget cannot hold both), the second one's message lost
    members = many_members(5, 20)
    steps, run_id, name = transferring(
        make_steps, archive(tmp_path / "l.zip", members), TRANSFER_FANOUT="2", TRANSFER_BUDGET_SECONDS="0.25"
    )
    assert steps.transfer(run_id, name)["outcome"] == "unpacked"
    steps.forget("transfer")
    lost = len(steps.published("transfer"))

    # When the sweep runs before the step is overdue, Then it leaves the unit alone
    steps.sweep()
    assert steps.published("transfer")[lost:] == []

    # When it runs once the unit is overdue
    steps.clock.advance(steps.deps.settings.step_overdue_seconds * 2 + 1)
    steps.sweep()

    # Then the unit is handed out again and the file lands
    assert [o["outcome"] for o in steps.deliver("transfer")] == ["landed"]
    assert steps.run(run_id).state is RunState.LANDED


@dataclass
class DyingAsFileLands:
    """A store whose invocation dies (here: raises) as it saves a file record that says LANDED, once."""

    inner: ObjectStore
    died: bool = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_bytes(self, name: str, data: bytes, **options: Any) -> str:
        if "/files/" in name and b'"state": "LANDED"' in data and not self.died:
            self.died = True
            raise TransientError("the invocation died here")
        return self.inner.put_bytes(name, data, **options)


def test_an_archive_whose_members_were_all_promoted_but_whose_lander_died_is_landed_by_the_sweep(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of one unit whose invocation promoted every member, then died as it landed the file
    steps, run_id, name = transferring(make_steps, archive(tmp_path / "d.zip", many_members(8, 2)))
    healthy = steps.deps
    steps.deps = steps.container()
    steps.deps.store = DyingAsFileLands(steps.deps.store)
    with pytest.raises(TransientError):
        steps.transfer(run_id, name)
    steps.deps = healthy
    record = steps.file(run_id, name)
    assert record.state is FileState.UNPACKING and [u.state for u in record.units] == [UnitState.PROMOTED]

    # When the sweep runs once the unit is overdue
    steps.clock.advance(steps.deps.settings.step_overdue_seconds * 2 + 1)
    steps.sweep()

    # Then the unit's message goes out again, and it lands the file and the run
    assert [o["outcome"] for o in steps.deliver("transfer")] == ["landed"]
    assert steps.run(run_id).state is RunState.LANDED


def test_a_corrupt_member_fails_the_attempt_and_the_file_starts_over_in_a_new_folder(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive whose only member's bytes were damaged after it was written (its CRC-32 disagrees)
    data = bytearray(archive(tmp_path / "c.zip", {"x.csv": b"ID\n" + b"1\n" * 5000}).read_bytes())
    info = zipfile.ZipFile(tmp_path / "c.zip").infolist()[0]
    at = info.header_offset + 30 + len(info.filename) + 3
    data[at] ^= 0x55
    (tmp_path / "c.zip").write_bytes(bytes(data))
    steps, run_id, name = transferring(make_steps, tmp_path / "c.zip", FILE_MAX_ATTEMPTS="2")

    # When it is transferred
    outcome = steps.transfer(run_id, name)

    # Then the attempt failed, naming the member, and the file waits to start over from the fetch
    assert outcome["outcome"] == "retry_scheduled" and "x.csv" in outcome["reason"]
    record = steps.file(run_id, name)
    assert (record.state, record.attempts, record.fetch, record.units) == (FileState.PENDING, 1, None, ())
    assert not set(steps.landed(steps.run(run_id))) & {"x.csv"}


def test_a_unit_that_fails_transiently_waits_and_goes_on_without_counting_against_the_file(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive, and Object Storage answering the first upload of an unpacked member 503
    steps, run_id, name = transferring(
        make_steps, archive(tmp_path / "t.zip", many_members(3, 4)), HTTP_MAX_ATTEMPTS="1"
    )
    steps.oci.inject_fault(
        "PUT", r"/n/[^/]+/b/[^/]+/o/_staging%2F.*%2Fmembers%2F.*", 503, "ServiceUnavailable"
    )

    # When the file is transferred
    outcome = steps.transfer(run_id, name)

    # Then the unit waits for a retry; the file keeps its fetch and its attempt count
    assert outcome["outcome"] == "retry_scheduled" and outcome.get("unit") == 0, outcome
    record = steps.file(run_id, name)
    assert (record.state, record.attempts, record.fetch is not None) == (FileState.UNPACKING, 1, True)
    assert (record.units[0].state, record.units[0].retries) == (UnitState.PENDING, 1)

    # When its retry is due and the sweep runs
    steps.clock.advance(steps.deps.settings.defer_seconds * 4)
    steps.sweep()

    # Then the unit goes on and the file lands, still on its first attempt, fetched once
    assert [o["outcome"] for o in steps.deliver("transfer")] == ["landed"]
    record = steps.file(run_id, name)
    assert (record.state, record.attempts) == (FileState.LANDED, 1)
    assert len(downloaded_bytes(steps, name)) == 1


def test_a_unit_whose_retry_is_due_at_once_is_handed_out_again_without_waiting_for_the_sweep(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive, no wait after a transient failure, and Object Storage answering one upload 503
    steps, run_id, name = transferring(
        make_steps, archive(tmp_path / "t.zip", many_members(3, 4)), HTTP_MAX_ATTEMPTS="1", DEFER_SECONDS="0"
    )
    steps.oci.inject_fault(
        "PUT", r"/n/[^/]+/b/[^/]+/o/_staging%2F.*%2Fmembers%2F.*", 503, "ServiceUnavailable"
    )

    # When the file is transferred
    before = len(steps.published("transfer"))
    assert steps.transfer(run_id, name)["outcome"] == "retry_scheduled"

    # Then the unit's own message is published again at once, and delivering it lands the file
    assert [m.get("unit") for m in steps.published("transfer")[before:]] == [0]
    assert [o["outcome"] for o in steps.deliver("transfer")] == ["landed"]


@pytest.mark.parametrize(("status", "code"), [(503, "ServiceUnavailable"), (400, "InvalidParameter")])
def test_a_unit_that_fails_after_its_file_started_over_leaves_the_new_attempt_alone(
    make_steps: MakeSteps, tmp_path: Path, status: int, code: str
) -> None:
    # Given an archive whose first member upload fails (transiently, or not), the file having started over
    # meanwhile (another unit failed its attempt)
    steps, run_id, name = transferring(
        make_steps, archive(tmp_path / "s.zip", many_members(3, 4)), HTTP_MAX_ATTEMPTS="1"
    )
    ledger = steps.deps.ledger
    failed: list[int] = []

    def started_over(request: Request, serve: Callable[[Request], Response]) -> Response:
        if failed:
            return serve(request)
        failed.append(status)
        current = ledger.load_file(run_id, name)
        ledger.save_file(current, current.value.but(state=FileState.PENDING, fetch=None, units=()))
        return error(status, code, "refused")

    steps.oci.intercept("PUT", r"/n/[^/]+/b/[^/]+/o/_staging%2F.*%2Fmembers%2F.*", started_over)

    # When the file is transferred
    answer = steps.transfer(run_id, name)

    # Then the unit's failure is not this attempt's to record: the answer names the file and unit as stale,
    # and the file waits as the other failure left it
    assert (answer["outcome"], answer["file"], answer["unit"]) == ("stale", name, 0)
    record = steps.file(run_id, name)
    assert (record.state, record.fetch, record.units) == (FileState.PENDING, None, ())


def test_a_unit_whose_claim_meets_another_units_write_claims_it_again(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive in three units (its budget cannot hold them), the first unpacked, the others waiting
    members = many_members(11, 40)
    steps, run_id, name = transferring(
        make_steps, archive(tmp_path / "r.zip", members), TRANSFER_FANOUT="3", TRANSFER_BUDGET_SECONDS="0.5"
    )
    assert steps.transfer(run_id, name)["outcome"] == "unpacked"
    # And the file record changing under unit 1's claim (another unit saved it first: the write answers 412)
    steps.oci.inject_fault("PUT", r"/n/[^/]+/b/[^/]+/o/_state%2Ffiles%2F.*", 412, "IfMatchFailed")

    # When unit 1's message is delivered
    outcome = steps.transfer_unit(run_id, name, 1)

    # Then it read the record again and claimed the unit: its work is not left to the sweep
    assert outcome["outcome"] == "unpacked" and outcome["unit"] == 1
    assert steps.file(run_id, name).units[1].state is UnitState.DONE


def tiny_members(count: int) -> dict[str, bytes]:
    return {f"t_{i:05}.csv": b"ID\n%d\n" % i for i in range(count)}


def test_an_archive_of_many_tiny_members_is_unpacked_and_promoted_in_pieces_within_the_budget(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of 130 tiny members (two chunks and then some), one unit, and a budget spent at every
    # chance
    members = tiny_members(130)
    steps, run_id, name = transferring(
        make_steps, archive(tmp_path / "tiny.zip", members), TRANSFER_FANOUT="1", TRANSFER_BUDGET_SECONDS="0"
    )

    # When its messages are delivered
    outcomes = [steps.transfer(run_id, name), *steps.deliver("transfer")]

    # Then no invocation made more than one chunk of members visible, and every member landed
    paused = [o["promoted"] for o in outcomes if o["outcome"] == "promoted" and o.get("handed_out")]
    assert paused == [64, 128], [o["outcome"] for o in outcomes]
    assert outcomes[-1]["outcome"] == "landed"
    run = steps.run(run_id)
    assert run.state is RunState.LANDED
    assert set(members) <= set(steps.landed(run))


def test_an_archive_of_many_tiny_members_is_spread_over_parallel_units(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of 800 tiny members (under one part in all) and TRANSFER_FANOUT=4
    members = tiny_members(800)
    steps, run_id, name = transferring(
        make_steps, archive(tmp_path / "tiny.zip", members), TRANSFER_FANOUT="4"
    )

    # When its file message is delivered
    steps.transfer(run_id, name)

    # Then its members were split into four units, each with an invocation of its own
    record = steps.file(run_id, name)
    assert len(record.units) == 4 and sum(unit.count for unit in record.units) == 800
    assert sorted(m["unit"] for m in steps.published("transfer") if m.get("unit") is not None) == [1, 2, 3]


def test_units_staged_by_the_last_invocation_are_promoted_by_parallel_invocations_when_its_budget_is_spent(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of four units of 16 tiny members (the fewest that make four: LEAST_UNIT_PARTS), the
    # budget spent at every chance
    members = tiny_members(64)
    steps, run_id, name = transferring(
        make_steps, archive(tmp_path / "tiny.zip", members), TRANSFER_FANOUT="4", TRANSFER_BUDGET_SECONDS="0"
    )

    # When every message is delivered
    outcomes = [steps.transfer(run_id, name), *steps.deliver("transfer")]

    # Then the invocation that staged the last unit promoted its own and handed the other three out, once each
    handing = [o for o in outcomes if o["outcome"] == "promoted" and o.get("handed_out")]
    assert [o["handed_out"] for o in handing] == [3]
    # And each unit's promotion answers naming the file and the unit it promoted
    promoted = [o for o in outcomes if o["outcome"] == "promoted" and not o.get("handed_out")]
    assert promoted and all(o["file"] == name and o["unit"] in (1, 2, 3) for o in promoted), promoted
    assert outcomes[-1]["outcome"] == "landed"
    assert steps.run(run_id).state is RunState.LANDED


def test_a_unit_paused_mid_promotion_is_due_again_from_its_pause_not_from_when_it_was_staged(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of 130 tiny members, one unit, each member taking a second to be made visible, so that
    # the budget of 30 s is spent by every chunk of 64 (the unit pauses twice mid-promotion), and each message
    # delivered a minute after the one before
    members = tiny_members(130)
    steps, run_id, name = transferring(
        make_steps, archive(tmp_path / "tiny.zip", members), TRANSFER_FANOUT="1", TRANSFER_BUDGET_SECONDS="30"
    )

    def a_second_each(request: Request, serve: Callable[[Request], Response]) -> Response:
        steps.clock.advance(1)
        return serve(request)

    steps.oci.intercept("POST", PROMOTIONS, a_second_each)
    paused: list[Unit] = []

    def a_minute_later(message: dict[str, Any]) -> bool:
        units = steps.file(run_id, name).units
        paused.extend(unit for unit in units if unit.state is UnitState.DONE and unit.promoted)
        steps.clock.advance(60)
        return True

    # When every message is delivered
    steps.transfer(run_id, name)
    steps.deliver("transfer", keep=a_minute_later)

    # Then each unit that paused mid-promotion was due again from its pause, when its message was sent (the
    # sweep gives that message STEP_OVERDUE_SECONDS to arrive), not from when it was staged
    assert paused and all(unit.next_at == unit.claimed_at for unit in paused)
    assert steps.run(run_id).state is RunState.LANDED


def test_a_large_archive_fetched_over_parallel_ranges_resumes_at_each_stop_and_lands_whole(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of 17 MiB (past PARALLEL_FROM: fetched over parallel ranges), one stored member
    member = random.Random(3).randbytes(17 * MiB)
    zip_path = tmp_path / "large.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("large.bin", member)
    assert zip_path.stat().st_size >= PARALLEL_FROM
    steps, run_id, name = transferring(make_steps, zip_path, TRANSFER_BUDGET_SECONDS="0")

    # When its transfer message is delivered, and every continuation (each fetch stops once the ranges
    # on their way are staged)
    outcomes = [steps.transfer(run_id, name), *steps.deliver("transfer")]

    # Then the fetch took many invocations, each reading ranges from where the last one stopped
    assert outcomes[-1]["outcome"] == "landed", [o["outcome"] for o in outcomes]
    ranges = [r or "bytes=0-" for r in downloaded_bytes(steps, name)]
    starts = [int(r.removeprefix("bytes=").split("-")[0]) for r in ranges]
    # (where a part ended, or a range after it; the first invocation's after its one-chunk first range)
    assert len(set(starts)) > 4 and all(start % MiB in (0, 64 * 1024) for start in starts)
    assert any(r.count("-") == 1 and not r.endswith("-") for r in ranges)  # bounded ranges: parallel reads
    # And what landed is the member byte for byte, and no reading thread outlived its invocation
    run = steps.run(run_id)
    assert steps.read(steps.deps.layout.member(run, "large.bin")) == member
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("download")]
    assert steps.objects("_staging/") == []


def test_a_fetch_stopped_by_its_budget_stages_the_ranges_on_their_way_so_fusion_sends_each_byte_once(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of 40 MiB, fetched over parallel ranges, and a budget spent at every chance
    member = random.Random(5).randbytes(40 * MiB)
    zip_path = tmp_path / "ranges.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("ranges.bin", member)
    steps, run_id, name = transferring(make_steps, zip_path, TRANSFER_BUDGET_SECONDS="0")
    assert steps.fusion is not None

    # When its transfer message is delivered
    first = steps.transfer(run_id, name)

    # Then the fetch stopped, but only once the ranges already asked for had arrived and were staged, at a
    # part boundary: Fusion sent no byte that was not kept
    assert first["outcome"] == "continued", first
    fetched = steps.file(run_id, name).fetch
    assert fetched is not None and fetched.offset % MiB == 0 and fetched.offset > PARALLEL_FROM
    assert steps.fusion.bytes_sent(name) == fetched.offset

    # When every continuation is delivered
    outcomes = steps.deliver("transfer")

    # Then the archive landed whole, and Fusion sent each of its bytes once
    assert outcomes[-1]["outcome"] == "landed", [o["outcome"] for o in outcomes]
    run = steps.run(run_id)
    assert steps.read(steps.deps.layout.member(run, "ranges.bin")) == member
    assert steps.fusion.bytes_sent(name) == zip_path.stat().st_size


def test_a_unit_claim_is_taken_over_only_once_it_is_stale() -> None:
    # Given a unit being worked on since noon, with a step overdue after 600 s
    noon = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    working = Unit(0, 4, UnitState.WORKING, claimed_at=noon)
    claim = functools.partial(_claim, overdue=600.0, waiting=UnitState.PENDING)

    # When another invocation tries to claim it while the claim is live (at exactly 600 s too)
    # Then it is refused: a live invocation's unit is never taken over
    for seconds in (1, 600):
        with pytest.raises(_NotClaimable):
            claim(noon + timedelta(seconds=seconds))(working)

    # When it tries once the claim is stale, Then it takes the unit over, claimed from then (one more claim)
    later = noon + timedelta(seconds=601)
    assert claim(later)(working) == working.but(claimed_at=later, claims=working.claims + 1)
