"""The shape of a member's upload (one PutObject or parts of which size) and the bound on what is held."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from fusion_extract.chain.transfer.writing import MAX_PARTS, HeldBytes, Shape, memory_bound, read_whole

MiB = 2**20
PART, PARALLEL, BUDGET = 8 * MiB, 3, 240.0  # the defaults


def test_with_the_defaults_a_member_up_to_32_mib_goes_up_whole_and_a_larger_one_in_parts_of_at_most_16():
    assert Shape.of(32 * MiB, PART, PARALLEL, BUDGET).whole
    over = Shape.of(32 * MiB + 1, PART, PARALLEL, BUDGET)
    assert not over.whole and over.part <= 16 * MiB
    hundred = Shape.of(100 * MiB, PART, PARALLEL, BUDGET)
    assert (hundred.whole, -(-100 * MiB // hundred.part)) == (False, 7)


def test_a_member_the_budget_may_not_finish_goes_up_in_parts_of_the_configured_size():
    # A spent budget (0 s) is sure of nothing: a member of a part or more may have to stop mid-way
    assert Shape.of(3 * MiB, MiB, 2, 0) == Shape(False, MiB)
    assert Shape.of(MiB - 1, MiB, 2, 0).whole  # under a part: never stopped, as before


@given(
    size=st.integers(0, 2**41),
    part_mb=st.integers(1, 64),
    parallelism=st.integers(1, 8),
    budget=st.sampled_from([0.0, 1.0, 240.0, 3000.0]),
)
def test_every_shape_fits_the_memory_bound_and_object_storage(size, part_mb, parallelism, budget):
    part_size = part_mb * MiB
    shape = Shape.of(size, part_size, parallelism, budget)
    bound = memory_bound(part_size, parallelism)
    if shape.whole:
        # Whole: under a part, or within the bound (held once, with nothing else in flight beyond the bound)
        assert size < part_size or size <= bound
    else:
        assert -(-size // shape.part) <= MAX_PARTS
        # Parts of the configured size (as many in flight as parallel uploads, and one being filled), or
        # two larger ones (one uploading, one being filled) fit the bound, unless Object Storage's part
        # count forces larger parts (a member of more than 10,000 configured parts)
        assert shape.part in (part_size, -(-size // MAX_PARTS)) or 2 * shape.part <= bound
    assert Shape.of(size, part_size, parallelism, budget) == shape  # size and configuration only


def test_held_bytes_makes_a_taker_wait_until_what_is_held_is_given_back():
    # Given a bound of 10 bytes of which 8 are held
    held = HeldBytes(10, 4)
    held.take(8)
    took = threading.Event()

    def take_more() -> None:
        held.take(5)
        took.set()

    taker = threading.Thread(target=take_more)
    taker.start()

    # Then 5 more do not fit: the taker waits, until the 8 are given back
    assert not took.wait(0.2)
    held.give(8)
    assert took.wait(10)
    taker.join()
    assert (held.held, held.most) == (5, 8)


def test_held_bytes_makes_a_taker_wait_for_a_slot_when_as_many_objects_as_allowed_are_held():
    # Given room for plenty of bytes but two objects, both held
    held = HeldBytes(1000, 2)
    held.take(1)
    held.take(1)
    took = threading.Event()

    def take_more() -> None:
        held.take(1)
        took.set()

    taker = threading.Thread(target=take_more)
    taker.start()

    # Then a third waits until one is given back
    assert not took.wait(0.2)
    held.give(1)
    assert took.wait(10)
    taker.join()


def test_held_bytes_lets_one_object_larger_than_the_bound_go_alone():
    held = HeldBytes(10, 4)
    held.take(50)
    assert held.held == 50


def test_read_whole_joins_the_pieces():
    assert read_whole([b"ab", b"", b"cde"], 5) == b"abcde"
    assert read_whole([], 0) == b""
