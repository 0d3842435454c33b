"""The bytes a fetch reads, read beside it by the unpacking (Live), and the fetch's stream that ends with
the tail read first and hands each chunk on (TailKept)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from fusion_extract.chain.transfer.overlap import FetchEnded, Live, TailKept
from fusion_extract.chain.transfer.zipdir import RangeReader

DATA = bytes(range(256)) * 64  # 16 KiB
PART = 1024


def parts(data: bytes, size: int = PART) -> list[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


def staged(data: bytes, reads: list[tuple[int, int]] | None = None) -> RangeReader:
    """The staged copy of `data`, each read recorded in `reads`."""

    def read(start: int, end: int) -> Iterator[bytes]:
        if reads is not None:
            reads.append((start, end))
        return iter((data[start:end],))

    return read


def fed(live: Live, chunks: list[bytes], at: int = 0) -> None:
    """The fetch's chunks handed to `live` in order, from byte `at`."""
    for chunk in chunks:
        live.feed(at, chunk)
        at += len(chunk)


def test_the_unpacking_reads_its_range_as_the_chunks_are_fed() -> None:
    # Given the unpacking of bytes 1500 to 3000, and the fetch's first two chunks fed (the first before it)
    live = Live(1500, 3000, paced=False)
    chunks = parts(DATA)
    fed(live, chunks[:2])

    # When it reads what was fed, the next chunks fed as it goes
    reading = live(1500, 3000)
    data = next(reading)
    live.feed(2 * PART, chunks[2])
    data += next(reading)
    live.feed(3 * PART, chunks[3])  # past its range: not held

    # Then it got exactly its range, and its stream ends there
    assert data == DATA[1500:3000]
    assert next(reading, None) is None


def test_an_unpacking_too_far_behind_goes_on_from_the_staged_copy_once_committed() -> None:
    # Given an unpaced unpacking of the whole file, which read nothing while the fetch fed every chunk
    live = Live(0, len(DATA), paced=False, most=2 * PART)
    fed(live, parts(DATA))

    # When the fetch commits the staged copy
    reads: list[tuple[int, int]] = []
    live.commit(staged(DATA, reads))

    # Then the unpacking reads every byte from there (nothing was held past `most`)
    assert b"".join(live(0, len(DATA))) == DATA
    assert reads == [(0, len(DATA))]


def test_a_paced_fetch_waits_for_the_unpacking_so_no_byte_is_read_twice() -> None:
    # Given a paced unpacking of the whole file that holds two chunks at most, and a fetch feeding every
    # chunk in a thread of its own
    live = Live(0, len(DATA), paced=True, most=2 * PART)
    fetch = threading.Thread(target=fed, args=(live, parts(DATA)))
    fetch.start()

    # When the unpacking has read nothing yet, Then the fetch waits (it stays at most two chunks ahead)
    fetch.join(timeout=0.2)
    assert fetch.is_alive()

    # When the unpacking reads
    data = b"".join(live(0, len(DATA)))

    # Then the fetch ended, and the unpacking read every byte as it was fed
    fetch.join(timeout=10)
    assert not fetch.is_alive()
    assert data == DATA


def test_a_paced_fetch_waits_no_more_once_the_unpacking_is_over() -> None:
    # Given a paced fetch waiting for an unpacking that read nothing
    live = Live(0, len(DATA), paced=True, most=2 * PART)
    fetch = threading.Thread(target=fed, args=(live, parts(DATA)))
    fetch.start()
    fetch.join(timeout=0.2)
    assert fetch.is_alive()

    # When the unpacking ends (done, stopped or failed), Then the fetch goes on to its end
    live.close()
    fetch.join(timeout=10)
    assert not fetch.is_alive()


def test_an_unpacking_whose_fetch_starts_again_from_an_earlier_byte_goes_on_from_the_staged_copy() -> None:
    # Given a paced unpacking of the whole file that read the first chunk fed
    live = Live(0, len(DATA), paced=True, most=4 * PART)
    chunks = parts(DATA)
    live.feed(0, chunks[0])
    reading = live(0, len(DATA))
    assert next(reading) == chunks[0]

    # When the fetch reads the file again from its start (a server that ignored a range) and commits it
    fed(live, chunks)
    reads: list[tuple[int, int]] = []
    live.commit(staged(DATA, reads))

    # Then the unpacking takes the rest from the staged copy, never those bytes twice
    assert chunks[0] + b"".join(reading) == DATA
    assert reads == [(PART, len(DATA))]


def test_an_unpacking_whose_fetch_stopped_before_its_bytes_ends_with_fetch_ended() -> None:
    # Given the unpacking of the whole file, of which one chunk was fed
    live = Live(0, len(DATA), paced=True)
    live.feed(0, DATA[:PART])
    reading = live(0, len(DATA))
    assert next(reading) == DATA[:PART]

    # When the fetch ends without committing (its budget spent, or it failed)
    live.end()

    # Then the unpacking stops, saying why
    with pytest.raises(FetchEnded):
        next(reading)


def test_the_unpacking_reads_forward_only() -> None:
    # Given the unpacking of bytes from 100, When it is asked for bytes from 50, Then it refuses
    with pytest.raises(FetchEnded, match="forward only"):
        Live(100, 200, paced=False)(50, 200)


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

    # When the fetch reads from byte 1000, each chunk handed on with its offset
    handed: list[tuple[int, bytes]] = []
    stream = TailKept(
        source, 1000, tail_start, DATA[tail_start:], lambda at, chunk: handed.append((at, chunk))
    )
    data = b"".join(stream)

    # Then the source was asked to end where the tail begins, and the bytes are the file's
    assert source.ends_at == tail_start
    assert data == DATA[1000:]
    # And every chunk was handed on as it went by, at its offset
    assert [at for at, _ in handed] == [1000 + sum(len(c) for _, c in handed[:i]) for i in range(len(handed))]
    assert b"".join(chunk for _, chunk in handed) == DATA[1000:]
    # And settle reaches the source, and says whether it will end at a boundary
    assert stream.settle(PART) and source.settled == PART
    assert not TailKept(iter([DATA]), 0, len(DATA), b"").settle(PART)


def test_a_source_that_ends_before_the_tail_ends_the_fetch_there() -> None:
    # Given a source stream that settled at byte 3072 (the budget), and a tail from byte 12000
    stream = TailKept(iter(parts(DATA[:3072])), 0, 12000, DATA[12000:])

    # When the fetch reads, Then it gets the bytes to 3072 and no tail
    assert b"".join(stream) == DATA[:3072]
