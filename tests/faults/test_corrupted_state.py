"""What one invocation leaves for the next, damaged or replaced between two invocations: a unit checkpoint,
a fetch's saved SHA-256 state, the staged archive, the file at its source; and a Fusion that ignores Range.
Each is caught before it is used: the run lands byte for byte, or fails with nothing of it visible."""

from __future__ import annotations

import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from fusion_extract.chain.ledger.records import FileRecord, RunState
from fusion_extract.chain.transfer.units import Checkpoint
from tests.emulators.fusion import ExtractScenario
from tests.faults.bus import Bus, drive, start
from tests.faults.conftest import LANDED, Expect, assert_end_state
from tests.faults.storms import Cut
from tests.steps.conftest import EXTRACT, MakeSteps, Steps

# Files of several 1 MiB parts, members larger than a part, every invocation stopping at its first chance:
# checkpoints and saved hash states exist between almost every two invocations.
SMALL_STEPS = {
    "STEP_OVERDUE_SECONDS": "60",
    "RERUN_BACKOFF_SECONDS": "0",
    "FILE_RETRY_SECONDS": "0",
    "UPLOAD_PART_MB": "1",
    "TRANSFER_BUDGET_SECONDS": "0",
}
LARGE = ExtractScenario(chunks=2, rows_per_chunk=12_000, compress_level=1)
Damage = Callable[[Steps], bool]  # True once it damaged something


@dataclass
class Damaging(Bus):
    """A bus that, before a transfer invocation, damages the state one invocation left for the next, once."""

    damage: Damage = lambda _: False
    damaged: bool = False

    def deliver(self, topic: str, message: dict[str, Any]) -> dict[str, Any] | None:
        if topic == "transfer" and not self.damaged:
            self.damaged = self.damage(self.steps)
        return super().deliver(topic, message)


def _records(steps: Steps) -> list[FileRecord]:
    return [r.value for run in steps.runs() for r in steps.deps.ledger.files(run.run_id)]


def flip_checkpoint_pending(steps: Steps) -> bool:
    for name in steps.objects("_staging/"):
        if "/units/" in name:
            data = bytearray(steps.read(name))
            pending = Checkpoint.from_bytes(bytes(data)).pending
            if pending:
                data[data.rfind(pending)] ^= 0x01
                steps.deps.store.put_bytes(name, bytes(data))
                return True
    return False


def flip_hash_state(steps: Steps) -> bool:
    """One bit of a saved SHA-256 state, in a file listed without a SHA-256 (nothing later would notice)."""
    for record in _records(steps):
        fetch = record.fetch
        if fetch is not None and fetch.hashing and not fetch.done:
            current = steps.deps.ledger.load_file(record.run_id, record.name)
            flipped = f"{int(fetch.hashing[0], 16) ^ 1:x}{fetch.hashing[1:]}"
            planned = current.value.planned  # the plan's entry lives in the record (plan pages)
            assert planned is not None
            unlisted = replace(planned, sha256=None)
            damaged = current.value.but(fetch=replace(fetch, hashing=flipped), planned=unlisted)
            steps.deps.ledger.save_file(current, damaged)
            return True
    return False


def replace_staged_archive(steps: Steps) -> bool:
    for name in steps.objects("_staging/"):
        if name.endswith("/fetched") and any(r.units for r in _records(steps)):
            data = bytearray(steps.read(name))
            data[len(data) // 2] ^= 0x01  # the same size, another object
            steps.deps.store.put_bytes(name, bytes(data))
            return True
    return False


def change_file_at_source(steps: Steps) -> bool:
    for record in _records(steps):
        if record.fetch is not None and record.fetch.offset and not record.fetch.done:
            assert steps.fusion is not None
            job = steps.run(record.run_id).job_id
            steps.fusion.revise_output(str(job), record.name)
            return True
    return False


@pytest.mark.parametrize(
    ("damage", "expect"),
    [
        (flip_checkpoint_pending, LANDED),
        (flip_hash_state, LANDED),
        (replace_staged_archive, LANDED),  # damaged: a member's CRC-32 would catch it (the hard case below)
        # the listing no longer describes the file: every later attempt meets another SHA-256
        (change_file_at_source, Expect(RunState.FAILED, reason="after 3 attempts")),
    ],
)
def test_state_damaged_between_two_invocations_is_never_used(
    make_steps: MakeSteps, damage: Damage, expect: Expect
) -> None:
    # Given large files transferred in many small invocations, the state between two of them damaged once
    steps = make_steps(**SMALL_STEPS)
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, LARGE)
    bus = Damaging(steps, damage=damage)

    # When the chain runs, Then the damage was met and the end state is whole
    final = drive(steps, start(steps), bus)
    assert bus.damaged
    assert_end_state(steps, final, expect)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_fusion_that_ignores_range_with_cut_downloads_lands_whole(make_steps: MakeSteps, seed: int) -> None:
    # Given a Fusion that ignores Range, its first two downloads cut at seeded offsets, small invocations
    steps = make_steps(**SMALL_STEPS)
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, replace(LARGE, ignore_range=True))
    steps.fusion.intercept(r"/content", Cut(times=2, seed=seed))

    # When the chain runs, Then every file landed whole (a whole read where a resume was refused)
    assert_end_state(steps, drive(steps, start(steps)))


def test_a_staged_archive_replaced_by_another_valid_one_of_its_size_is_never_unpacked(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of stored members unpacked in several invocations, and another archive with the same
    # member names and sizes (so the same size), whose members' CRC-32s are their own
    def stored(name: str, seed: int) -> Path:
        rng = random.Random(seed)
        with zipfile.ZipFile(tmp_path / name, "w", zipfile.ZIP_STORED) as archive:
            for index in range(12):
                archive.writestr(f"part_{index:02}.bin", rng.randbytes(2**20 // 2))
        return tmp_path / name

    source, other = stored("source.zip", 1), stored("other.zip", 2)
    steps = make_steps(**SMALL_STEPS)
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(prebuilt_zip=str(source)))

    def swap(steps: Steps) -> bool:
        """The staged copy replaced by the other archive once a unit has begun on it."""
        for record in _records(steps):
            if record.units and record.fetch is not None:
                [fetched] = [n for n in steps.objects("_staging/") if n.endswith("/fetched")]
                steps.deps.store.put_bytes(fetched, other.read_bytes())
                return True
        return False

    # When the chain runs, the staged copy swapped between two invocations
    bus = Damaging(steps, damage=swap)
    final = drive(steps, start(steps), bus)

    # Then the swap was met, and what landed is the job's own archive, member for member
    assert bus.damaged
    assert_end_state(steps, final)
