"""Large buffers mapped on their own: a freed upload part leaves the process's memory at once."""

from __future__ import annotations

import subprocess
import sys

# A fresh interpreter frees one 16 MiB buffer (glibc then raises its mmap threshold), fills and frees a
# second, and prints how many MiB stayed resident after that second free.
PROBE = """
import sys
from fusion_extract.heap import map_large_buffers
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) // 1024
if sys.argv[1] == "mapped":
    assert map_large_buffers()
first = bytearray(16 * 2**20); first[::4096] = b"x" * len(first[::4096]); del first
before = rss()
second = bytearray(16 * 2**20); second[::4096] = b"x" * len(second[::4096]); del second
print(rss() - before)
"""


def resident_after_free(mode: str) -> int:
    answer = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(answer.stdout)


def test_a_freed_large_buffer_stays_resident_by_default_and_leaves_once_large_buffers_are_mapped():
    # Given glibc's default, Then a second large buffer came from the heap and stayed resident once freed
    assert resident_after_free("default") >= 15
    # Given large buffers mapped on their own, Then it left the process's memory with its object
    assert resident_after_free("mapped") <= 1
