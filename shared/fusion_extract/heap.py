"""Large buffers mapped on their own, so that what is freed leaves the process's memory at once.

glibc serves a large allocation from its own mapping, but raises that threshold each time such a block is
freed (up to 32 MiB), after which parts of 8 to 16 MiB come from the heap, where a freed one can stay
resident beside the next: a bound on the bytes held (chain/transfer/writing.py) would hold in bytes but not
in RSS (measured: two 16 MiB parts at once cost 33 to 49 MiB). Setting the threshold fixes it, and every
buffer of a MiB or more is mapped and unmapped with its object. Elsewhere than glibc nothing is set.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # mallopt's parameter (malloc.h)
THRESHOLD = 2**20


def map_large_buffers(threshold: int = THRESHOLD) -> bool:
    """Whether the C library took the setting (glibc does; a library without mallopt is left alone)."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the process's own C library
    return mallopt is not None and mallopt(M_MMAP_THRESHOLD, threshold) == 1
