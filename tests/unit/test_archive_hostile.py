"""Every hostile archive is refused with the rule it breaks, as early as that rule can be checked.

Rules the central directory answers are checked by `read_directory`, from the archive's tail alone, before any
member is read; the rest by the offending member's stream, which never completes. The chain makes members
visible only once every member's stream completed, so neither lets anything of the archive through.
"""

from __future__ import annotations

import pytest

from fusion_extract.chain.transfer.archive import MemberStream, read_directory
from fusion_extract.chain.transfer.zipdir import END_RECORDS
from fusion_extract.errors import IntegrityError, UnsafeInputError
from tests.unit.hostile_zips import (
    BOMB_BYTES,
    LIMITS,
    OK,
    HostileZip,
    Reads,
    Unpacked,
    hostile_zips,
    raw_member,
    raw_zip,
    unpack_all,
    zip_bytes,
)

CASES = hostile_zips()


@pytest.mark.parametrize("chunk", [None, 997], ids=["one chunk", "small chunks"])
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_archive_is_refused_where_its_rule_is_first_checkable(case: HostileZip, chunk):
    # Given a hostile archive, served whole or in small chunks
    unpacked = Unpacked()

    # When it is unpacked
    with pytest.raises(case.error) as caught:
        unpack_all(case.data, case.limits, chunk=chunk, into=unpacked)

    # Then the error names the rule, and it was caught where the catalogue says
    assert case.message in str(caught.value)
    if case.caught == "directory":
        assert unpacked.entries is None, "refused before any member was read"
        tail = min(len(case.data), case.limits.max_directory_bytes + END_RECORDS)
        assert unpacked.reads.ranges == [(len(case.data) - tail, len(case.data))], "the tail alone was read"
    else:
        assert unpacked.entries is not None, "the directory passed"
        assert list(unpacked.contents) == list(case.completed), "the offending member never completes"


def test_hostile_catalogue_covers_every_rule():
    # docs/security.md's rules for ZIPs, each with at least one archive
    rules = {
        "absolute path",
        "'..' segment",
        "backslash",
        "drive letter",
        "empty name",
        "control character",
        "symbolic link",
        "encrypted",
        "duplicate name",
        "compression method",
        "local header disagrees",
        "overlapping entries",
        "central directory larger",
        "entries",
        "expands beyond",
        "expands more than",
        "declared size",
    }
    covered = {rule for rule in rules if any(rule in case.message for case in CASES)}
    assert covered == rules


def test_bomb_is_refused_from_its_declared_sizes_before_it_is_read():
    # Given a 50 MB member of zeros, about 1000:1, and declared so
    data = zip_bytes([OK, ("bomb.csv", bytes(BOMB_BYTES))])
    reads = Reads(data)

    # When its directory is read, Then it is refused as a bomb, nothing of it read beyond the tail
    with pytest.raises(UnsafeInputError, match="zip bomb"):
        read_directory(reads, len(data), LIMITS)
    assert len(reads.ranges) == 1


def test_bomb_declaring_a_small_size_is_stopped_at_that_size_not_inflated():
    # Given a 50 MB member of zeros whose headers declare 1 KiB (its ratio then looks harmless)
    data = raw_zip([raw_member("bomb.csv", bytes(BOMB_BYTES), size=1024)])
    reads = Reads(data, chunk=1024)
    (entry,) = read_directory(reads, len(data), LIMITS)
    reads.served = 0
    delivered = 0

    # When its stream is read
    with pytest.raises(IntegrityError, match="expands beyond its declared size of 1024 bytes"):
        for chunk in MemberStream(reads, entry):
            delivered += len(chunk)

    # Then no more than the declared size came out, and a sliver of the compressed bytes was read
    assert delivered <= 1024
    assert reads.served <= 4 * 1024 < entry.compressed // 10
