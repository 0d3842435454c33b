"""How a member is written into the staging area: as few requests as the memory bound allows.

The member bytes an invocation holds for upload at once (read, not yet uploaded) stay within `memory`:
(UPLOAD_PARALLELISM + 1) x UPLOAD_PART_MB, what a multipart upload held before (its parts in flight and
the one being filled; 32 MiB by default, beside about 70 MiB of interpreter, libraries and buffers: peak
RSS stays under 128 MiB).

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from fusion_extract.chunks import exact_parts

MAX_PARTS = 10_000  # Object Storage's limit on the parts of one upload (each part at most 50 GiB)
SURE_RATE = 16 * 2**20  # bytes per second an invocation is sure to unpack and upload at, on a loaded core


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


def read_whole(pieces: Iterable[bytes], size: int) -> bytes:
    """The pieces of a member of `size` bytes as one bytes object, allocated once and each piece copied
    once as it comes (joining a list would hold both). Every piece is read, so the member is verified."""
    return next(exact_parts(pieces, size + 1), b"")


class HeldBytes:
    """What is held for upload at once: at most `limit` bytes in at most `count` objects (so a stream of
    tiny members cannot queue requests without end). `take` waits until one more object of `size` fits,
    or until nothing is held (a single larger object still goes, alone); `give` returns it once uploaded."""

    def __init__(self, limit: int, count: int) -> None:
        self.limit = limit
        self.count = count
        self.held = self.objects = 0
        self.most = 0  # the most bytes ever held at once (tests read it)
        self._changed = threading.Condition()

    def take(self, size: int) -> None:
        with self._changed:
            self._changed.wait_for(self._fits(size))
            self.held += size
            self.objects += 1
            self.most = max(self.most, self.held)

    def give(self, size: int) -> None:
        with self._changed:
            self.held -= size
            self.objects -= 1
            self._changed.notify_all()

    def _fits(self, size: int) -> Callable[[], bool]:
        return lambda: self.objects == 0 or (self.held + size <= self.limit and self.objects < self.count)


@dataclass(frozen=True)
class Part:
    """The parts of one multipart member, each taken from the bound before it is filled."""

    size: int
    held: HeldBytes

    def cut(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Parts of exactly `size` bytes (the last may be shorter); whoever gets one gives `size` back once
        it is uploaded or saved. The reservation of a part never filled is given back here."""
        self.held.take(self.size)
        for data in exact_parts(chunks, self.size):
            yield data
            del data  # the taker's now: this frame must not keep it alive past its upload
            self.held.take(self.size)
        self.held.give(self.size)
