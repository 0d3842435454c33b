"""The arithmetic of the benchmark: run order per round, medians, ratios. Pure functions, tested."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TypeVar

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
