"""Streams of bytes regrouped into parts of an exact size: upload parts must not depend on how the input
happened to be chunked (the same content then always gives the same parts and multipart MD5)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def exact_parts(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup chunks into parts of exactly `size` bytes (the last may be shorter, never empty)."""
    pieces: list[memoryview] = []
    filled = 0
    for chunk in chunks:
        view = memoryview(chunk)
        while filled + len(view) >= size:
            cut = size - filled
            pieces.append(view[:cut])
            view = view[cut:]
            filled = 0
            yield _drain(pieces)
        if view:
            pieces.append(view)
            filled += len(view)
    if pieces:
        yield _drain(pieces)


def _drain(pieces: list[memoryview]) -> bytes:
    """Join and forget the pieces, so a suspended generator holds no second copy of a part."""
    part = b"".join(pieces)
    pieces.clear()
    return part
