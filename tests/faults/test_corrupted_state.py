"""What one invocation leaves for the next, damaged or replaced between two invocations: a unit checkpoint,
a fetch's saved SHA-256 state, the staged archive, the file at its source; and a Fusion that ignores Range.
Each is caught before it is used: the run lands byte for byte, or fails with nothing of it visible."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from fusion_extract.chain.records import FileRecord, RunState
from fusion_extract.chain.units import Checkpoint
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
    for record in _records(steps):
        fetch = record.fetch
        if fetch is not None and fetch.hashing and not fetch.done:
            current = steps.deps.ledger.load_file(record.run_id, record.name)
            flipped = f"{int(fetch.hashing[0], 16) ^ 1:x}{fetch.hashing[1:]}"
            steps.deps.ledger.save_file(current, record.but(fetch=replace(fetch, hashing=flipped)))
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
        (replace_staged_archive, LANDED),
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
