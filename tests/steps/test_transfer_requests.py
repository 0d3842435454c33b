"""What one transfer invocation asks of Object Storage, counted by the OCI emulator: each request costs a
round trip and its signing, so none is made that the invocation does not need. The file's record is read
once; every later change starts from the version this invocation saved (its ETag), and a write that meets
another invocation's change meanwhile (412) reads the record again and is made on top of it."""

from __future__ import annotations

import json
import random
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from fusion_extract.chain.ledger.records import FileState
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
    """An intercept that runs `meanwhile` once, when a request it is set on arrives, before serving it: what
    another invocation does at that moment. Requests made by `meanwhile` itself pass through."""

    def __init__(self, meanwhile: Callable[[], dict[str, Any]]) -> None:
        self.meanwhile = meanwhile
        self.answer: dict[str, Any] | None = None
        self.inside = False

    def __call__(self, request: Request, serve: Callable[[Request], Response]) -> Response:
        if self.answer is None and not self.inside:
            self.inside = True
            try:
                self.answer = self.meanwhile()
            finally:
                self.inside = False
        return serve(request)


def test_a_record_saved_by_another_invocation_between_two_of_ours_is_read_again_and_nothing_is_lost(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive in two units, its file message delivered: the invocation claims unit 0 and unpacks it
    zip_path = archive(tmp_path / "two.zip", many_members(11, 16))
    steps = make_steps(UPLOAD_PART_MB="1", TRANSFER_FANOUT="2", TRANSFER_BUDGET_SECONDS="0.1")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(prebuilt_zip=str(zip_path)))
    run = steps.until_transferring()
    [name] = [f.name for f in steps.planned(run) if f.name.endswith(".zip")]
    # And unit 1's message is delivered to another container just after unit 0's claim was saved and before
    # its next save (as unit 0's list of staged members is written): it claims unit 1, unpacks it, saves it
    other = WritesMeanwhile(lambda: delivered_again(steps.container(), run.run_id, name, 1))
    steps.oci.intercept("PUT", r".*%2Fkept%2F0%2F.*", other)
    before = len(steps.oci.served)

    # When the file's invocation goes on
    outcome = steps.transfer(run.run_id, name)

    # Then the other invocation unpacked unit 1, and the file's invocation, its save of unit 0 refused (412:
    # the record changed since its own save), read the record again and saved unit 0 on top of unit 1's
    # changes: every unit staged, it promoted both and landed the file, byte for byte
    assert other.answer is not None and other.answer["outcome"] == "unpacked", other.answer
    assert outcome["outcome"] == "landed", outcome
    record = f"_state%2Ffiles%2F{run.run_id}%2F{name}.json"
    refused = [s for m, p, s in steps.oci.served[before:] if m == "PUT" and p.endswith(record) and s == 412]
    assert refused == [412]
    assert steps.file(run.run_id, name).state is FileState.LANDED
    assert landed_as_in(steps, run.run_id, zip_path)
    # And each unit was claimed to be unpacked once: unit 1's claim was kept through unit 0's saves
    assert claims(steps, run.run_id, name, 0) == claims(steps, run.run_id, name, 1) == 1
