"""One unit over several invocations: each makes progress whatever its budget, and each goes on from a
checkpoint only when the checkpoint is its own member's."""

from __future__ import annotations

import hashlib
import random
import zipfile
from collections.abc import Iterator
from io import BytesIO

import pytest

from fusion_extract.chain.budget import Budget
from fusion_extract.chain.ledger.records import Unit
from fusion_extract.chain.transfer.archive import ZipLimits, read_directory
from fusion_extract.chain.transfer.units import UnitRun, _Cursor, staged_reader
from fusion_extract.chain.transfer.zipdir import RangeReader
from fusion_extract.errors import IntegrityError
from tests.steps.conftest import Steps

PART = 2**20
STAGED = "_staging/r1/a.zip/1/fetched"
FOLDER = "_staging/r1/a.zip/1/"


def staged_archive(steps: Steps, members: dict[str, bytes]) -> tuple[str, int]:
    """The archive as the fetch leaves it in staging (stored: its sizes are its members' own)."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    data = buffer.getvalue()
    return steps.deps.store.put_bytes(STAGED, data), len(data)


def invocation(steps: Steps, etag: str, size: int, seconds: float) -> UnitRun:
    """What one invocation of the transfer step unpacks with: a budget of `seconds` on the manual clock."""
    store = steps.deps.store
    limits = ZipLimits(max_entries=20, max_total_bytes=2**30, max_ratio=200)
    entries = read_directory(staged_reader(store, STAGED, etag), size, limits)
    return UnitRun(store, STAGED, etag, FOLDER, entries, PART, 2, Budget(steps.clock, seconds))


def members(seed: int, *sizes: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {f"m{i}.bin": rng.randbytes(size) for i, size in enumerate(sizes)}


def test_every_invocation_of_a_unit_makes_progress_even_with_its_budget_spent(ledger_steps: Steps) -> None:
    # Given a unit of one member of three parts and two small members, and invocations whose budget is
    # spent before they start
    content = members(1, 3 * PART, 1000, 1000)
    etag, size = staged_archive(ledger_steps, content)
    unit, done, invocations = Unit(0, 3), False, 0

    # When invocations follow one another until the unit is done (a bound keeps a stuck unit from looping)
    while not done and invocations < 10:
        unit, done = invocation(ledger_steps, etag, size, seconds=0).run(0, unit)
        invocations += 1

    # Then each made one step: three parts of the large member (the last one also ends it), then one small
    # member each
    assert (done, invocations) == (True, 5)
    staged = {member.member.path: member.member.sha256 for member in unit.staged}
    assert staged == {path: hashlib.sha256(data).hexdigest() for path, data in content.items()}
    for path, data in content.items():
        assert ledger_steps.read(f"{FOLDER}members/{path}") == data


def test_a_checkpoint_of_another_member_is_not_used(ledger_steps: Steps) -> None:
    # Given a unit of two large members whose first invocation paused inside the first one, leaving its
    # checkpoint, and whose second invocation then unpacked both
    content = members(2, 2 * PART + 10, 2 * PART + 20)
    etag, size = staged_archive(ledger_steps, content)
    paused, done = invocation(ledger_steps, etag, size, seconds=0).run(0, Unit(0, 2))
    assert not done and paused.staged == ()
    whole, done = invocation(ledger_steps, etag, size, seconds=240).run(0, paused)
    assert done

    # When an invocation goes on from where the ledger says the first member was done (as when the second
    # invocation stopped between the two members), the first member's checkpoint still in staging
    again, done = invocation(ledger_steps, etag, size, seconds=240).run(
        0, paused.but(staged=whole.staged[:1])
    )

    # Then the second member is unpacked from its own start, byte for byte
    assert done
    assert again.staged[1].member.sha256 == hashlib.sha256(content["m1.bin"]).hexdigest()
    assert ledger_steps.read(f"{FOLDER}members/m1.bin") == content["m1.bin"]


def test_a_units_metadata_member_is_kept_across_its_invocations(ledger_steps: Steps) -> None:
    # Given a unit whose first member is Fusion's metadata and whose second takes several invocations
    metadata = b'{"files": [{"name": "m1.bin", "rows": 0}]}'
    content = {"view_metadata.json": metadata, **members(4, 2 * PART + 30)}
    etag, size = staged_archive(ledger_steps, content)
    unit, done, invocations = Unit(0, 2), False, 0

    # When invocations whose budget is spent follow one another until the unit is done
    while not done and invocations < 10:
        unit, done = invocation(ledger_steps, etag, size, seconds=0).run(0, unit)
        invocations += 1

    # Then the metadata read by the first is still the unit's when the last ends it (its row counts checked)
    assert done and invocations > 2
    assert unit.metadata is not None and unit.metadata["files"] == {"m1.bin": 0}


def test_a_staged_archive_replaced_after_its_directory_was_read_is_not_unpacked(ledger_steps: Steps) -> None:
    # Given a unit whose invocation read the staged archive's directory
    content = members(5, 1000, 2000)
    etag, size = staged_archive(ledger_steps, content)
    work = invocation(ledger_steps, etag, size, seconds=240)

    # When the staged copy is replaced by another of the same members' names and sizes before it is unpacked
    staged_archive(ledger_steps, members(6, 1000, 2000))

    # Then the unit refuses to read it: nothing of the other copy is staged as this file's members
    with pytest.raises(IntegrityError, match="changed since it was fetched"):
        work.run(0, Unit(0, 2))
    assert ledger_steps.objects(f"{FOLDER}members/") == []


def test_only_the_member_named_as_metadata_is_taken_for_it(ledger_steps: Steps) -> None:
    # Given a data member in JSON that happens to have the metadata's shape, before the real metadata
    content = {
        "view_1.json": b'{"files": [{"name": "elsewhere.csv", "rows": 9}]}',
        "view_metadata.json": b'{"files": [{"name": "view_1.json", "rows": 0}]}',
    }
    etag, size = staged_archive(ledger_steps, content)

    # When the unit is unpacked
    unit, done = invocation(ledger_steps, etag, size, seconds=240).run(0, Unit(0, 2))

    # Then the row counts on record are the metadata member's
    assert done and unit.metadata is not None and unit.metadata["files"] == {"view_1.json": 0}


def test_a_units_open_read_is_closed_when_it_stops_midway() -> None:
    # Given the one ranged read a unit opens over its members, of which it read only the first bytes
    closed: list[tuple[int, int]] = []

    def read(start: int, end: int) -> Iterator[bytes]:
        try:
            yield b"x" * 10
            yield b"x" * (end - start - 10)
        finally:
            closed.append((start, end))

    cursor = _Cursor(read, 0, 100)
    with cursor:
        assert b"".join(cursor(0, 10)) == b"x" * 10

    # When the unit stops (its budget spent), Then the read is closed at once: its connection is not held
    assert closed == [(0, 100)]


def slow_reads(steps: Steps, etag: str, seconds: float) -> RangeReader:
    """The staged copy, read as a slow source would be: every chunk costs `seconds` on the manual clock."""
    staged = staged_reader(steps.deps.store, STAGED, etag)

    def read(start: int, end: int) -> Iterator[bytes]:
        for chunk in staged(start, end):
            steps.clock.advance(seconds)
            yield chunk

    return read


@pytest.mark.parametrize(
    ("budget", "finished"), [(1.0, True), (0.2, False)], ids=["sure to finish", "not sure to finish"]
)
def test_a_member_the_budget_is_sure_to_finish_is_never_asked_to_stop(
    ledger_steps: Steps, budget: float, finished: bool
) -> None:
    # Given a member of four parts and more, too large to go up whole, and a source so slow that the budget
    # is spent by the first chunk read
    content = members(8, 4 * PART + 10)
    etag, size = staged_archive(ledger_steps, content)
    run = invocation(ledger_steps, etag, size, seconds=budget)
    run.source = slow_reads(ledger_steps, etag, seconds=budget)

    # When the unit is unpacked: the budget at the start is sure to finish the member at SURE_RATE (16 MiB/s
    # over 1 s) or not (over 0.2 s, 3.2 MiB)
    unit, done = run.run(0, Unit(0, 1))

    # Then a member the budget was sure to finish is staged whole in this invocation, though the budget ran
    # out on the way (fast inflate needs no stop); one it was not sure of stops after its first part
    assert done is finished
    assert [member.member.path for member in unit.staged] == (["m0.bin"] if finished else [])
    if finished:
        assert ledger_steps.read(f"{FOLDER}members/m0.bin") == content["m0.bin"]
