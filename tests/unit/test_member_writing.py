"""The shape of a member's upload (one PutObject or parts of which size) and the bound on what is held."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fusion_extract.chain.transfer.writing import MAX_PARTS, HeldBytes, Part, Shape, memory_bound, read_whole

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
    eight = held.take(8)
    took = threading.Event()

    def take_more() -> None:
        held.take(5)
        took.set()

    taker = threading.Thread(target=take_more)
    taker.start()

    # Then 5 more do not fit: the taker waits, until the 8 are given back
    assert not took.wait(0.2)
    held.give(eight)
    assert took.wait(10)
    taker.join()
    assert (held.held, held.most) == (5, 8)


def test_held_bytes_makes_a_taker_wait_for_a_slot_when_as_many_objects_as_allowed_are_held():
    # Given room for plenty of bytes but two objects, both held
    held = HeldBytes(1000, 2)
    one = held.take(1)
    held.take(1)
    took = threading.Event()

    def take_more() -> None:
        held.take(1)
        took.set()

    taker = threading.Thread(target=take_more)
    taker.start()

    # Then a third waits until one is given back
    assert not took.wait(0.2)
    held.give(one)
    assert took.wait(10)
    taker.join()


def test_held_bytes_lets_one_object_larger_than_the_bound_go_alone():
    held = HeldBytes(10, 4)
    held.take(50)
    assert held.held == 50


def test_read_whole_joins_the_pieces_into_the_buffer_and_never_grows_it():
    buffer = memoryview(bytearray(6))
    assert bytes(read_whole([b"ab", b"", b"cde"], buffer)) == b"abcde"
    assert bytes(read_whole([], buffer)) == b""
    with pytest.raises(ValueError):
        read_whole([b"abcd", b"efg"], buffer)


def test_a_buffer_given_back_is_handed_out_again_not_made_afresh():
    # Given the default bound (4 parts of 8 MiB, 6 objects)
    held = HeldBytes(memory_bound(PART, PARALLEL), 6)

    # When parts of 16 MiB are taken and given back two at a time, ten times over
    for _ in range(10):
        one, two = held.take(16 * MiB), held.take(16 * MiB)
        held.give(one)
        held.give(two)

    # Then two buffers were made, each handed out ten times
    assert held.made == 2


def test_a_view_given_back_can_no_longer_be_read():
    # Given a buffer taken and given back (it may be filled again at once)
    held = HeldBytes(4 * MiB, 2)
    view = held.take(2 * MiB)
    held.give(view)

    # Then whatever still holds its view cannot read it by mistake
    with pytest.raises(ValueError):
        bytes(view)


@given(sizes=st.lists(st.integers(0, 8 * MiB), min_size=1, max_size=30))
def test_what_is_held_and_kept_together_never_exceeds_the_bound(sizes):
    # Given a bound of 16 MiB, and takers of up to 8 MiB each, two at a time (so none waits)
    held = HeldBytes(16 * MiB, 4)
    taken: list[memoryview] = []
    for size in sizes:
        # When each takes a buffer of its size, and the older of two is given back first
        view = held.take(size)
        assert len(view) == size
        taken.append(view)
        if len(taken) == 2:
            held.give(taken.pop(0))
        # Then what is held and what is kept for reuse together fit the bound
        assert held.held + sum(len(b) for b in held.kept) <= held.limit
    held.give(taken.pop())
    assert (held.held, held.objects, held.most <= held.limit) == (0, 0, True)


def test_cut_hands_out_the_stream_in_parts_of_exactly_the_size_in_reused_buffers():
    # Given a stream of 10 MiB and 100 bytes in chunks that do not line up with 1 MiB parts
    data = bytes(range(256)) * (10 * MiB // 256) + b"x" * 100
    chunks = [data[i : i + 300_001] for i in range(0, len(data), 300_001)]
    held = HeldBytes(4 * MiB, 6)

    # When it is cut into parts of 1 MiB, each given back once read (as an upload does)
    parts = []
    for part in Part(MiB, held).cut(chunks):
        parts.append(bytes(part))
        held.give(part)

    # Then the parts are the stream, every one 1 MiB but the last, in one buffer filled again and again
    assert b"".join(parts) == data
    assert [len(p) for p in parts] == [MiB] * 10 + [100]
    assert held.made == 1


def test_cut_gives_back_the_buffer_of_the_part_the_stream_failed_in():
    # Given a stream that fails after 1.5 parts
    def failing():
        yield b"a" * (MiB + MiB // 2)
        raise OSError("connection dropped")

    held = HeldBytes(4 * MiB, 6)

    # When its parts are cut and uploaded (given back) until it fails
    with pytest.raises(OSError):
        for part in Part(MiB, held).cut(failing()):
            held.give(part)

    # Then nothing is held any more: the half-filled part's buffer came back too
    assert (held.held, held.objects) == (0, 0)
