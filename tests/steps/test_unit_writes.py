"""How a unit writes its members into staging: in as few Object Storage requests as the memory bound allows,
counted by the OCI emulator, with the product's default configuration (UPLOAD_PART_MB 8, UPLOAD_PARALLELISM
3, TRANSFER_BUDGET_SECONDS 240)."""

from __future__ import annotations

import hashlib
import threading
import tracemalloc
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from fusion_extract.chain.budget import Budget
from fusion_extract.chain.ledger.records import Unit
from fusion_extract.chain.transfer.archive import ZipLimits, read_directory
from fusion_extract.chain.transfer.units import UnitRun, staged_reader
from fusion_extract.ports import ObjectInfo, ObjectStore
from tests.steps.conftest import Steps

MiB = 2**20
STAGED = "_staging/r1/a.zip/1/fetched"
FOLDER = "_staging/r1/a.zip/1/"


def text(size: int) -> bytes:
    """Row-like text that deflates well, so the archive stays small and the member large."""
    block = b"".join(
        f"{i},INV-{i:09d},Acme Supplies,{i * 7 % 1000}.{i % 100:02d}\n".encode() for i in range(400)
    )
    return (block * (size // len(block) + 1))[:size]


def staged(steps: Steps, path: str, content: bytes) -> tuple[str, int]:
    """An archive of one deflated member, as the fetch leaves it in staging: its ETag and size."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr(path, content)
    data = buffer.getvalue()
    return steps.deps.store.put_bytes(STAGED, data), len(data)


def unpacked_with_defaults(steps: Steps, etag: str, size: int) -> tuple[bool, list[tuple[str, str]]]:
    """One invocation of the unit with the default configuration: (done, the requests it made)."""
    s = steps.deps.settings
    store = steps.deps.store
    limits = ZipLimits(s.zip_max_entries, s.zip_max_bytes, s.zip_max_ratio)
    entries = read_directory(staged_reader(store, STAGED, etag), size, limits)
    budget = Budget(steps.clock, s.transfer_budget_seconds)
    run = UnitRun(store, STAGED, etag, FOLDER, entries, s.upload_part_mb * MiB, s.upload_parallelism, budget)
    before = len(steps.oci.served)
    _, done = run.run(0, Unit(0, len(entries)))
    return done, [(method, path) for method, path, _ in steps.oci.served[before:]]


def kinds(requests: list[tuple[str, str]]) -> list[str]:
    """Each request as method and the kind of path: `o` an object, `u` a multipart upload."""
    return [f"{method} {path.split('/')[5] if path.count('/') >= 5 else path}" for method, path in requests]


def test_the_defaults_are_the_ones_these_figures_are_for(ledger_steps: Steps) -> None:
    s = ledger_steps.deps.settings
    assert (s.upload_part_mb, s.upload_parallelism, s.transfer_budget_seconds) == (8, 3, 240)


def test_a_100_mib_member_costs_at_most_11_requests_and_nothing_is_looked_up_after(
    ledger_steps: Steps,
) -> None:
    # Given a staged archive of one 100 MiB member
    content = text(100 * MiB)
    etag, size = staged(ledger_steps, "big.csv", content)

    # When one invocation unpacks it with the default configuration
    done, requests = unpacked_with_defaults(ledger_steps, etag, size)

    # Then it took 11 requests at most (before: 17): the archive's one ranged read, the look for a checkpoint
    # of a member that may stop, and a multipart upload of 7 parts of about 14 MiB (one uploading while the
    # next is filled, within the memory bound of 4 parts of 8 MiB) instead of 13 of 8 MiB
    assert done
    assert len(requests) <= 11, kinds(requests)
    assert kinds(requests).count("PUT u") == 7
    # And nothing was asked after the commit: its answer gave the ETag and MD5, the size is known
    assert kinds(requests)[-1] == "POST u"
    assert (
        hashlib.sha256(ledger_steps.read(f"{FOLDER}members/big.csv")).digest()
        == hashlib.sha256(content).digest()
    )


def test_a_member_within_the_memory_bound_goes_up_in_one_put_object(ledger_steps: Steps) -> None:
    # Given a staged archive of one 30 MiB member: within the 32 MiB bound, and sure to finish in 240 s
    content = text(30 * MiB)
    etag, size = staged(ledger_steps, "mid.csv", content)

    # When one invocation unpacks it
    done, requests = unpacked_with_defaults(ledger_steps, etag, size)

    # Then two requests in all (before: 8): the ranged read, and one PutObject; no multipart, no look-up
    assert done
    assert kinds(requests) == ["GET o", "PUT o"]
    assert ledger_steps.read(f"{FOLDER}members/mid.csv") == content


def test_only_the_first_member_to_do_is_looked_for_in_a_checkpoint(ledger_steps: Steps) -> None:
    # Given a unit of three members above the memory bound of 1 MiB parts and 2 parallel uploads (3 MiB)
    store = ledger_steps.deps.store
    content = {f"m{i}.csv": text(5 * MiB + i) for i in range(3)}
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path, data in content.items():
            archive.writestr(path, data)
    etag = store.put_bytes(STAGED, buffer.getvalue())
    limits = ZipLimits(max_entries=20, max_total_bytes=2**30, max_ratio=1000)
    entries = read_directory(staged_reader(store, STAGED, etag), len(buffer.getvalue()), limits)
    run = UnitRun(store, STAGED, etag, FOLDER, entries, MiB, 2, Budget(ledger_steps.clock, 240))

    # When one invocation unpacks them
    before = len(ledger_steps.oci.served)
    _, done = run.run(0, Unit(0, 3))

    # Then only the first was looked for in a checkpoint (an invocation can only have paused in the member the
    # unit's record points at), and each member landed byte for byte
    looked = [
        path for method, path, _ in ledger_steps.oci.served[before:] if method == "GET" and "units" in path
    ]
    assert done and len(looked) == 1
    for path, data in content.items():
        assert ledger_steps.read(f"{FOLDER}members/{path}") == data


def test_what_a_unit_holds_for_upload_stays_within_the_memory_bound(ledger_steps: Steps) -> None:
    # Given a unit of eight members of 2.5 MiB, each to go up whole, with 1 MiB parts and 2 parallel uploads
    # (a bound of 3 MiB: one such member at a time)
    store = ledger_steps.deps.store
    content = {f"m{i}.csv": text(5 * MiB // 2 + i) for i in range(8)}
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path, data in content.items():
            archive.writestr(path, data)
    etag = store.put_bytes(STAGED, buffer.getvalue())
    limits = ZipLimits(max_entries=20, max_total_bytes=2**30, max_ratio=1000)
    entries = read_directory(staged_reader(store, STAGED, etag), len(buffer.getvalue()), limits)
    run = UnitRun(store, STAGED, etag, FOLDER, entries, MiB, 2, Budget(ledger_steps.clock, 240))
    del buffer, content

    # When one invocation unpacks them, the memory the process allocates traced
    tracemalloc.start()
    try:
        _, done = run.run(0, Unit(0, 8))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Then at its peak it held about one member and its reading (not the eight it could have queued)
    assert done
    assert peak < 9 * MiB, peak / MiB


@dataclass
class MeetingPuts:
    """A store whose whole-object writes wait until `together` of them are under way at once (or fail)."""

    inner: ObjectStore
    together: int
    met: threading.Barrier = field(init=False)

    def __post_init__(self) -> None:
        self.met = threading.Barrier(self.together, timeout=30)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_whole(self, name: str, data: bytes | memoryview, **options: Any) -> ObjectInfo:
        if not self.met.broken:
            self.met.wait()  # BrokenBarrierError: never that many at once
        return self.inner.put_whole(name, data, **options)


def test_beside_a_fetch_a_unit_sends_as_many_members_at_once_within_the_smaller_memory_bound(
    ledger_steps: Steps,
) -> None:
    # Given a staged archive of six 1 MiB members and one of 20 MiB, unpacked by a unit whose memory bound is
    # for one upload (beside a fetch: 16 MiB) and whose requests are UPLOAD_PARALLELISM's 3
    members = {f"small_{i}.csv": text(MiB + i) for i in range(6)} | {"large.csv": text(20 * MiB)}
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path, content in members.items():
            archive.writestr(path, content)
    data = buffer.getvalue()
    store = MeetingPuts(ledger_steps.deps.store, together=3)
    etag = store.put_bytes(STAGED, data)
    s = ledger_steps.deps.settings
    limits = ZipLimits(s.zip_max_entries, s.zip_max_bytes, s.zip_max_ratio)
    entries = read_directory(staged_reader(store, STAGED, etag), len(data), limits)
    budget = Budget(ledger_steps.clock, s.transfer_budget_seconds)
    run = UnitRun(store, STAGED, etag, FOLDER, entries, 8 * MiB, 3, budget, memory_for=1)
    before = len(ledger_steps.oci.served)

    # When it unpacks them (each small member's write waiting until three are under way at once)
    _, done = run.run(0, Unit(0, len(entries)))

    # Then every member is staged, three small ones were sent at once, and the large one went up in parts
    # of 8 MiB (past the 16 MiB bound: not whole, as it would be within UPLOAD_PARALLELISM's 32 MiB)
    assert done and not store.met.broken
    for path, content in members.items():
        assert ledger_steps.read(f"{FOLDER}members/{path}") == content
    requests = kinds([(m, p) for m, p, _ in ledger_steps.oci.served[before:]])
    assert requests.count("PUT u") == 3, requests
