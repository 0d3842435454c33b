"""What one transfer invocation asks of Object Storage, counted by the OCI emulator: each request costs a
round trip and its signing, so none is made that the invocation does not need. The file's record is read
once; every later change starts from the version this invocation saved (its ETag), and a write that meets
another invocation's change meanwhile (412) reads the record again and is made on top of it. What that
version refuses (a unit taken) is believed only once the record was read afresh."""

from __future__ import annotations

import json
import random
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from fusion_extract.chain.ledger.machine import UNIT, Event
from fusion_extract.chain.ledger.records import FileState, Unit, UnitState
from tests.emulators.fusion import ExtractScenario
from tests.emulators.oci.http import Request, Response
from tests.steps.conftest import EXTRACT, MakeSteps, Steps
from tests.steps.test_transfer_resumes import MiB, archive, many_members
from tests.steps.test_unit_claims import claims, delivered_again, landed_as_in

# One invocation landing an archive of one large member (and Fusion's metadata member), beside the .mf that
# has not landed yet, apart from the uploads of its bytes (parts: as many as its size asks for).
BUDGET = {
    "GET run": 3,  # the step's look at its run, and the two looks that guard promotion: before and after
    "GET file record": 1,  # once: every later change starts from the version this invocation saved
    # claimed, fetched (units planned), unit claimed, staged, promoting, promoted, landed (a fetch's progress
    # is saved every PARTS_PER_SAVE parts: none here)
    "PUT file record": 7,
    "GET plan page": 1,  # the files landed as they are, which no member may collide with
    "POST start upload": 2,  # the archive's staged copy, the large member
    "POST commit upload": 2,
    "PUT member": 1,  # the metadata member, in one request
    "PUT staged list": 1,  # the unit's staged members (kept.py), never read back by the invocation
    "POST rename": 2,  # each member made visible
    "PUT landed marker": 1,
    "LIST objects": 1,  # the landed markers: is the run complete? (not yet: its .mf waits)
}


def request_kind(method: str, raw_path: str) -> str:
    """What an Object Storage request was for, by its method and the object it names."""
    path = unquote(urlsplit(raw_path).path)
    if path.endswith("/actions/renameObject"):
        return "POST rename"
    if path.endswith("/o"):
        return "LIST objects"
    if path.endswith("/u"):
        return f"{method} start upload"
    if "/u/" in path:
        return "PUT part" if method == "PUT" else f"{method} commit upload"
    name = path.split("/o/", 1)[-1]
    kinds = {
        "_state/runs/": "run",
        "_state/files/": "file record",
        "_state/plans/": "plan page",
        "_state/landed/": "landed marker",
        "/kept/": "staged list",
        "/units/": "unit checkpoint",
        "/members/": "member",
    }
    return f"{method} " + next((kind for part, kind in kinds.items() if part in name), name)


def object_storage_requests(steps: Steps, since: int) -> list[str]:
    """The kinds of the Object Storage requests served since `since` (Vault's and the topics' apart)."""
    return [
        request_kind(method, path) for method, path, _ in steps.oci.served[since:] if path.startswith("/n/")
    ]


def test_one_invocation_lands_a_one_member_archive_in_22_requests_besides_its_parts(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given a run whose archive holds one 6 MiB member and Fusion's metadata member, unpacked beside its
    # fetch, its .mf not landed yet
    metadata = {"extract": EXTRACT, "files": [{"name": "invoices_1.csv", "rows": 0}]}
    path = tmp_path / "invoices_1.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("invoices_1.csv", random.Random(3).randbytes(6 * MiB))
        zf.writestr("invoices_metadata.json", json.dumps(metadata))
    steps = make_steps(UPLOAD_PART_MB="1")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(prebuilt_zip=str(path)))
    run = steps.until_transferring()
    [name] = [f.name for f in steps.planned(run) if f.name.endswith(".zip")]
    before = len(steps.oci.served)

    # When its file message is delivered
    outcome = steps.transfer(run.run_id, name)

    # Then that invocation landed it
    assert outcome["outcome"] == "landed", outcome
    # And asked Object Storage for what the budget names and nothing more, its bytes' parts apart
    requests = Counter(object_storage_requests(steps, before))
    parts = requests.pop("PUT part")
    assert parts >= 2 * path.stat().st_size // MiB  # the staged copy's and the member's
    assert dict(requests) == BUDGET, sorted(requests.items())
    assert sum(requests.values()) == 22


