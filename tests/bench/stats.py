"""The arithmetic of the benchmark: run order per round, medians, ratios. Pure functions, tested."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from itertools import pairwise
from typing import Any, TypeVar

T = TypeVar("T")
GB = 1e9


def rotated(items: Sequence[T], round_index: int) -> list[T]:
    """The items starting at position round_index (mod len): each takes every place over len rounds."""
    if not items:
        return []
    shift = round_index % len(items)
    return [*items[shift:], *items[:shift]]


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator; None when either is missing or the denominator is not positive."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float | None:
    """Median of the per-round ratios (round i over round i): insensitive to a round the machine slowed."""
    ratios = [n / d for n, d in zip(numerators, denominators, strict=False) if d > 0]
    return median(ratios)


def per_gb(value: float, uncompressed_bytes: int) -> float:
    """A cost (seconds, calls) per 10**9 uncompressed bytes."""
    return value / (uncompressed_bytes / GB)


def rate_mb_s(uncompressed_bytes: int, seconds: float) -> float:
    """Uncompressed MB (10**6 bytes) per second."""
    return uncompressed_bytes / 1e6 / seconds if seconds > 0 else float("inf")


def served_once(downloads: list[dict[str, Any]], size: int) -> dict[str, Any]:
    """Did Fusion serve the archive's bytes once? `downloads`: {start, stop, read} in the order served.
    Once: each download goes forward (starts after every earlier one's start: a fetch going on where the last
    stopped) or asks for no byte an earlier one asked for (the directory's tail read first, then the rest up
    to it; ranges fetched in parallel, which reach Fusion in any order); in the order of their starts, the
    first is byte 0, and the client's bytes (each download up to where the next starts; the last one whole)
    add up to the archive's size. `read` - size is what was read to send but never used (cut connections)."""
    starts = [int(d["start"]) for d in downloads]
    read = sum(int(d["read"]) for d in downloads)

    def apart(later: dict[str, Any], earlier: dict[str, Any]) -> bool:
        return int(later["stop"]) <= int(earlier["start"]) or int(earlier["stop"]) <= int(later["start"])

    forward = all(
        start > max(starts[:i]) or all(apart(downloads[i], earlier) for earlier in downloads[:i])
        for i, start in enumerate(starts)
        if i
    )
    ordered = sorted(downloads, key=lambda d: int(d["start"]))
    at = [int(d["start"]) for d in ordered]
    forward = forward and bool(at) and at[0] == 0 and all(b > a for a, b in pairwise(at))
    kept = sum(b - a for a, b in pairwise(at))
    kept += int(ordered[-1]["read"]) if ordered else 0
    return {
        "downloads": len(downloads),
        "starts": starts,
        "ranges": [[int(d["start"]), int(d["stop"]), int(d["read"])] for d in downloads],  # as served
        "bytes_read_to_send": read,
        "bytes_kept": kept,
        "overshoot_bytes": read - size,
        "once": forward and kept == size,
    }
