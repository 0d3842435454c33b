"""Unpacking an archive while it is fetched, from the bytes being staged.

The central directory is read first, with one ranged read of the archive's tail (kept in memory: the fetch
ends where the tail begins and takes the rest from it, so Fusion serves each byte once). With the members
known and every directory rule checked, the first unit is unpacked beside the fetch, in a thread that reads
the same bytes as they arrive (`Live`, chunk by chunk): on a slow link the unpacking ends moments after the
last byte. An archive that is one unit paces its fetch: where the link outruns the unpacking, the fetch goes
at the unpacking's pace, holding a few MiB, and nothing is read twice. The first of several units does not
hold the others back: one that falls behind goes on from the staged copy once committed.

Resumability is the units': a member is staged only once verified, a large one may stop at the budget with
a checkpoint (units.py), and the unit's members are recorded only once the fetch is done and verified. A
fetch that stops first (its budget, a failure) ends the unpacking beside it and takes back what it left
(open uploads, its checkpoint): the unit starts afresh from the staged copy once the fetch is done.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from fusion_extract.chain.transfer.zipdir import END_RECORDS, RangeReader

log = logging.getLogger(__name__)
T = TypeVar("T")
HELD_BYTES = 4 * 2**20  # bytes fed and not yet read that the unpacking beside the fetch may lag by
PIECE = 256 * 2**10  # bytes handed to the unpacking at a time: each reader on the way copies what it gets


def tail_length(size: int, max_directory: int) -> int:
    """The bytes of an archive's end read_directory reads, for a directory of at most `max_directory`."""
    return min(size, max_directory + END_RECORDS)


class FetchEnded(Exception):
    """The fetch stopped before the bytes the unpacking waited for (its budget, or a failure)."""


class Live:
    """The archive's bytes from `start` to `end` as the fetch reads them, read once, in order, by the
    unpacking beside it (a RangeReader that reads forward only).

    `paced`: the fetch waits while `most` bytes are fed and not read (until the unpacking ends): where the
    fetch outruns the unpacking, it goes at the unpacking's pace, and no byte is read twice. Else the fetch
    never waits: an unpacking more than `most` behind goes on from the staged copy once the fetch committed
    it (`commit`); so does one whose fetch went back to an earlier byte (a whole read again)."""

    def __init__(self, start: int, end: int, *, paced: bool, most: int = HELD_BYTES) -> None:
        self._pieces: deque[memoryview] = deque()
        self._held, self._most = 0, most  # bytes in _pieces; at most (else the fetch waits, or it is behind)
        self._fed = 0  # bytes of the archive fed so far (from its start)
        self._first, self._end, self._at = start, end, start  # the range, and where the reading is
        self._paced = paced
        self._behind = self._ended = self._closed = False
        self._staged: RangeReader | None = None
        self._changed = threading.Condition()

    def feed(self, offset: int, chunk: bytes) -> None:
        """The archive's bytes from `offset` on, as the fetch reads them (the next ones, in order)."""
        with self._changed:
            if offset != self._fed:  # the fetch started again: what it reads is no longer in order
                self._fall_behind()
            begin, self._fed = offset, offset + len(chunk)
            if self._unheld() or self._fed <= self._first or begin >= self._end:
                return
            if self._paced:
                self._changed.wait_for(lambda: self._held < self._most or self._closed)
            elif self._held >= self._most:
                self._fall_behind()
            if self._unheld():
                return
            piece = memoryview(chunk)[max(0, self._first - begin) : self._end - begin]
            self._pieces.append(piece)
            self._held += len(piece)
            self._changed.notify_all()

    def commit(self, staged: RangeReader) -> None:
        """The fetch is done: what was not fed is read from the staged copy."""
        with self._changed:
            self._staged, self._ended = staged, True
            self._changed.notify_all()

    def end(self) -> None:
        """The fetch is over: what was not fed never will be (unless it was committed)."""
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def close(self) -> None:
        """The unpacking is over: nothing more is held for it, and the fetch waits for it no more."""
        with self._changed:
            self._closed = True
            self._pieces.clear()
            self._held = 0
            self._changed.notify_all()

    def _unheld(self) -> bool:
        """Nothing more is held: the unpacking is over, or it reads the rest from the staged copy."""
        return self._closed or self._behind

    def _fall_behind(self) -> None:
        self._behind = True
        self._pieces.clear()
        self._held = 0
        self._changed.notify_all()

    def __call__(self, start: int, end: int) -> Iterator[bytes]:
        if start != self._at:
            raise FetchEnded(f"the unpacking beside the fetch reads forward only, not from byte {start}")
        return self._read(end)

    def _read(self, end: int) -> Iterator[bytes]:
        while self._at < end:
            with self._changed:
                self._changed.wait_for(lambda: self._pieces or self._behind or self._ended)
                staged = None
                if not self._pieces:
                    self._changed.wait_for(lambda: self._ended)  # behind: wait for the fetch to end
                    if self._staged is None:
                        raise FetchEnded("the fetch stopped before the bytes the unpacking needs")
                    staged = self._staged
                else:
                    piece = self._pieces[0][: min(end - self._at, PIECE)]
                    self._pieces[0] = self._pieces[0][len(piece) :]
                    if not self._pieces[0]:
                        self._pieces.popleft()
                    self._held -= len(piece)
                    self._changed.notify_all()
            if staged is not None:
                yield from staged(self._at, end)
                self._at = end
                return
            self._at += len(piece)
            yield bytes(piece)


class Relay(Iterator[bytes]):
    """A stream over another one: `settle` (end at the next part boundary) and `close` reach the one
    underneath, when it has them."""

    _chunks: Iterator[bytes]

    def settle(self, boundary: int) -> bool:
        settle = getattr(self._chunks, "settle", None)
        return settle is not None and bool(settle(boundary))

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class TailKept(Relay):
    """The archive's bytes from the fetch's offset: the source's up to `tail_start`, then the tail read
    first, each chunk handed to `feed` with its offset as it goes by. A stream that can end at a given byte
    (`end_at`) is asked to, so nothing past it is sent; `settle` and `close` reach it."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        start: int,
        tail_start: int,
        tail: bytes,
        feed: Callable[[int, bytes], None] = lambda offset, chunk: None,
    ) -> None:
        self._chunks, self._position, self._tail_start, self._tail = chunks, start, tail_start, tail
        self._feed = feed
        end_at = getattr(chunks, "end_at", None)
        if end_at is not None:
            end_at(tail_start)

    def __next__(self) -> bytes:
        if self._position < self._tail_start:
            chunk = next(self._chunks, None)
            if chunk is None:
                raise StopIteration  # ended early (settled at the budget): the next invocation goes on
            chunk = chunk[: self._tail_start - self._position]
        else:
            chunk = self._tail[self._position - self._tail_start :]
            if not chunk:
                raise StopIteration
        self._feed(self._position, chunk)
        self._position += len(chunk)
        return chunk


def in_thread(work: Callable[[], T]) -> Future[T]:
    """`work()` in a thread of its own; its Future. (The pool lets the thread go when it ends.)"""
    pool = ThreadPoolExecutor(1, thread_name_prefix="overlap")
    future = pool.submit(work)
    pool.shutdown(wait=False)
    return future
