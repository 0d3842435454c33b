"""Unpacking an archive while it is fetched, from the bytes being staged.

The central directory is read first, with one ranged read of the archive's tail (kept in memory: the fetch
ends where the tail begins and takes the rest from it, so Fusion serves each byte once). With the members
known and every directory rule checked, the first unit is unpacked beside the fetch, in a thread that reads
the same bytes as they are staged (`Live`): on a slow link the unpacking ends moments after the last byte.
The fetch never waits for it: an unpacking that falls behind goes on from the staged copy once committed.

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
HELD_PARTS = 1  # staged parts held for an unpacking that lags behind the fetch (then: the staged copy)
PIECE = 256 * 2**10  # bytes handed to the unpacking at a time: each reader on the way copies what it gets


def tail_length(size: int, max_directory: int) -> int:
    """The bytes of an archive's end read_directory reads, for a directory of at most `max_directory`."""
    return min(size, max_directory + END_RECORDS)


class FetchEnded(Exception):
    """The fetch stopped before the bytes the unpacking waited for (its budget, or a failure)."""


class Live:
    """The archive's bytes from `start` to `end` as the fetch stages them, read once, in order, by the
    unpacking beside it (a RangeReader that reads forward only). The fetch never waits for it: an unpacking
    more than HELD_PARTS behind goes on from the staged copy once the fetch committed it (`commit`)."""

    def __init__(self, start: int, end: int) -> None:
        self._parts: deque[memoryview] = deque()
        self._fed = 0  # bytes of the archive fed so far (from its start)
        self._start, self._end = start, end
        self._behind = self._ended = self._closed = False
        self._staged: RangeReader | None = None
        self._changed = threading.Condition()

    def feed(self, part: bytes) -> None:
        """The next part the fetch staged, in order."""
        with self._changed:
            begin, self._fed = self._fed, self._fed + len(part)
            if self._closed or self._behind or self._fed <= self._start or begin >= self._end:
                return
            if len(self._parts) >= HELD_PARTS:  # too far behind: the rest comes from the staged copy
                self._behind = True
                self._parts.clear()
            else:
                self._parts.append(memoryview(part)[max(0, self._start - begin) : self._end - begin])
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
        """The unpacking is over: nothing more is held for it."""
        with self._changed:
            self._closed = True
            self._parts.clear()

    def __call__(self, start: int, end: int) -> Iterator[bytes]:
        if start != self._start:
            raise FetchEnded(f"the unpacking beside the fetch reads forward only, not from byte {start}")
        return self._read(end)

    def _read(self, end: int) -> Iterator[bytes]:
        while self._start < end:
            with self._changed:
                self._changed.wait_for(lambda: self._parts or self._behind or self._ended)
                staged = self._staged if not self._parts and (self._behind or self._ended) else None
                if not self._parts and staged is None:
                    if not self._ended:  # behind: wait for the fetch to end
                        self._changed.wait_for(lambda: self._ended)
                        staged = self._staged
                    if staged is None:
                        raise FetchEnded("the fetch stopped before the bytes the unpacking needs")
                if staged is None:
                    piece = self._parts[0][: min(end - self._start, PIECE)]
                    self._parts[0] = self._parts[0][len(piece) :]
                    if not self._parts[0]:
                        self._parts.popleft()
            if staged is not None:
                yield from staged(self._start, end)
                self._start = end
                return
            self._start += len(piece)
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
    first. A stream that can end at a given byte (`end_at`) is asked to, so nothing past it is sent;
    `settle` and `close` reach it."""

    def __init__(self, chunks: Iterator[bytes], start: int, tail_start: int, tail: bytes) -> None:
        self._chunks, self._position, self._tail_start, self._tail = chunks, start, tail_start, tail
        end_at = getattr(chunks, "end_at", None)
        if end_at is not None:
            end_at(tail_start)

    def __next__(self) -> bytes:
        if self._position < self._tail_start:
            chunk = next(self._chunks, None)
            if chunk is None:
                raise StopIteration  # ended early (settled at the budget): the next invocation goes on
            chunk = chunk[: self._tail_start - self._position]
            self._position += len(chunk)
            return chunk
        rest = self._tail[self._position - self._tail_start :]
        if not rest:
            raise StopIteration
        self._position += len(rest)
        return rest


def in_thread(work: Callable[[], T]) -> Future[T]:
    """`work()` in a thread of its own; its Future. (The pool lets the thread go when it ends.)"""
    pool = ThreadPoolExecutor(1, thread_name_prefix="overlap")
    future = pool.submit(work)
    pool.shutdown(wait=False)
    return future
