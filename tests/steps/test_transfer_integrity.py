"""What one invocation leaves for the next is checked before it is used: a unit's checkpoint, the SHA-256
state of a fetch, the staged archive itself. Damaged or replaced, it is refused and the work starts over;
it never lands wrong bytes nor a wrong SHA-256 under `_SUCCESS`."""

from __future__ import annotations

import hashlib
import random
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fusion_extract.chain.ledger.records import Fetch, RunState
from fusion_extract.chain.transfer.units import Checkpoint
from tests.emulators.fusion import ExtractScenario
from tests.steps.conftest import EXTRACT, MakeSteps, Steps
from tests.steps.test_transfer_resumes import MiB, archive, csv_text, transferring


def random_members(seed: int) -> dict[str, bytes]:
    """20 members of half a MiB each, the same names and sizes whatever the seed."""
    rng = random.Random(seed)
    return {f"part_{i:02}.bin": rng.randbytes(MiB // 2) for i in range(20)}


def stored(path: Path, members: dict[str, bytes]) -> Path:
    """An archive whose size depends only on its members' names and sizes (nothing compressed)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def checkpoints(steps: Steps, run_id: str, name: str) -> list[str]:
    return [o for o in steps.objects(f"_staging/{run_id}/{name}/") if "/units/" in o]


def unlist_sha256(steps: Steps, run_id: str, name: str) -> None:
    """The file as if Fusion had listed it without a SHA-256 (the chain computes the one it records)."""
    current = steps.deps.ledger.load_file(run_id, name)
    planned = current.value.planned
    assert planned is not None
    steps.deps.ledger.save_file(current, current.value.but(planned=replace(planned, sha256=None)))


def assert_landed_exactly(steps: Steps, run_id: str, members: dict[str, bytes]) -> None:
    run = steps.run(run_id)
    assert run.state is RunState.LANDED, run.reason
    for path, data in members.items():
        assert steps.read(steps.deps.layout.member(run, path)) == data, path
    for file in steps.planned(run):
        for member in steps.file(run_id, file.name).members:
            if member.path in members:
                assert member.sha256 == hashlib.sha256(members[member.path]).hexdigest(), member.path
    assert steps.objects("_staging/") == []


def test_a_checkpoint_whose_pending_bytes_were_damaged_is_refused_and_the_member_starts_over(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given a 5 MiB member that takes several invocations (a checkpoint between each), small ones after it
    rng = random.Random(3)
    members = {"big.csv": csv_text(rng, 5 * MiB), **{f"small_{i}.csv": csv_text(rng, 3000) for i in range(3)}}
    steps, run_id, name = transferring(
        make_steps, archive(tmp_path / "a.zip", members), TRANSFER_BUDGET_SECONDS="0"
    )
    damaged: list[str] = []

    def damage_once(_: dict[str, Any]) -> bool:
        """Before an invocation: one byte of the first checkpoint's bytes not yet in a part is flipped."""
        if damaged:
            return True
        for object_name in checkpoints(steps, run_id, name):
            data = bytearray(steps.read(object_name))
            pending = Checkpoint.from_bytes(bytes(data)).pending
            if not damaged and pending:
                data[data.rfind(pending) + len(pending) // 2] ^= 0x01
                steps.deps.store.put_bytes(object_name, bytes(data))
                damaged.append(object_name)
        return True

    # When the transfer runs to its end, the checkpoint damaged between two invocations
    outcomes = [steps.transfer(run_id, name), *steps.deliver("transfer", damage_once)]

    # Then the damage was met, and what landed is every member byte for byte, with its true SHA-256
    assert damaged, [o["outcome"] for o in outcomes]
    assert_landed_exactly(steps, run_id, members)


def flip_a_hash_bit(fetch: Fetch) -> Fetch:
    """One bit of the running hash words: any check of the state's shape accepts it."""
    return replace(fetch, hashing=f"{int(fetch.hashing[0], 16) ^ 1:x}{fetch.hashing[1:]}")


def skip_a_part(fetch: Fetch) -> Fetch:
    """The offset a part further than the bytes hashed (and uploaded)."""
    return replace(fetch, offset=fetch.offset + MiB)


def drop_the_hash_state(fetch: Fetch) -> Fetch:
    """Bytes fetched, yet no SHA-256 state for them: hashing afresh would record the SHA-256 of the rest."""
    return replace(fetch, hashing="")


@pytest.mark.parametrize(
    ("damage", "size"),
    [(flip_a_hash_bit, 4 * MiB), (skip_a_part, 4 * MiB), (drop_the_hash_state, 3 * MiB // 2)],
    ids=["hash bit flipped", "a part skipped", "hash state dropped (the next invocation ends the fetch)"],
)
def test_a_saved_sha256_state_damaged_between_invocations_is_refused_and_the_file_fetched_again(
    make_steps: MakeSteps, tmp_path: Path, damage: Callable[[Fetch], Fetch], size: int
) -> None:
    # Given an archive of several parts whose listing gives no SHA-256 (the chain computes the one it records)
    rng = random.Random(5)
    members = {"data.csv": rng.randbytes(size)}
    zip_path = archive(tmp_path / "b.zip", members)
    steps, run_id, name = transferring(make_steps, zip_path, TRANSFER_BUDGET_SECONDS="0")
    unlist_sha256(steps, run_id, name)

    # And the first invocation stopped part-way, its SHA-256 state saved in the file record
    assert steps.transfer(run_id, name)["outcome"] == "continued"
    saved = steps.deps.ledger.load_file(run_id, name)
    fetch = saved.value.fetch
    assert fetch is not None and fetch.hashing and 0 < fetch.offset < zip_path.stat().st_size

    # When the saved progress is damaged
    steps.deps.ledger.save_file(saved, saved.value.but(fetch=damage(fetch)))
    outcomes = steps.deliver("transfer")
    steps.clock.advance(3600)  # past any retry's delay
    steps.sweep()
    outcomes += steps.deliver("transfer")

    # Then the SHA-256 on record is the archive's own, its members landed byte for byte
    assert steps.file(run_id, name).sha256 == hashlib.sha256(zip_path.read_bytes()).hexdigest()
    assert_landed_exactly(steps, run_id, members)
    # And the damaged state was refused, by name (the attempt failed and the file was fetched again)
    assert [o["outcome"] for o in outcomes if "SHA-256 state" in str(o.get("reason"))] == ["retry_scheduled"]
    assert steps.file(run_id, name).attempts == 2


def test_a_staged_archive_replaced_between_units_is_never_unpacked_and_the_file_is_fetched_again(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive unpacked in two units (its budget cannot hold both), the first one done
    members = random_members(21)
    steps, run_id, name = transferring(
        make_steps,
        stored(tmp_path / "s.zip", members),
        TRANSFER_FANOUT="2",
        FILE_RETRY_SECONDS="0",
        TRANSFER_BUDGET_SECONDS="0.25",
    )
    assert steps.transfer(run_id, name)["outcome"] == "unpacked"

    # When the staged copy is replaced by another valid archive of the same size and member names
    [fetched] = [o for o in steps.objects(f"_staging/{run_id}/{name}/") if o.endswith("/fetched")]
    other = stored(tmp_path / "other.zip", random_members(22))
    assert len(other.read_bytes()) == len(steps.read(fetched))
    steps.deps.store.put_bytes(fetched, other.read_bytes())
    outcomes = steps.deliver("transfer")
    steps.clock.advance(3600)
    steps.sweep()
    outcomes += steps.deliver("transfer")

    # Then the replacement was refused by name (the attempt failed), and the file was fetched again
    refused = [o for o in outcomes if "staged" in str(o.get("reason"))]
    assert [o["outcome"] for o in refused] == ["retry_scheduled"], outcomes
    # And what landed is the job's own archive, member for member
    assert_landed_exactly(steps, run_id, members)


def content_answers(steps: Steps, name: str) -> list[tuple[int, int]]:
    """Each download of `name` Fusion answered: (status, the byte its Range asked to start at)."""
    assert steps.fusion is not None
    served = [r for r in steps.fusion.requests if r.path.endswith(f"/{name}/content")]
    return [(r.status, int(r.headers.get("range", "bytes=0-")[6:].split("-")[0])) for r in served]


def test_a_server_that_ignores_range_costs_one_whole_read_not_one_per_invocation(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given a 6 MiB archive (one stream) served by a Fusion that ignores Range, fetched 1 MiB per invocation
    members = {"data.bin": random.Random(9).randbytes(6 * MiB)}
    zip_path = stored(tmp_path / "r.zip", members)
    steps = make_steps(UPLOAD_PART_MB="1", TRANSFER_BUDGET_SECONDS="0")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(prebuilt_zip=str(zip_path), ignore_range=True))
    run = steps.until_transferring()
    [name] = [f.name for f in steps.planned(run) if f.name.endswith(".zip")]

    # When the chain runs to its end
    steps.deliver("transfer")

    # Then the archive landed byte for byte
    assert_landed_exactly(steps, run.run_id, members)
    # And Fusion was asked three times, not once per invocation with each answer skipping the bytes already
    # fetched: the first read (stopped by the budget), the resume (answered with the whole file: refused
    # unread), and one whole read from the start, not stopped by the budget
    assert content_answers(steps, name) == [(200, 0), (200, MiB), (200, 0)]


@pytest.mark.parametrize("dated_only", [False, True], ids=["etag", "last-modified-only"])
def test_a_file_that_changed_between_two_invocations_of_its_fetch_starts_over_never_joined(
    make_steps: MakeSteps, tmp_path: Path, dated_only: bool
) -> None:
    # Given a 4 MiB archive fetched 1 MiB per invocation, listed without a SHA-256, the first part fetched,
    # from a Fusion that names a file's version by its ETag, or by its Last-Modified alone
    members = {"data.bin": random.Random(4).randbytes(4 * MiB)}
    zip_path = stored(tmp_path / "v.zip", members)
    steps, run_id, name = transferring(
        make_steps, zip_path, dated_only=dated_only, TRANSFER_BUDGET_SECONDS="0"
    )
    unlist_sha256(steps, run_id, name)
    assert steps.transfer(run_id, name)["outcome"] == "continued"
    fetch = steps.file(run_id, name).fetch
    assert fetch is not None and (fetch.source_etag or fetch.source_modified)  # the version read, on record

    # When the file changes in Fusion before the next invocation resumes it
    assert steps.fusion is not None
    job = steps.run(run_id).job_id
    steps.fusion.revise_output(str(job), name)
    outcomes = steps.deliver("transfer")

    # Then the resume was refused as a changed file: the attempt failed, nothing landed
    assert [o["outcome"] for o in outcomes] == ["retry_scheduled"], outcomes
    assert "changed since its download began" in outcomes[0]["reason"]
    assert steps.file(run_id, name).fetch is None and "data.bin" not in steps.landed(steps.run(run_id))

    # When the file is as it was again and the file starts over, Then one version lands, byte for byte
    steps.fusion.revise_output(str(job), name)
    steps.clock.advance(3600)
    steps.sweep()
    steps.deliver("transfer")
    assert_landed_exactly(steps, run_id, members)
