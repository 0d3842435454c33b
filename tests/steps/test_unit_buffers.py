"""A unit's uploads fill a few buffers again and again (writing.HeldBytes): never more than its bound, and
never one whose request is not over, its retries included. The real SDK against the OCI emulator over HTTP;
the emulator answers a request as the tests say (`intercept`), and keeps what it stored for them to read."""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from urllib.parse import unquote

import pytest

from fusion_extract.chain.budget import Budget
from fusion_extract.chain.ledger.records import Unit
from fusion_extract.chain.transfer.archive import ZipLimits, read_directory
from fusion_extract.chain.transfer.units import UnitRun, staged_reader
from fusion_extract.errors import FusionExtractError
from tests.clocks import ManualClock
from tests.emulators.loopback import Request, Response
from tests.emulators.oci.http import error
from tests.steps.conftest import Steps

MiB = 2**20
STAGED = "_staging/r1/a.zip/1/fetched"
FOLDER = "_staging/r1/a.zip/1/"
PARTS = r".*/u/.*"  # the parts of multipart uploads
OBJECTS = r".*/o/.*members.*"  # the members put whole


def content(size: int, seed: int) -> bytes:
    """Bytes that differ from part to part and member to member (a part sent from another's buffer shows),
    and deflate well (the archive stays small)."""
    line = b"".join(f"{seed},{i:07d},{(i * 7919 + seed) % 100_003}\n".encode() for i in range(2000))
    return (line * (size // len(line) + 1))[:size]


def unit_run(steps: Steps, members: dict[str, bytes], part_size: int, budget_seconds: float) -> UnitRun:
    """A unit of the archive of `members`, staged, with three requests at once and a budget on a clock of
    its own that never moves (a retry's wait does not spend it)."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    data = buffer.getvalue()
    store = steps.deps.store
    etag = store.put_bytes(STAGED, data)
    s = steps.deps.settings
    entries = read_directory(
        staged_reader(store, STAGED, etag), len(data), ZipLimits(s.zip_max_entries, s.zip_max_bytes, 1000)
    )
    budget = Budget(ManualClock(), budget_seconds)
    return UnitRun(store, STAGED, etag, FOLDER, entries, part_size, 3, budget)


def part(number: int) -> Callable[[Request], bool]:
    return lambda request: request.query.get("uploadPartNum") == str(number)


def member(path: str) -> Callable[[Request], bool]:
    return lambda request: unquote(request.path).endswith(f"/members/{path}")


@dataclass
class AnsweredLate:
    """The first request that is `first` is read whole, then answered 503 only once `others` other
    requests were stored: by then their buffers were filled, and the SDK sends the first one again."""

    first: Callable[[Request], bool]
    others: int
    failed: bool = False
    stored: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, request: Request, serve: Callable[[Request], Response]) -> Response:
        if not self.failed and self.first(request):
            self.failed = True
            request.drain()
            with self._changed:
                assert self._changed.wait_for(lambda: self.stored >= self.others, timeout=30)
            return error(503, "ServiceUnavailable", "answered late, then refused")
        response = serve(request)
        with self._changed:
            self.stored += 1
            self._changed.notify_all()
        return response


def test_a_member_of_many_parts_lands_byte_for_byte_though_a_part_is_sent_again_after_others_were_filled(
    ledger_steps: Steps,
) -> None:
    # Given a member of 12 parts of 1 MiB, sent three at once (a budget too short to be sure of larger
    # parts), and part 1 refused, once, only after parts 2 and 3 were stored
    data = content(12 * MiB + 5, seed=1)
    run = unit_run(ledger_steps, {"big.csv": data}, MiB, budget_seconds=0.01)
    late = AnsweredLate(part(1), others=2)
    ledger_steps.oci.intercept("PUT", PARTS, late)

    # When the unit unpacks it
    _, done = run.run(0, Unit(0, 1))

    # Then the object is the member byte for byte (part 1 sent again from a buffer no one filled since),
    # made of 13 parts in four buffers at most (three in flight, one being filled), all given back
    assert done and late.failed
    assert ledger_steps.read(f"{FOLDER}members/big.csv") == data
    assert run.held.made <= 4
    assert (run.held.held, run.held.objects) == (0, 0)


def test_members_put_whole_land_byte_for_byte_though_one_is_sent_again_after_others_were_filled(
    ledger_steps: Steps,
) -> None:
    # Given twelve members of 2 to 3 MiB, each put whole, three at once, and the first refused, once, only
    # after three others were stored
    members = {f"m{i:02d}.csv": content(2 * MiB + i * 80_000, seed=i) for i in range(12)}
    run = unit_run(ledger_steps, members, 8 * MiB, budget_seconds=240)
    late = AnsweredLate(member("m00.csv"), others=3)
    ledger_steps.oci.intercept("PUT", OBJECTS, late)

    # When the unit unpacks them
    _, done = run.run(0, Unit(0, len(members)))

    # Then every member is stored byte for byte, from fewer buffers than members, all given back
    assert done and late.failed
    for path, data in members.items():
        assert ledger_steps.read(f"{FOLDER}members/{path}") == data
    assert run.held.made < len(members)
    assert (run.held.held, run.held.objects) == (0, 0)


def test_a_part_that_fails_gives_its_buffers_back_and_the_next_run_of_the_unit_lands_the_member(
    ledger_steps: Steps,
) -> None:
    # Given a member of 12 parts of 1 MiB and 5 bytes, sent three at once, and part 12 refused for good
    # (400), found when the short last part is already cut
    data = content(12 * MiB + 5, seed=2)
    run = unit_run(ledger_steps, {"big.csv": data}, MiB, budget_seconds=0.01)
    refused: list[Request] = []

    def refuse_part_12(request: Request, serve: Callable[[Request], Response]) -> Response:
        if part(12)(request) and not refused:
            refused.append(request)
            request.drain()
            return error(400, "InvalidParameter", "refused for good")
        return serve(request)

    ledger_steps.oci.intercept("PUT", PARTS, refuse_part_12)

    # When the unit unpacks it, fails, and runs again
    with pytest.raises(FusionExtractError):
        run.run(0, Unit(0, 1))
    held_after_failure = (run.held.held, run.held.objects)
    _, done = run.run(0, Unit(0, 1))

    # Then the failure left nothing held (every buffer given back), and the same unit, its bound whole,
    # lands the member
    assert refused
    assert held_after_failure == (0, 0)
    assert done
    assert ledger_steps.read(f"{FOLDER}members/big.csv") == data
