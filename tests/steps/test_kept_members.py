"""A unit's staged members kept out of its archive's record, in an object of the unit's claim: written
create-only, read only when it is the very object the record names, and the record stays small however
many members the archive holds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fusion_extract.chain.ledger.codec import file_to_doc, staged_to_bytes
from fusion_extract.chain.ledger.records import (
    FileState,
    KeptMembers,
    Member,
    StagedMember,
    Unit,
    UnitState,
)
from fusion_extract.chain.ledger.store import encode
from fusion_extract.chain.transfer.kept import keep, staged
from fusion_extract.chain.transfer.layout import kept_members
from fusion_extract.errors import IntegrityError
from tests.steps.conftest import MakeSteps, Steps
from tests.steps.test_transfer_resumes import archive, transferring
from tests.steps.test_unit_claims import landed_as_in

FOLDER = "_staging/r1/a.zip/1/"


def members(count: int, start: int = 0) -> tuple[StagedMember, ...]:
    def one(index: int) -> StagedMember:
        digest = hashlib.sha256(str(index).encode()).hexdigest()
        return StagedMember(Member(f"m_{index}.csv", 10 + index, digest, 1), f"etag-{index}", None)

    return tuple(one(index) for index in range(start, start + count))


def working(claims: int, count: int) -> Unit:
    return Unit(0, 10, UnitState.WORKING, claims=claims, staged=members(count))


def test_a_units_staged_members_are_kept_in_its_claims_object_and_read_back(ledger_steps: Steps) -> None:
    # Given a unit's invocation (its third claim) that staged three members
    store = ledger_steps.deps.store

    # When it keeps them
    unit = keep(store, FOLDER, 2, working(3, 3))

    # Then the unit holds none of them, only where they are: its claim, their count, bytes and SHA-256
    assert unit.staged == () and unit.staged_count == 3
    assert unit.kept is not None and (unit.kept.claim, unit.kept.count, unit.kept.size) == (3, 3, 33)
    data = ledger_steps.read(kept_members(FOLDER, 2, 3))
    assert unit.kept.sha256 == hashlib.sha256(data).hexdigest()
    # And they read back as they were
    assert tuple(staged(store, FOLDER, 2, unit)) == members(3)


def test_a_kept_list_changed_since_it_was_written_is_refused(ledger_steps: Steps) -> None:
    # Given a unit's kept list, then written over with another list of as many members
    store = ledger_steps.deps.store
    unit = keep(store, FOLDER, 0, working(1, 3))
    store.put_bytes(kept_members(FOLDER, 0, 1), staged_to_bytes(members(3, start=7)))

    # When it is read, Then it is refused: it is not the list the record names
    with pytest.raises(IntegrityError, match="not those its record names"):
        staged(store, FOLDER, 0, unit)


def test_a_list_found_under_the_claims_name_is_never_written_over(ledger_steps: Steps) -> None:
    # Given another list already under the name of the unit's claim
    store = ledger_steps.deps.store
    other = staged_to_bytes(members(2, start=5))
    store.put_bytes(kept_members(FOLDER, 0, 4), other)

    # When the claim keeps its own, Then it is refused, and the list found is left as it was
    with pytest.raises(IntegrityError, match="not those its record names"):
        keep(store, FOLDER, 0, working(4, 3))
    assert ledger_steps.read(kept_members(FOLDER, 0, 4)) == other


def test_a_keep_whose_answer_was_lost_is_taken_when_its_list_is_there(ledger_steps: Steps) -> None:
    # Given the claim's list already written (its answer lost, the keep tried again)
    store = ledger_steps.deps.store
    store.put_bytes(kept_members(FOLDER, 0, 2), staged_to_bytes(members(3)))

    # When the claim keeps the same list, Then it is taken as written
    unit = keep(store, FOLDER, 0, working(2, 3))
    assert tuple(staged(store, FOLDER, 0, unit)) == members(3)


def test_each_claim_keeps_its_own_list_and_an_earlier_claims_is_never_taken_for_it(
    ledger_steps: Steps,
) -> None:
    # Given a unit whose first claim kept two members, and whose second claim went on to five
    store = ledger_steps.deps.store
    first = keep(store, FOLDER, 0, working(1, 2))
    second = keep(store, FOLDER, 0, working(2, 5))

    # Then each claim's record reads its own list
    assert tuple(staged(store, FOLDER, 0, first)) == members(2)
    assert tuple(staged(store, FOLDER, 0, second)) == members(5)
    # And a record naming the second claim's list never reads the first's, even with the first's digest
    assert second.kept is not None and first.kept is not None
    forged = second.but(kept=KeptMembers(2, 2, first.kept.size, first.kept.sha256))
    with pytest.raises(IntegrityError):
        staged(store, FOLDER, 0, forged)


def test_an_archives_record_holds_no_member_while_its_units_work(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of 200 tiny members in two units, the first unpacked by the invocation that fetched it
    tiny = {f"t_{i:03}.csv": b"ID\n%d\n" % i for i in range(200)}
    zip_path = archive(tmp_path / "tiny.zip", tiny)
    steps, run_id, name = transferring(
        make_steps, zip_path, TRANSFER_FANOUT="2", TRANSFER_BUDGET_SECONDS="0.1"
    )
    assert steps.transfer(run_id, name)["outcome"] == "unpacked"

    # Then the file's record names where the unit's members are kept, and holds none of them
    record = steps.file(run_id, name)
    assert [unit.state for unit in record.units] == [UnitState.DONE, UnitState.PENDING]
    kept = record.units[0].kept
    assert kept is not None and kept.count == record.units[0].count and record.units[0].staged == ()
    document = encode(file_to_doc(record))
    assert "t_000.csv" not in document.decode() and len(document) < 4096
    assert json.loads(document)["units"][0]["staged"] == []

    # When the second unit's message is delivered, Then the file lands, every member as in the archive
    steps.deliver("transfer")
    assert steps.file(run_id, name).state is FileState.LANDED and landed_as_in(steps, run_id, zip_path)
    assert len(steps.file(run_id, name).members) == 200
