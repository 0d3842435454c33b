"""A unit's invocation reads its own run of the staged archive's central directory, not the whole of it;
a run that does not give the members the archive was planned with fails the attempt (the file starts
over), and nothing of it is landed."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from fusion_extract.chain.ledger.records import FileState, RunState
from tests.emulators.oci.http import Request, Response
from tests.steps.conftest import MakeSteps, Steps
from tests.steps.test_transfer_resumes import archive, tiny_members, transferring

STAGED_ARCHIVE = r"/n/[^/]+/b/[^/]+/o/_staging%2F.*%2Ffetched"


def ranges_read(steps: Steps) -> list[tuple[int, int]]:
    """Every ranged read of a staged archive from now on: [start, end)."""
    ranges: list[tuple[int, int]] = []

    def record(request: Request, serve: Callable[[Request], Response]) -> Response:
        found = re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers.get("range") or "")
        if found:
            ranges.append((int(found[1]), int(found[2]) + 1))
        return serve(request)

    steps.oci.intercept("GET", STAGED_ARCHIVE, record)
    return ranges


def four_units_fetched(make_steps: MakeSteps, tmp_path: Path) -> tuple[Steps, str, str]:
    """An archive of 800 tiny members fetched by its file message and planned in four units."""
    members = tiny_members(800)
    steps, run_id, name = transferring(
        make_steps, archive(tmp_path / "tiny.zip", members), TRANSFER_FANOUT="4"
    )
    steps.transfer(run_id, name)
    return steps, run_id, name


def test_a_unit_reads_its_own_run_of_the_directory_and_its_members_bytes_nothing_else(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of 800 tiny members fetched and split into four units, each planned with where
    # its members' records lie in the central directory
    steps, run_id, name = four_units_fetched(make_steps, tmp_path)
    units = steps.file(run_id, name).units
    assert len(units) == 4 and all(unit.directory is not None for unit in units)
    ranges = ranges_read(steps)

    # When the third unit's message is delivered
    assert steps.transfer_unit(run_id, name, 2)["outcome"] == "unpacked"

    # Then it read its run of the directory, then its members' bytes (from the end of the second unit's to
    # the end of its own): nothing of the other units' records or members
    second, third = units[1].directory, units[2].directory
    assert second is not None and third is not None
    assert ranges[0] == (third.start, third.end)
    assert all(second.bound <= start < end <= third.bound for start, end in ranges[1:]), ranges


def test_a_unit_whose_run_of_the_directory_is_not_its_plans_fails_the_attempt_and_lands_nothing(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given an archive of four units, the third one's run of the directory moved in the ledger onto the
    # records of the second (records that read well, of other members)
    steps, run_id, name = four_units_fetched(make_steps, tmp_path)
    current = steps.deps.ledger.load_file(run_id, name)
    units = list(current.value.units)
    second, third = units[1].directory, units[2].directory
    assert second is not None and third is not None
    units[2] = units[2].but(directory=replace(third, start=second.start, end=second.end))
    steps.deps.ledger.save_file(current, current.value.but(units=tuple(units)))

    # When the third unit's message is delivered
    answer = steps.transfer_unit(run_id, name, 2)

    # Then the attempt failed on the slice, as corrupt input; the file starts over and nothing is landed
    assert answer["outcome"] == "retry_scheduled", answer
    assert "directory slice" in answer["reason"], answer
    record = steps.file(run_id, name)
    assert (record.state, record.fetch, record.units) == (FileState.PENDING, None, ())
    run = steps.run(run_id)
    assert run.state is RunState.TRANSFERRING
    assert not set(steps.landed(run)) & set(tiny_members(800))
