"""Streams of bytes regrouped into parts of an exact size: upload parts must not depend on how the input
happened to be chunked (the same content then always gives the same parts and multipart MD5)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator


def exact_parts(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup chunks into parts of exactly `size` bytes (the last may be shorter, never empty).

    Each chunk is copied into its part as it comes and dropped, so a part costs its own size and one
    chunk, not twice its size (a list of chunks joined at the end would hold both)."""
    part = io.BytesIO()
    for chunk in chunks:
        view = memoryview(chunk)
        while part.tell() + len(view) >= size:
            cut = size - part.tell()
            part.write(view[:cut])
            view = view[cut:]
            yield _taken(part)
            part = io.BytesIO()
        if view:
            part.write(view)
    if part.tell():
        yield _taken(part)


def _taken(part: io.BytesIO) -> bytes:
    """The part's bytes, not copied: a BytesIO hands over its buffer when nothing else refers to it."""
    data = part.getvalue()
    part.close()
    return data
