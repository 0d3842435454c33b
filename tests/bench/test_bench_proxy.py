"""The proxy's link model: a bandwidth cap serialises chunks, the delay is added once per chunk."""

import pytest

from tests.bench.proxy import Link, Profile

KB = 1000


def test_link_without_cap_delivers_each_chunk_after_the_delay():
    # Given a link with no cap and 10 ms of one-way delay
    link = Link(rate=None, delay=0.010)

    # When chunks arrive at t=0 and t=1
    times = [link.delivery_time(0.0, 64 * KB), link.delivery_time(1.0, 64 * KB)]

    # Then each is delivered 10 ms after it arrived
    assert times == pytest.approx([0.010, 1.010])


def test_link_with_cap_serialises_a_burst_at_the_rate():
    # Given 1 MB/s and no delay
    link = Link(rate=1_000_000, delay=0.0)

    # When ten 100 kB chunks arrive at once
    times = [link.delivery_time(0.0, 100 * KB) for _ in range(10)]

    # Then they leave one after another, 0.1 s each: 1 MB takes one second
    assert times == pytest.approx([0.1 * n for n in range(1, 11)])


def test_link_never_exceeds_its_rate_over_a_long_stream():
    # Given 5 MB/s with 20 ms of delay, fed faster than it drains
    link = Link(rate=5_000_000, delay=0.020)
    arrival, last = 0.0, 0.0

    # When 50 MB arrive in 64 kB chunks, one every millisecond
    for _ in range(50_000_000 // (64 * KB)):
        last = link.delivery_time(arrival, 64 * KB)
        arrival += 0.001

    # Then the last byte is delivered no sooner than size / rate (+ delay)
    sent = (50_000_000 // (64 * KB)) * 64 * KB
    assert last == pytest.approx(sent / 5_000_000 + 0.020)


def test_link_after_an_idle_gap_starts_afresh():
    # Given a capped link that sent a chunk long ago
    link = Link(rate=1_000_000, delay=0.005)
    link.delivery_time(0.0, 100 * KB)

    # When the next chunk arrives after the link went idle
    delivered = link.delivery_time(10.0, 100 * KB)

    # Then it waits for nothing but its own transmission and the delay
    assert delivered == pytest.approx(10.0 + 0.1 + 0.005)


def test_profile_splits_its_round_trip_between_the_two_directions():
    link = Profile("wan", 40.0, 20.0).link()
    assert link.rate == 40_000_000
    assert link.delay == pytest.approx(0.010)


@pytest.mark.parametrize(("rate", "delay"), [(0, 0.0), (-1, 0.0), (None, -0.1)])
def test_link_refuses_a_rate_or_delay_that_makes_no_sense(rate, delay):
    with pytest.raises(ValueError):
        Link(rate=rate, delay=delay)
