"""A unit's claim while it works: renewed as the unit makes progress, so a live unit is never taken over
however long it works, while one that stops making progress is taken over once its claim's grace has
passed since its last progress (and learns of it at its next piece of progress, and stops).

Time: each unit here is one large member, uploaded in parts of 1 MiB one at a time, so the invocation's
progress is the sequence of its part uploads. Uploads take the time a test gives them (the manual clock
moves as each one is served), and a duplicate delivery of the unit's message is run from inside an upload,
while the unit's invocation is alive and waiting for it.
"""

from __future__ import annotations

import functools
import io
import json
import random
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fusion_extract.chain.ledger.records import FileState, UnitState, What
from fusion_extract.chain.messages import parse_transfer
from fusion_extract.chain.steps.transfer import transfer
from fusion_extract.runtime import Runtime
from tests.emulators.oci.http import Request, Response
from tests.steps.conftest import MakeSteps, Steps
from tests.steps.test_transfer_resumes import MiB, archive, csv_text, many_members, transferring

OVERDUE = 1000.0  # STEP_OVERDUE_SECONDS: a claim this old is taken over (renewed after a quarter of it)
BUDGET = "500"  # TRANSFER_BUDGET_SECONDS of the unit's invocations (at most half OVERDUE, as config asks)
# Uploads into a file's staging members: PutObject (/o/) or UploadPart (/u/).
MEMBER_UPLOADS = r"/n/[^/]+/b/[^/]+/[ou]/_staging%2F.*%2Fmembers%2F.*"


@dataclass
class SlowStaging:
    """Member uploads that take `seconds[n]` each (the n-th upload), with `meanwhile` run as the last of them
    arrives, before it is served; uploads past the list pass at once and are counted in `later`. Uploads
    made by `meanwhile` itself pass at once, uncounted."""

    steps: Steps
    seconds: list[float]
    meanwhile: Callable[[], list[dict[str, Any]]]
    answers: list[dict[str, Any]] = field(default_factory=list)
    served: int = 0
    later: int = 0
    inside: bool = False

    def __call__(self, request: Request, serve: Callable[[Request], Response]) -> Response:
        if self.inside:
            return serve(request)
        if self.served >= len(self.seconds):
            self.later += 1
            return serve(request)
        self.steps.clock.advance(self.seconds[self.served])
        self.served += 1
        if self.served == len(self.seconds):
            self.inside = True
            try:
                self.answers = self.meanwhile()
            finally:
                self.inside = False
        return serve(request)