class WritesMeanwhile:
    """An intercept that runs `meanwhile` once, at the first request it is set on: before serving it, or
    just after (`after`), before its answer goes back. What another invocation does at that moment; the
    requests `meanwhile` makes itself pass through."""

    def __init__(self, meanwhile: Callable[[], dict[str, Any] | None], *, after: bool = False) -> None:
        self.meanwhile = meanwhile
        self.after = after
        self.answer: dict[str, Any] | None = None
        self.done = self.inside = False

    def __call__(self, request: Request, serve: Callable[[Request], Response]) -> Response:
        if self.done or self.inside:
            return serve(request)
        self.done = self.inside = True
        try:
            response = serve(request) if self.after else None
            self.answer = self.meanwhile()
        finally:
            self.inside = False
        return response if response is not None else serve(request)


def two_units(make_steps: MakeSteps, tmp_path: Path) -> tuple[Steps, str, str, Path]:
    """A run TRANSFERRING whose archive of 16 members its transfer plans in two units (TRANSFER_FANOUT 2, a
    short budget), the archive's file message not delivered yet: the steps, the run id, the archive's name
    and its path."""
    zip_path = archive(tmp_path / "two.zip", many_members(11, 16))
    steps = make_steps(UPLOAD_PART_MB="1", TRANSFER_FANOUT="2", TRANSFER_BUDGET_SECONDS="0.1")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(prebuilt_zip=str(zip_path)))
    run = steps.until_transferring()
    [name] = [f.name for f in steps.planned(run) if f.name.endswith(".zip")]
    return steps, run.run_id, name, zip_path


def test_a_record_saved_by_another_invocation_between_two_of_ours_is_read_again_and_nothing_is_lost(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive in two units, its file message delivered: the invocation claims unit 0 and unpacks it
    steps, run_id, name, zip_path = two_units(make_steps, tmp_path)
    # And unit 1's message is delivered to another container just after unit 0's claim was saved and before
    # its next save (as unit 0's list of staged members is written): it claims unit 1, unpacks it, saves it
    other = WritesMeanwhile(lambda: delivered_again(steps.container(), run_id, name, 1))
    steps.oci.intercept("PUT", r".*%2Fkept%2F0%2F.*", other)
    before = len(steps.oci.served)

    # When the file's invocation goes on
    outcome = steps.transfer(run_id, name)

    # Then the other invocation unpacked unit 1, and the file's invocation, its save of unit 0 refused (412:
    # the record changed since its own save), read the record again and saved unit 0 on top of unit 1's
    # changes: every unit staged, it promoted both and landed the file, byte for byte
    assert other.answer is not None and other.answer["outcome"] == "unpacked", other.answer
    assert outcome["outcome"] == "landed", outcome
    record = f"_state%2Ffiles%2F{run_id}%2F{name}.json"
    refused = [s for m, p, s in steps.oci.served[before:] if m == "PUT" and p.endswith(record) and s == 412]
    assert refused == [412]
    assert steps.file(run_id, name).state is FileState.LANDED
    assert landed_as_in(steps, run_id, zip_path)
    # And each unit was claimed to be unpacked once: unit 1's claim was kept through unit 0's saves
    assert claims(steps, run_id, name, 0) == claims(steps, run_id, name, 1) == 1


def test_a_unit_its_invocation_found_taken_is_looked_at_again_before_it_gives_up(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive in two units, unit 0 unpacked, unit 1 claimed by another invocation
    steps, run_id, name, zip_path = two_units(make_steps, tmp_path)
    assert steps.transfer(run_id, name)["outcome"] == "unpacked"
    ledger, now = steps.container().ledger, steps.clock.now()

    def change_unit_1(change: Callable[[Unit], Unit]) -> None:
        current = ledger.load_file(run_id, name)
        units = list(current.value.units)
        units[1] = change(units[1])
        ledger.save_file(current, current.value.but(units=tuple(units)))

    working = UNIT.after(UnitState.PENDING, Event.CLAIM)
    change_unit_1(lambda unit: unit.but(state=working, claimed_at=now, claims=unit.claims + 1))
    # And that invocation pauses it (its budget spent) just after unit 1's message read the file's record
    paused = UNIT.after(working, Event.PAUSE)
    pause = WritesMeanwhile(
        lambda: change_unit_1(lambda unit: unit.but(state=paused, next_at=now)), after=True
    )
    steps.oci.intercept("GET", r".*_state%2Ffiles%2F.*", pause)

    # When unit 1's message is delivered
    outcome = steps.transfer_unit(run_id, name, 1)

    # Then the claim the record it read refused was tried again on the record as it is: unit 1, waiting
    # again, was claimed, unpacked, and the file landed
    assert pause.done
    assert outcome["outcome"] == "landed", outcome
    assert landed_as_in(steps, run_id, zip_path)
