"""How an archive's members are split into units: consecutive, covering every member once, at most
TRANSFER_FANOUT of them, none too small to be worth an invocation; and one unit, in the invocation that
fetched it, when its budget holds the work and parallel invocations would not win (plan)."""

from __future__ import annotations

import pytest

from fusion_extract.chain.ledger.records import Unit
from fusion_extract.chain.transfer.archive import Entry
from fusion_extract.chain.transfer.units import HAND_OFF_SECONDS, plan, split, unpack_seconds

MiB = 2**20


def entries(*sizes: int) -> list[Entry]:
    return [
        Entry(
            index=i,
            raw_name=b"m%d" % i,
            path=f"m{i}",
            offset=0,
            compressed=1,
            size=size,
            crc=0,
            method=8,
            limit=0,
        )
        for i, size in enumerate(sizes)
    ]


def covered(units: tuple[Unit, ...]) -> list[int]:
    return [index for unit in units for index in range(unit.first, unit.first + unit.count)]


def test_split_of_a_small_archive_is_one_unit() -> None:
    # Given 10 members of 1 MiB, and units of at least 32 MiB
    # When they are split, Then one unit holds them all
    units = split(entries(*[MiB] * 10), fanout=4, least=32 * MiB)
    assert [(u.first, u.count) for u in units] == [(0, 10)]


@pytest.mark.parametrize("fanout", [1, 2, 3, 4, 7])
def test_split_of_a_large_archive_gives_fanout_consecutive_units_of_about_equal_size(fanout: int) -> None:
    # Given 200 members of 1 MiB
    members = entries(*[MiB] * 200)

    # When they are split with units of at least 8 MiB
    units = split(members, fanout=fanout, least=8 * MiB)

    # Then there are `fanout` units, consecutive, covering every member once, of about equal size
    assert len(units) == fanout
    assert covered(units) == list(range(200))
    assert max(u.count for u in units) - min(u.count for u in units) <= 1


def test_split_never_makes_more_units_than_members_or_than_the_least_size_allows() -> None:
    # Given 3 members of 10 MiB
    # When split with fanout 8 and units of at least 15 MiB, Then 2 units
    units = split(entries(10 * MiB, 10 * MiB, 10 * MiB), fanout=8, least=15 * MiB)
    assert len(units) == 2 and covered(units) == [0, 1, 2]
    # And with fanout 8 and tiny units, no more units than members
    assert len(split(entries(10 * MiB, 10 * MiB, 10 * MiB), fanout=8, least=1)) == 3


def test_split_of_an_empty_archive_is_one_empty_unit() -> None:
    # Given no members, When split, Then one unit of none (it lands the file with no member)
    assert [(u.first, u.count) for u in split([], fanout=4, least=MiB)] == [(0, 0)]


@pytest.mark.parametrize("fanout", [4, 16, 64])
def test_split_of_50000_tiny_members_gives_fanout_units_of_about_equal_count(fanout: int) -> None:
    # Given an archive of 50,000 members of 60 bytes (3 MiB in all, under one part of data)
    tiny = entries(*[60] * 50_000)

    # When it is split with 8 MiB parts
    units = split(tiny, fanout, 4 * 8 * MiB)

    # Then each member's requests count as work: TRANSFER_FANOUT units, in parallel invocations, of
    # about equal counts, covering every member once
    assert len(units) == fanout and covered(units) == list(range(50_000))
    assert max(unit.count for unit in units) - min(unit.count for unit in units) <= 1


GiB = 2**30


def test_an_archive_whose_work_fits_and_gains_nothing_in_parallel_is_one_unit() -> None:
    # Given one 2 GiB member and the metadata member (parallel units: the large one's unit is the whole work)
    members = entries(2 * GiB, 1000)
    assert unpack_seconds(members) < 240

    # When the units are planned with 240 s left, Then one unit holds both
    assert plan(members, fanout=4, least=32 * MiB, remaining=240.0) == (Unit(0, 2),)
    # And with less time left than the work takes, the split's units are kept
    assert len(plan(members, fanout=4, least=32 * MiB, remaining=unpack_seconds(members) / 2)) == 2


def test_a_large_archive_of_many_members_is_spread_over_parallel_units_when_they_win() -> None:
    # Given 200 members of 10 MiB (about 2 GiB), whose four units save more than a hand-off costs
    members = entries(*[10 * MiB] * 200)
    longest = unpack_seconds(members[:50])
    assert unpack_seconds(members) - longest > HAND_OFF_SECONDS

    # When the units are planned with the whole budget left, Then they are four
    assert len(plan(members, fanout=4, least=32 * MiB, remaining=240.0)) == 4
    # And 200 members of 1 MiB, whose units would save less than a hand-off, are one unit
    assert plan(entries(*[MiB] * 200), fanout=4, least=32 * MiB, remaining=240.0) == (Unit(0, 200),)


def test_an_archive_unpacked_beside_its_fetch_is_one_unit_where_parallel_units_would_wait_for_it() -> None:
    # Given 80 members of 10 MiB, whose four units would save more than a hand-off costs
    members = entries(*[10 * MiB] * 80)
    saved = unpack_seconds(members) - unpack_seconds(members[:20])
    assert saved > HAND_OFF_SECONDS
    assert len(plan(members, fanout=4, least=32 * MiB, remaining=240.0)) == 4

    # When they are planned before a fetch that one unit would be unpacked beside, and parallel units
    # would start after (so they must save more than the hand-off and the fetch), Then they are one unit
    fetching = saved - HAND_OFF_SECONDS
    assert plan(members, fanout=4, least=32 * MiB, remaining=240.0, fetching=fetching) == (Unit(0, 80),)
    # And with a fetch too short to make up the difference, four
    assert len(plan(members, fanout=4, least=32 * MiB, remaining=240.0, fetching=fetching / 2)) == 4
