"""How a member is written into the staging area: as few requests as the memory bound allows.

The member bytes an invocation holds for upload at once (read, not yet uploaded) stay within `memory`:
(UPLOAD_PARALLELISM + 1) x UPLOAD_PART_MB, what a multipart upload held before (its parts in flight and
the one being filled; 32 MiB by default, beside about 70 MiB of interpreter, libraries and buffers: peak
RSS stays under 128 MiB), the buffers kept to be filled again included.

- A member under a part, or one within the memory bound that an invocation's budget is sure to finish,
  goes up whole in one PutObject (ETag and MD5 come with the answer).
- A larger member goes up in parts of half the bound (16 MiB by default) when the budget is sure to finish
  such a part, one uploading while the next is filled: a 100 MiB member in 7 parts instead of 13. Else (a
  budget too short for that) in parts of UPLOAD_PART_MB, UPLOAD_PARALLELISM at once, so that each
  invocation's one guaranteed piece of progress stays one part. Either way the multipart upload survives
  between invocations (a single PUT cannot stop half-way), and a checkpoint's pending bytes stay under a part.

The shape depends on the member's size and the configuration only, never on the time left: a re-run stages
the same content in the same shape, hence with the same MD5, which is how promote recognises its own copy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from fusion_extract.heap import THRESHOLD

MAX_PARTS = 10_000  # Object Storage's limit on the parts of one upload (each part at most 50 GiB)
SURE_RATE = 16 * 2**20  # bytes per second an invocation is sure to unpack and upload at, on a loaded core
KEPT_FROM = THRESHOLD  # a buffer this large is a mapping of its own (heap.py): worth keeping


@dataclass(frozen=True)
class Shape:
    whole: bool  # one PutObject
    part: int  # else the part size of its multipart upload

    @classmethod
    def of(cls, size: int, part_size: int, parallelism: int, budget_seconds: float) -> Shape:
        sure = budget_seconds * SURE_RATE  # bytes an invocation is sure to finish
        memory = memory_bound(part_size, parallelism)
        if size < part_size or size <= min(memory, sure):
            return cls(True, size)
        part = part_size
        largest = memory // 2  # one part uploading and the next being filled fit the bound
        if largest <= sure:
            count = -(-size // largest)
            part = max(part_size, -(-size // count))  # as even as the count allows: no needless bytes held
        return cls(False, max(part, -(-size // MAX_PARTS)))


def memory_bound(part_size: int, parallelism: int) -> int:
    return (parallelism + 1) * part_size


def held_for(part_size: int, parallelism: int, requests: int | None = None) -> HeldBytes:
    """The bound of one invocation's uploads: the bytes above, in as many objects as requests at once
    (`requests`, default `parallelism`) and as many again queued (so that tiny members do not queue
    requests without end)."""
    return HeldBytes(memory_bound(part_size, parallelism), 2 * (requests or parallelism))


def read_whole(pieces: Iterable[bytes], into: memoryview) -> memoryview:
    """The pieces of a member copied into `into` from its start, each once as it comes; the view of what
    they filled. Every piece is read, so the member is verified (its stream refuses more than its size)."""
    filled = 0
    for piece in pieces:
        into[filled : filled + len(piece)] = piece  # ValueError past the end: never grown
        filled += len(piece)
    return into[:filled]


class HeldBytes:
    """What is held for upload at once: at most `limit` bytes in at most `count` buffers (so a stream of
    tiny members cannot queue requests without end). `take` waits until one more buffer of `size` bytes
    fits, or until nothing is held (a single larger object still goes, alone), and hands out a view of it;
    `give` takes the view back once its upload is over (every retry of it too) or it is saved.

    Buffers of a MiB or more are kept when given back and handed out again: a fresh one is a mapping of its
    own (heap.py) whose pages the kernel faults in and zeroes, about 0.7 CPU-s per GiB uploaded
    (docs/performance.md). What is kept counts against `limit` as what is held does; a kept buffer is
    dropped when a larger one needs the room."""

    def __init__(self, limit: int, count: int) -> None:
        self.limit = limit
        self.count = count
        self.held = self.objects = 0
        self.most = 0  # the most bytes ever held and kept at once (tests read it)
        self.kept: list[bytearray] = []
        self.made = 0  # buffers of KEPT_FROM or more made so far (tests read it)
        self._changed = threading.Condition()

    def take(self, size: int) -> memoryview:
        with self._changed:
            self._changed.wait_for(lambda: self._fits(size))
            buffer = self._buffer(size)
            self.held += len(buffer)
            self.objects += 1
            self.most = max(self.most, self.held + self._kept())
            return memoryview(buffer)[:size]

    def give(self, view: memoryview) -> None:
        buffer = view.obj
        assert isinstance(buffer, bytearray), "give takes back a view that take handed out"
        view.release()  # whatever still refers to it can no longer read it
        with self._changed:
            self.held -= len(buffer)
            self.objects -= 1
            if len(buffer) >= KEPT_FROM and self.held + self._kept() + len(buffer) <= self.limit:
                self.kept.append(buffer)
            self._changed.notify_all()

    def _fits(self, size: int) -> bool:
        if self.objects == 0:
            return True
        room = self.held + size <= self.limit or self._fitting(size) is not None
        return room and self.objects < self.count

    def _buffer(self, size: int) -> bytearray:
        """A kept buffer of at least `size` bytes, the smallest; else a new one (from the heap under
        KEPT_FROM; else rounded up to whole KEPT_FROM when that fits, so that members of about one size
        share buffers), kept ones dropped to make room for it."""
        fitting = self._fitting(size)
        if fitting is not None:
            self.kept.remove(fitting)
            return fitting
        if size >= KEPT_FROM:
            rounded = -(-size // KEPT_FROM) * KEPT_FROM
            size = rounded if self.held + rounded <= self.limit else size
            self.made += 1
        self.kept.sort(key=len)
        while self.kept and self.held + self._kept() + size > self.limit:
            self.kept.pop(0)
        return bytearray(size)

    def _fitting(self, size: int) -> bytearray | None:
        """The smallest kept buffer of at least `size` bytes, for what is worth a kept buffer."""
        if size < KEPT_FROM:
            return None
        return min((b for b in self.kept if len(b) >= size), key=len, default=None)

    def _kept(self) -> int:
        return sum(len(buffer) for buffer in self.kept)


@dataclass(frozen=True)
class Part:
    """The parts of one multipart member, each filled into a buffer taken from the bound."""

    size: int
    held: HeldBytes

    def cut(self, chunks: Iterable[bytes]) -> Iterator[memoryview]:
        """Parts of exactly `size` bytes (the last may be shorter), each a view of its buffer: whoever gets
        one gives it back (`held.give`) once it is uploaded or saved. A buffer filled in part when the stream
        fails is given back here."""
        buffer: memoryview | None = None  # taken when the part's first byte comes
        filled = 0
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    if buffer is None:
                        buffer = self.held.take(self.size)
                    cut = min(self.size - filled, len(view))
                    buffer[filled : filled + cut] = view[:cut]
                    filled, view = filled + cut, view[cut:]
                    if filled == self.size:
                        part, buffer, filled = buffer, None, 0
                        yield part  # the taker's now
                        del part  # this frame must not keep it past its upload
            if buffer is not None:
                part, buffer = buffer[:filled], None
                yield part
        finally:
            if buffer is not None:
                self.held.give(buffer)
