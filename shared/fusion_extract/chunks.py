"""Streams of bytes regrouped into parts of an exact size: upload parts must not depend on how the input
happened to be chunked (the same content then always gives the same parts and multipart MD5)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator


def exact_parts(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup chunks into parts of exactly `size` bytes (the last may be shorter, never empty).

    A part is allocated whole when its first byte comes and each chunk is copied into it as it comes, so a
    part costs its size once: no list of chunks joined at the end (twice the size), no buffer grown step by
    step (reallocated and copied, leaving the heap fragmented)."""
    part: io.BytesIO | None = None
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            if part is None:
                part = _allocated(size)
            cut = min(size - part.tell(), len(view))
            part.write(view[:cut])
            view = view[cut:]
            if part.tell() == size:
                yield _taken(part)
                part = None
    if part is not None:
        yield _taken(part)


def _allocated(size: int) -> io.BytesIO:
    part = io.BytesIO()
    part.seek(size - 1)
    part.write(b"\0")  # one allocation of the whole part, filled from the start
    part.seek(0)
    return part


def _taken(part: io.BytesIO) -> bytes:
    """The bytes written, not copied: a BytesIO hands over its buffer when nothing else refers to it."""
    part.truncate()
    data = part.getvalue()
    part.close()
    return data
