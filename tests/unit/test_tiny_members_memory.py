"""What an archive of 50,000 tiny members costs in memory where all of them are in one place: its directory
read, and the run's _manifest.json written (tracemalloc's peak: what Python itself allocated)."""

from __future__ import annotations

import hashlib
import io
import json
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from typing import TypeVar

from fusion_extract.chain.ledger.records import FileRecord, FileState, Member, Run, RunState
from fusion_extract.chain.transfer import finish
from fusion_extract.chain.transfer.layout import Layout
from fusion_extract.chain.transfer.zipdir import ZipLimits, read_directory
from tests.clocks import EPOCH

MEMBERS = 50_000
T = TypeVar("T")


def peak_of(work: Callable[[], T]) -> tuple[T, int]:
    """What `work` returns, and the most memory it held at once beyond what it was given."""
    tracemalloc.start()
    try:
        result = work()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def tiny_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index in range(MEMBERS):
            archive.writestr(f"TINY_{index}.csv", f"ID\n{index}\n")
    return buffer.getvalue()


def test_reading_the_directory_of_50000_tiny_members_holds_its_entries_and_little_more() -> None:
    # Given an archive of 50,000 tiny members (a central directory of 3 MB)
    data = tiny_archive()

    def read(start: int, end: int) -> Iterator[bytes]:
        yield data[start:end]

    # When its directory is read
    entries, peak = peak_of(lambda: read_directory(read, len(data), ZipLimits(MEMBERS, 2**40, 200)))

    # Then it held at most the entries and the standard library's reading of the directory once: each
    # directory entry let go as its Entry is made (both whole lists at once held a third more)
    assert len(entries) == MEMBERS
    assert peak < 36 * 2**20, peak


def test_the_manifest_of_50000_members_is_written_holding_little_more_than_its_text() -> None:
    # Given a landed archive of 50,000 members
    members = tuple(
        Member(f"TINY_{i}.csv", 60, hashlib.sha256(b"%d" % i).hexdigest(), 3) for i in range(MEMBERS)
    )
    record = FileRecord("r1", "a_1.zip", FileState.LANDED, EPOCH, sha256="a" * 64, size=9, members=members)
    run = Run("r1", "Sales", "full", RunState.LANDED, EPOCH, EPOCH, EPOCH, job_id="44055", landed_at=EPOCH)
    layout = Layout("landing", "{extract}/run={job_id}", "_staging")

    # When the run's _manifest.json is written
    written, peak = peak_of(lambda: finish.manifest(run, [record], layout, []))

    # Then it is indented JSON, as ever, and writing it held little more than its bytes: each member's entry
    # made as it is written (all of them made first, then the text, then its bytes: three times; json.dumps
    # with an indent holds a list of every piece first: six times)
    assert written == json.dumps(json.loads(written), indent=2).encode()
    assert len(json.loads(written)["files"][0]["members"]) == MEMBERS
    assert peak < 1.5 * len(written), (peak, len(written))
