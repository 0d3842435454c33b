"""A member's unpacking stops at a resumable boundary and goes on elsewhere from its serialized MemberPoint.

Each leg runs in a fresh MemberStream from the point the last one left (as bytes, as another process would
read it), and reads the archive from where that point is: together the legs give exactly what one unstopped
read gives, bytes and description alike.
"""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Callable

import pytest

from fusion_extract.chain.ledger.records import Member
from fusion_extract.chain.transfer.archive import (
    DRAIN_LIMIT,
    Entry,
    MemberPoint,
    MemberStream,
    read_directory,
)
from fusion_extract.errors import IntegrityError
from fusion_extract.resumable import Sha256
from tests.unit.hostile_zips import LIMITS, Reads, zip_bytes


def csv_content(rows: int, seed: int = 7) -> bytes:
    """A CSV with quoted fields spanning lines, varied enough that deflate writes many blocks."""
    rng = random.Random(seed)
    lines = [b"ID,NOTE,AMOUNT\n"]
    for n in range(rows):
        word = "".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 12)))
        note = b'"%s\nline two, ""%d"""' % (word.encode(), n)  # one quoted field across two lines
        lines.append(b"%d,%s,%d.%02d\n" % (n, note, rng.randint(0, 10**6), n % 100))
    return b"".join(lines)


CONTENT = csv_content(40_000)


def every(n: int) -> Callable[[], bool]:
    """A stop that answers yes at every n-th question: deterministic points, several per member."""
    asked = 0

    def stop() -> bool:
        nonlocal asked
        asked += 1
        return asked % n == 0

    return stop


def read_in_legs(reads: Reads, entry: Entry, stop_every: int) -> tuple[bytes, Member, list[MemberPoint]]:
    """Read the member leg by leg, each leg a new stream resuming from the last point's bytes."""
    output, point = bytearray(), None
    points: list[MemberPoint] = []
    while True:
        stream = MemberStream(reads, entry, point=point, stop=every(stop_every))
        output += b"".join(stream)
        if stream.stopped is None:
            return bytes(output), stream.result(), points
        assert stream.stopped.produced == len(output), "a point stands exactly after the bytes delivered"
        point = MemberPoint.from_bytes(stream.stopped.to_bytes())
        assert point == stream.stopped
        points.append(point)


def unstopped(reads: Reads, entry: Entry) -> tuple[bytes, Member]:
    stream = MemberStream(reads, entry)
    return b"".join(stream), stream.result()


@pytest.mark.parametrize(
    ("method", "chunk", "stop_every"),
    [(zipfile.ZIP_DEFLATED, 64 * 1024, 3), (zipfile.ZIP_DEFLATED, 997, 1), (zipfile.ZIP_STORED, 997, 150)],
    ids=["deflated", "deflated at every block", "stored"],
)
def test_member_stopped_at_several_points_resumes_to_the_same_bytes_and_result(method, chunk, stop_every):
    # Given a large CSV member, deflated (many blocks) or stored
    data = zip_bytes(
        [("first.csv", b"ID\n1\n"), ("VIEW.csv", CONTENT), ("last.csv", b"ID\n2\n")], method=method
    )
    reads = Reads(data, chunk=chunk)
    entry = read_directory(reads, len(data), LIMITS)[1]
    whole, expected = unstopped(reads, entry)
    reads.ranges.clear()
    reads.served = 0

    # When it is read in legs, stopped again and again and resumed from each serialized point
    output, result, points = read_in_legs(reads, entry, stop_every)

    # Then it stopped at several points, and the legs together equal one unstopped read
    assert len(points) >= 3
    assert output == whole == CONTENT
    assert result == expected == Member("VIEW.csv", len(CONTENT), expected.sha256, 40_000)
    # And no leg read the member again from its start: each resumed from where the last one stopped
    data_ranges = [r for r in reads.ranges if r[1] - r[0] > 30 + len(entry.raw_name)]
    starts = [start for start, _ in data_ranges]
    assert starts == sorted(starts) and len(set(starts)) == len(points) + 1
    assert reads.served < entry.compressed + len(points) * (chunk + 100) + DRAIN_LIMIT