@functools.cache
def large_archive() -> bytes:
    """An archive of two members of 7.5 MiB: a unit each, of eight uploads (seven parts and the rest).
    Written once for the module (seconds of work): its members are always the same, and tests only read it."""
    rng = random.Random(7)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for n in range(2):
            zf.writestr(f"big_{n}.csv", csv_text(rng, 8 * MiB)[: 15 * MiB // 2])
    return buffer.getvalue()


def unit_waiting(
    make_steps: MakeSteps, tmp_path: Path, members: dict[str, bytes] | bytes
) -> tuple[Steps, str, str, Path]:
    """An archive of `members` (or the archive itself) in two units, the first unpacked and the second's
    message waiting. The unit's invocations then run with a budget of BUDGET and one upload at a time."""
    zip_path = tmp_path / "slow.zip"
    if isinstance(members, bytes):
        zip_path.write_bytes(members)
    else:
        archive(zip_path, members)
    steps, run_id, name = transferring(
        make_steps,
        zip_path,
        TRANSFER_FANOUT="2",
        TRANSFER_BUDGET_SECONDS="0.1",
        STEP_OVERDUE_SECONDS=str(OVERDUE),
        UPLOAD_PARALLELISM="1",
    )
    assert steps.transfer(run_id, name)["outcome"] == "unpacked"
    steps.forget("transfer")
    steps.env["TRANSFER_BUDGET_SECONDS"] = BUDGET
    steps.deps = steps.container()
    assert [unit.state for unit in steps.file(run_id, name).units] == [UnitState.DONE, UnitState.PENDING]
    return steps, run_id, name, zip_path


def delivered_again(deps: Runtime, run_id: str, name: str, unit: int) -> dict[str, Any]:
    """The unit's message delivered again, to another container."""
    message = {"kind": "transfer", "run_id": run_id, "files": [name], "unit": unit}
    return transfer(parse_transfer(json.dumps(message).encode()), deps).to_json()


def landed_as_in(steps: Steps, run_id: str, zip_path: Path) -> bool:
    run = steps.run(run_id)
    with zipfile.ZipFile(zip_path) as zf:
        return all(steps.read(steps.deps.layout.member(run, m)) == zf.read(m) for m in zf.namelist())


def claims(steps: Steps, run_id: str, name: str, unit: int, work: UnitState = UnitState.WORKING) -> int:
    """How often the file's history says an invocation took the unit up for `work` (to unpack it)."""
    history = steps.file(run_id, name).history.entries
    wanted = {"unit": unit, "work": work.value}
    return sum(1 for e in history if e.what is What.CLAIM and wanted.items() <= e.facts.items())


def test_a_unit_working_past_its_claims_grace_is_not_taken_over_while_it_makes_progress(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given the second unit's message delivered, its uploads slow: seven parts of 60 s (its budget not
    # spent before the last), the rest of the member 800 s, so that the unit works 1,220 s in all, past
    # its claim's grace of 1,000 s; and its message delivered again, to another container, as that last
    # upload is under way
    steps, run_id, name, zip_path = unit_waiting(make_steps, tmp_path, large_archive())
    other = steps.container()
    held_since: list[datetime | None] = []

    def meanwhile() -> list[dict[str, Any]]:
        held_since.append(steps.file(run_id, name).units[1].claimed_at)
        return [delivered_again(other, run_id, name, 1)]

    slow = SlowStaging(steps, [60.0] * 7 + [800.0], meanwhile)
    steps.oci.intercept("PUT", MEMBER_UPLOADS, slow)

    # When the unit's invocation runs
    began = steps.clock.now()
    answer = steps.transfer_unit(run_id, name, 1)

    # Then the duplicate found the unit held under a live claim (renewed as its parts went up) and left it
    # alone; the unit's own invocation staged its member, and began promoting (its budget spent)
    assert [a["outcome"] for a in slow.answers] == ["nothing_to_do"]
    assert steps.clock.now() - began > timedelta(seconds=OVERDUE)
    # (renewed once: at the first part up a quarter of the grace after the claim, not at every part)
    assert held_since == [began + timedelta(seconds=300)]
    assert answer["outcome"] == "promoted"
    # And the rest of the promotion, handed out, lands the file
    steps.deliver("transfer")
    assert steps.file(run_id, name).state is FileState.LANDED and landed_as_in(steps, run_id, zip_path)
    # And the unit was claimed once: renewing a claim is not taking it
    assert claims(steps, run_id, name, 1) == 1


def test_a_unit_that_stops_making_progress_is_taken_over_once_its_grace_passed_since_its_last_progress(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given the second unit's message delivered, five parts up in 60 s each (its claim renewed at 300 s),
    # then its sixth upload hanging; and its message delivered again, to other containers, twice while that
    # upload hangs: at 1,250 s (past the grace since the claim, not since the last progress), then at
    # 1,301 s (past both)
    steps, run_id, name, zip_path = unit_waiting(make_steps, tmp_path, large_archive())
    other = steps.container()

    def twice() -> list[dict[str, Any]]:
        first = delivered_again(other, run_id, name, 1)
        steps.clock.advance(51)
        return [first, delivered_again(steps.container(), run_id, name, 1)]

    slow = SlowStaging(steps, [60.0] * 5 + [950.0], twice)
    steps.oci.intercept("PUT", MEMBER_UPLOADS, slow)

    # When the unit's invocation runs
    answer = steps.transfer_unit(run_id, name, 1)

    # Then the first duplicate left the unit alone; the second took it over and landed the file
    assert [a["outcome"] for a in slow.answers] == ["nothing_to_do", "landed"]
    assert steps.file(run_id, name).state is FileState.LANDED and landed_as_in(steps, run_id, zip_path)
    assert claims(steps, run_id, name, 1) == 2
    # And the stalled invocation, back from its upload, found its claim taken and stopped: no other upload
    assert answer["outcome"] == "stale"
    assert slow.later == 0


@dataclass
class TakenOverWhileStalled:
    """The unit's own uploads (one multipart upload): five parts of 60 s, then the sixth hangs for 1,001 s,
    past the grace since the unit's last progress. Meanwhile another invocation, in a thread of its own,
    takes the unit over; it is held at its first upload until the hung one has been answered and the
    stalled invocation has gone on. `later` counts the stalled invocation's uploads after the hung one."""

    steps: Steps
    taker: Callable[[], dict[str, Any]]
    own: str | None = None
    parts: int = 0
    later: int = 0
    answers: list[dict[str, Any]] = field(default_factory=list)
    taking: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def __call__(self, request: Request, serve: Callable[[Request], Response]) -> Response:
        upload = request.query.get("uploadId")
        self.own = self.own or upload
        if upload != self.own:  # the taker's
            self.taking.set()
            assert self.release.wait(60), "the stalled invocation never went on"
            return serve(request)
        self.parts += 1
        if self.parts <= 5:
            self.steps.clock.advance(60)
        elif self.parts == 6:
            self.steps.clock.advance(OVERDUE + 1)
            self.thread = threading.Thread(target=lambda: self.answers.append(self.taker()), name="taker")
            self.thread.start()
            assert self.taking.wait(60), "the unit was not taken over"
        else:
            self.later += 1
        return serve(request)


def test_a_unit_taken_over_while_it_stalled_stops_at_its_next_progress_and_leaves_the_unit_to_its_taker(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given the second unit's message delivered, five parts up in 60 s each (its claim renewed at 300 s),
    # then its sixth upload hanging past the grace since; and the unit taken over meanwhile by a
    # duplicate delivery, at work when the hung upload is answered
    steps, run_id, name, zip_path = unit_waiting(make_steps, tmp_path, large_archive())
    other = steps.container()
    stalled = TakenOverWhileStalled(steps, lambda: delivered_again(other, run_id, name, 1))
    steps.oci.intercept("PUT", MEMBER_UPLOADS, stalled)

    # When the unit's invocation runs, and then its taker goes on
    answer = steps.transfer_unit(run_id, name, 1)
    stalled.release.set()
    assert stalled.thread is not None
    stalled.thread.join(60)

    # Then the stalled invocation, back at its next piece of progress, found the claim no longer its own and
    # stopped: no other upload, nothing written over the unit
    assert answer["outcome"] == "stale"
    assert stalled.later == 0
    # And the taker staged the unit and landed the file
    assert [a["outcome"] for a in stalled.answers] == ["landed"]
    assert steps.file(run_id, name).state is FileState.LANDED and landed_as_in(steps, run_id, zip_path)


def test_a_unit_of_small_members_working_past_its_claims_grace_is_not_taken_over(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given a unit of ten members of half a MiB (one upload each), nine taking 50 s and the last 700 s, so
    # that the unit works 1,150 s, past its claim's grace; and its message delivered again meanwhile
    steps, run_id, name, zip_path = unit_waiting(make_steps, tmp_path, many_members(5, 20))
    other = steps.container()
    slow = SlowStaging(steps, [50.0] * 9 + [700.0], lambda: [delivered_again(other, run_id, name, 1)])
    steps.oci.intercept("PUT", MEMBER_UPLOADS, slow)

    # When the unit's invocation runs
    answer = steps.transfer_unit(run_id, name, 1)

    # Then the duplicate left the unit alone (its claim renewed between members), and the unit was
    # unpacked by its own invocation alone
    assert [a["outcome"] for a in slow.answers] == ["nothing_to_do"]
    assert answer["outcome"] == "promoted"
    assert claims(steps, run_id, name, 1) == 1
    steps.deliver("transfer")
    assert steps.file(run_id, name).state is FileState.LANDED and landed_as_in(steps, run_id, zip_path)


def test_a_unit_promoting_past_its_claims_grace_is_not_taken_over(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given a unit of about 150 tiny members, whose promotion is slow: 2 s for each member made visible but
    # the last, 800 s for that one, so that it promotes for about 1,100 s, past its claim's grace; and the
    # unit's message delivered again meanwhile
    tiny = {f"t_{i:03}.csv": b"ID\n%d\n" % i for i in range(300)}
    steps, run_id, name, zip_path = unit_waiting(make_steps, tmp_path, tiny)
    count = steps.file(run_id, name).units[1].count
    other = steps.container()
    slow = SlowStaging(
        steps, [2.0] * (count - 1) + [800.0], lambda: [delivered_again(other, run_id, name, 1)]
    )
    steps.oci.intercept("POST", r"/n/[^/]+/b/[^/]+/actions/renameObject", slow)

    # When the unit's invocation stages the unit and promotes it
    answer = steps.transfer_unit(run_id, name, 1)

    # Then the duplicate left the unit alone (its claim renewed between chunks of members), and the unit
    # was promoted by its own invocation alone, which handed the other unit out (its budget spent)
    assert claims(steps, run_id, name, 1, UnitState.PROMOTING) == 1
    assert answer["outcome"] == "promoted" and answer["handed_out"] == 1
    steps.deliver("transfer")
    assert steps.file(run_id, name).state is FileState.LANDED and landed_as_in(steps, run_id, zip_path)
