"""An archive unpacked beside its fetch: its directory read first from its tail (the fetch then takes the
tail from memory: Fusion sends each byte once), its first unit unpacked from the bytes being staged, and
every guarantee of the units kept: a fetch that stops takes back what was unpacked beside it, a bad member
fails the attempt, and what lands is the archive byte for byte."""

from __future__ import annotations

import random
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusion_extract.chain.ledger.records import FileState, RunState
from fusion_extract.chain.transfer.landing import FIRST_DIRECTORY_BYTES
from fusion_extract.chain.transfer.overlap import HELD_BYTES, tail_length
from fusion_extract.ports import ObjectInfo, ObjectStore
from tests.steps.conftest import MakeSteps, Steps
from tests.steps.test_landing_never_lies import Meanwhile
from tests.steps.test_transfer_integrity import stored
from tests.steps.test_transfer_resumes import MiB, downloaded_bytes, transferring
from tests.steps.test_unit_writes import MeetingPuts


def members_of(seed: int, count: int = 24) -> dict[str, bytes]:
    """`count` members of half a MiB of random bytes: 12 MiB stored, past OVERLAP_FROM."""
    rng = random.Random(seed)
    return {f"part_{i:02}.bin": rng.randbytes(MiB // 2) for i in range(count)}


def staged_reads(steps: Steps, run_id: str, name: str) -> int:
    """GETs of the staged copy of `name` (its directory or its members read back)."""
    fetched = f"_staging%2F{run_id}%2F{name}%2F"
    return sum(
        1 for method, path, _ in steps.oci.served if method == "GET" and fetched in path and "fetched" in path
    )


def test_an_archive_is_unpacked_beside_its_fetch_its_directory_read_first_and_each_byte_sent_once(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of 24 members, 12 MiB
    members = members_of(1)
    zip_path = stored(tmp_path / "o.zip", members)
    steps, run_id, name = transferring(make_steps, zip_path)
    assert steps.fusion is not None
    size = zip_path.stat().st_size

    # When its file message is delivered
    outcome = steps.transfer(run_id, name)

    # Then that invocation landed it, every member byte for byte
    assert outcome["outcome"] == "landed", outcome
    run = steps.run(run_id)
    for path, data in members.items():
        assert steps.read(steps.deps.layout.member(run, path)) == data
    # And its tail was read first (its first range, as a parallel download pins the version), the rest after
    # it, and Fusion sent each byte once
    ranges = downloaded_bytes(steps, name)
    assert ranges[0] is not None
    assert ranges[0].startswith(f"bytes={size - tail_length(size, FIRST_DIRECTORY_BYTES)}-")
    assert steps.fusion.bytes_sent(name) == size
    # And the staged copy was read back once at most (by an unpacking that fell behind), its directory never
    assert staged_reads(steps, run_id, name) <= 1
    assert steps.objects("_staging/") == []


@dataclass
class SlowUnpacking:
    """A store whose first member upload waits for the fetch to commit the staged archive (or, when that
    never comes, `patience` seconds): an unpacking that falls behind a fetch that does not wait for it."""

    inner: ObjectStore
    patience: float = 2.0
    fetched: threading.Event = field(default_factory=threading.Event)
    waited: bool = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def commit_upload(self, name: str, upload_id: str, parts: Any, size: int) -> ObjectInfo:
        info = self.inner.commit_upload(name, upload_id, parts, size)
        if name.endswith("/fetched"):
            self.fetched.set()
        return info

    def put_whole(self, name: str, data: bytes | memoryview, **options: Any) -> ObjectInfo:
        if not self.waited:
            self.waited = True
            self.fetched.wait(self.patience)
        return self.inner.put_whole(name, data, **options)


def test_an_archive_of_one_unit_unpacked_slower_than_it_arrives_is_read_once_its_fetch_waiting(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of 24 members, 12 MiB (one unit, three times what the unpacking may lag by), whose
    # unpacking stalls at its first member unless the fetch, not waiting for it, ends first
    members = members_of(5)
    zip_path = stored(tmp_path / "s.zip", members)
    assert zip_path.stat().st_size > 2 * HELD_BYTES
    steps, run_id, name = transferring(make_steps, zip_path)
    steps.deps.store = SlowUnpacking(steps.deps.store)

    # When its file message is delivered
    outcome = steps.transfer(run_id, name)

    # Then it landed, and the staged copy was never read back: the fetch went at the unpacking's pace
    assert outcome["outcome"] == "landed", outcome
    run = steps.run(run_id)
    for path, data in members.items():
        assert steps.read(steps.deps.layout.member(run, path)) == data
    assert staged_reads(steps, run_id, name) == 0


def test_beside_its_fetch_an_archive_s_members_are_sent_upload_parallelism_at_once(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of 24 members of half a MiB, and a store whose member writes wait until
    # UPLOAD_PARALLELISM (3) of them are under way at once
    members = members_of(6)
    steps, run_id, name = transferring(make_steps, stored(tmp_path / "p.zip", members))
    assert steps.deps.settings.upload_parallelism == 3
    store = MeetingPuts(steps.deps.store, together=3)
    steps.deps.store = store

    # When its file message is delivered
    outcome = steps.transfer(run_id, name)

    # Then it landed, three members written at once all along (beside the fetch, within its memory bound)
    assert outcome["outcome"] == "landed", outcome
    assert not store.met.broken


def test_a_fetch_that_stops_for_its_budget_takes_back_what_was_unpacked_beside_it_and_lands_once(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of a 6 MiB member and 12 of half a MiB, whose fetch meets the end of its budget as
    # it begins (the large member is then paused beside it, with a checkpoint and an upload open)
    members = {"big.bin": random.Random(9).randbytes(6 * MiB), **members_of(2, 12)}
    zip_path = stored(tmp_path / "b.zip", members)
    steps, run_id, name = transferring(make_steps, zip_path)
    spend = lambda: steps.clock.advance(steps.deps.settings.transfer_budget_seconds + 1)  # noqa: E731
    steps.deps.archives = Meanwhile(steps.deps.archives, name, spend)

    # When its file message is delivered
    first = steps.transfer(run_id, name)

    # Then the fetch stopped, and nothing unpacked beside it is left open: no upload, no checkpoint
    assert first["outcome"] == "continued", first
    open_uploads = steps.deps.oci.object_storage.list_multipart_uploads("emuns", "landing").data
    assert [upload.object for upload in open_uploads] == [f"_staging/{run_id}/{name}/1/fetched"]
    assert [
        o for o in steps.objects("_staging/") if "/units/" in o or ("/members/" in o and o.endswith("/0"))
    ] == []

    # When its continuation is delivered
    outcomes = steps.deliver("transfer")

    # Then it landed on its first attempt, member for member, with no upload left open
    assert outcomes[-1]["outcome"] == "landed", [o["outcome"] for o in outcomes]
    record = steps.file(run_id, name)
    assert (record.state, record.attempts) == (FileState.LANDED, 1)
    run = steps.run(run_id)
    assert run.state is RunState.LANDED
    for path, data in members.items():
        assert steps.read(steps.deps.layout.member(run, path)) == data
    assert steps.deps.oci.object_storage.list_multipart_uploads("emuns", "landing").data == []
    assert steps.objects("_staging/") == []


@dataclass
class SpentAtPart:
    """A store whose invocation's budget is spent as the fetch stages its first part, once."""

    inner: ObjectStore
    spend: Callable[[], object]
    spent: bool = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upload_part(self, name: str, upload_id: str, number: int, data: bytes | memoryview) -> str:
        if name.endswith("/fetched") and not self.spent:
            self.spent = True
            self.spend()
        return self.inner.upload_part(name, upload_id, number, data)


def test_a_fetch_that_goes_on_in_another_invocation_takes_the_tail_read_first_from_staging_not_fusion(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of 24 MiB whose directory is read first from its tail, and whose fetch meets the end
    # of its budget as it stages its first part (the ranges on their way are staged, then it stops)
    members = members_of(3, count=48)
    zip_path = stored(tmp_path / "t.zip", members)
    size = zip_path.stat().st_size
    steps, run_id, name = transferring(make_steps, zip_path)
    assert steps.fusion is not None
    spend = lambda: steps.clock.advance(steps.deps.settings.transfer_budget_seconds + 1)  # noqa: E731
    steps.deps.store = SpentAtPart(steps.deps.store, spend)

    # When its file message is delivered, then every message the chain publishes
    first = steps.transfer(run_id, name)
    outcomes = steps.deliver("transfer")

    # Then the fetch went on in a second invocation, and the file landed member for member
    assert first["outcome"] == "continued" and "unit" not in first, first
    assert outcomes[-1]["outcome"] == "landed", [o["outcome"] for o in outcomes]
    run = steps.run(run_id)
    for path, data in members.items():
        assert steps.read(steps.deps.layout.member(run, path)) == data
    # And Fusion sent each byte once, the tail too: the second fetch took it from where the first kept it
    assert steps.fusion.bytes_sent(name) == size
    assert steps.objects("_staging/") == []


def test_a_corrupt_member_unpacked_beside_the_fetch_fails_the_attempt_and_nothing_is_visible(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given a 12 MiB archive whose fourth member's bytes were damaged after it was written
    members = members_of(3)
    zip_path = stored(tmp_path / "c.zip", members)
    info = zipfile.ZipFile(zip_path).infolist()[3]
    data = bytearray(zip_path.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + 100] ^= 0x55
    zip_path.write_bytes(bytes(data))
    steps, run_id, name = transferring(make_steps, zip_path, FILE_MAX_ATTEMPTS="2")

    # When it is transferred
    outcome = steps.transfer(run_id, name)

    # Then the attempt failed, naming the member, and the file waits to start over from the fetch
    assert outcome["outcome"] == "retry_scheduled" and info.filename in outcome["reason"], outcome
    record = steps.file(run_id, name)
    assert (record.state, record.attempts, record.fetch, record.units) == (FileState.PENDING, 1, None, ())
    assert not set(steps.landed(steps.run(run_id))) & set(members)


def test_what_an_invocation_killed_while_unpacking_beside_its_fetch_left_is_gone_once_the_file_lands(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive whose fetch stopped for its budget (every chance), and what an invocation killed while
    # unpacking beside that fetch would have left: a member's upload open and a unit checkpoint
    members = members_of(4)
    steps, run_id, name = transferring(
        make_steps, stored(tmp_path / "k.zip", members), TRANSFER_BUDGET_SECONDS="0"
    )
    assert steps.transfer(run_id, name)["outcome"] == "continued"
    folder = f"_staging/{run_id}/{name}/1/"
    store = steps.deps.store
    store.start_upload(f"{folder}members/part_00.bin")
    store.put_bytes(f"{folder}units/0", b"a checkpoint of the killed invocation")

    # When the fetch's continuations and every message after them are delivered
    outcomes = steps.deliver("transfer")

    # Then the file landed, member for member, and nothing of the killed invocation is left open
    assert outcomes[-1]["outcome"] == "landed", [o["outcome"] for o in outcomes]
    run = steps.run(run_id)
    for path, data in members.items():
        assert steps.read(steps.deps.layout.member(run, path)) == data
    assert steps.deps.oci.object_storage.list_multipart_uploads("emuns", "landing").data == []
    assert steps.objects("_staging/") == []