def test_stored_member_point_stands_at_its_compressed_position():
    # Given a stored member stopped once
    data = zip_bytes([("VIEW.csv", CONTENT)], method=zipfile.ZIP_STORED)
    reads = Reads(data, chunk=4096)
    (entry,) = read_directory(reads, len(data), LIMITS)
    stream = MemberStream(reads, entry, stop=every(2))
    first = b"".join(stream)
    assert stream.stopped is not None and stream.stopped.inflate is None
    reads.ranges.clear()

    # When it resumes
    rest = b"".join(MemberStream(reads, entry, point=stream.stopped))

    # Then its data is read from the point on: header, then data from the produced offset
    data_start = entry.offset + 30 + len(entry.raw_name)
    assert reads.ranges == [(entry.offset, data_start), (data_start + len(first), entry.limit)]
    assert first + rest == CONTENT


def test_small_json_member_is_never_stopped():
    # Given a JSON member kept whole for its items (small), and a stop that always says yes
    content = json.dumps({"items": list(range(50_000))}).encode()
    data = zip_bytes([("VIEW.json", content)])
    reads = Reads(data, chunk=997)
    (entry,) = read_directory(reads, len(data), LIMITS)

    # When it is read
    stream = MemberStream(reads, entry, stop=lambda: True)
    output = b"".join(stream)

    # Then it went to its end: a point could not carry the bytes kept
    assert stream.stopped is None and output == content
    assert stream.json == content and stream.result().rows == 50_000


def test_point_round_trips_through_bytes():
    # Given a point of a deflated CSV member, stopped mid-way
    data = zip_bytes([("VIEW.csv", CONTENT)])
    reads = Reads(data)
    (entry,) = read_directory(reads, len(data), LIMITS)
    stream = MemberStream(reads, entry, stop=every(2))
    b"".join(stream)
    point = stream.stopped
    assert point is not None and point.inflate is not None and point.newlines is not None

    # When it is written and read back, Then it is the same point
    assert MemberPoint.from_bytes(point.to_bytes()) == point


def corrupted(data: bytes) -> dict[str, bytes]:
    flipped = bytearray(data)
    flipped[1] ^= 0x10  # a flag bit nobody defines
    state = bytearray(data)
    state[24 + 104] ^= 0x3F  # the SHA-256 state's block index: it no longer fits its length
    return {
        "truncated": data[:-1],
        "trailing byte": data + b"\x00",
        "too short": data[:10],
        "unknown version": b"\x02" + data[1:],
        "unknown flag": bytes(flipped),
        "sha256 state": bytes(state),
    }


@pytest.mark.parametrize(
    "damage", ["truncated", "trailing byte", "too short", "unknown version", "unknown flag", "sha256 state"]
)
def test_point_bytes_damaged_are_refused(damage):
    # Given a stored member's point, as bytes, then damaged
    point = MemberPoint(1000, 12345, Sha256().state(), 3, True, False)
    data = point.to_bytes()

    # When it is read back, Then it is refused rather than resumed from a wrong place
    with pytest.raises(IntegrityError, match=r"point|SHA-256"):
        MemberPoint.from_bytes(corrupted(data)[damage])


@pytest.mark.parametrize(
    "point",
    [
        MemberPoint(10, 0, Sha256().state()),  # a stored member's point, no CSV counts
        MemberPoint(10**9, 0, Sha256().state(), 0),  # beyond its size
    ],
    ids=["not a csv's point", "past its end"],
)
def test_point_that_does_not_fit_the_member_is_refused(point):
    # Given a stored CSV member
    data = zip_bytes([("VIEW.csv", CONTENT)], method=zipfile.ZIP_STORED)
    (entry,) = read_directory(Reads(data), len(data), LIMITS)

    # When a stream is made to resume it from a point of something else, Then it is refused
    with pytest.raises(IntegrityError, match="does not fit"):
        MemberStream(Reads(data), entry, point=point)


def test_stored_point_given_to_a_deflated_member_is_refused():
    data = zip_bytes([("VIEW.csv", CONTENT)])
    (entry,) = read_directory(Reads(data), len(data), LIMITS)

    with pytest.raises(IntegrityError, match="does not fit"):
        MemberStream(Reads(data), entry, point=MemberPoint(10, 0, Sha256().state(), 0))
