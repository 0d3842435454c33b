"""The bytes a fetch stages, read beside it by the unpacking (Live), and the fetch's stream that ends with
the tail read first (TailKept)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fusion_extract.chain.transfer.overlap import FetchEnded, Live, TailKept

DATA = bytes(range(256)) * 64  # 16 KiB
PART = 1024


def parts(data: bytes, size: int = PART) -> list[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


def staged(data: bytes) -> object:
    def read(start: int, end: int) -> Iterator[bytes]:
        return iter((data[start:end],))

    return read


def test_the_unpacking_reads_its_range_as_the_parts_are_fed() -> None:
    # Given the unpacking of bytes 1500 to 3000, and the fetch's first two parts fed (the first before it)
    live = Live(1500, 3000)
    fed = parts(DATA)
    live.feed(fed[0])
    live.feed(fed[1])

    # When it reads what was fed, the next parts fed as it goes
    chunks = live(1500, 3000)
    data = next(chunks)
    live.feed(fed[2])
    data += next(chunks)
    live.feed(fed[3])  # past its range: not held

    # Then it got exactly its range, and its stream ends there
    assert data == DATA[1500:3000]
    assert next(chunks, None) is None


def test_an_unpacking_too_far_behind_goes_on_from_the_staged_copy_once_committed() -> None:
    # Given the unpacking of the whole file, which read nothing while the fetch fed every part
    live = Live(0, len(DATA))
    for part in parts(DATA):
        live.feed(part)

    # When the fetch commits the staged copy
    live.commit(staged(DATA))  # type: ignore[arg-type]

    # Then the unpacking reads every byte from there (no part was held past HELD_PARTS)
    assert b"".join(live(0, len(DATA))) == DATA


def test_an_unpacking_whose_fetch_stopped_before_its_bytes_ends_with_fetch_ended() -> None:
    # Given the unpacking of the whole file, of which one part was fed
    live = Live(0, len(DATA))
    live.feed(DATA[:PART])
    chunks = live(0, len(DATA))
    assert next(chunks) == DATA[:PART]

    # When the fetch ends without committing (its budget spent, or it failed)
    live.end()

    # Then the unpacking stops, saying why
    with pytest.raises(FetchEnded):
        next(chunks)


def test_the_unpacking_reads_forward_only() -> None:
    # Given the unpacking of bytes from 100, When it is asked for bytes from 50, Then it refuses
    with pytest.raises(FetchEnded, match="forward only"):
        Live(100, 200)(50, 200)


class Ending(Iterator[bytes]):
    """A source stream that records where it was asked to end."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = iter(chunks)
        self.ends_at: int | None = None
        self.settled: int | None = None

    def __next__(self) -> bytes:
        return next(self.chunks)

    def end_at(self, offset: int) -> None:
        self.ends_at = offset

    def settle(self, boundary: int) -> bool:
        self.settled = boundary
        return True


def test_the_fetch_takes_the_bytes_up_to_the_tail_from_the_source_and_the_tail_from_memory() -> None:
    # Given a tail of the last 4000 bytes read first, and a source stream from byte 1000
    tail_start = len(DATA) - 4000
    source = Ending(parts(DATA[1000:]))

    # When the fetch reads from byte 1000
    stream = TailKept(source, 1000, tail_start, DATA[tail_start:])
    data = b"".join(stream)

    # Then the source was asked to end where the tail begins, and the bytes are the file's
    assert source.ends_at == tail_start
    assert data == DATA[1000:]
    # And settle reaches the source, and says whether it will end at a boundary
    assert stream.settle(PART) and source.settled == PART
    assert not TailKept(iter([DATA]), 0, len(DATA), b"").settle(PART)


def test_a_source_that_ends_before_the_tail_ends_the_fetch_there() -> None:
    # Given a source stream that settled at byte 3072 (the budget), and a tail from byte 12000
    stream = TailKept(iter(parts(DATA[:3072])), 0, 12000, DATA[12000:])

    # When the fetch reads, Then it gets the bytes to 3072 and no tail
    assert b"".join(stream) == DATA[:3072]
