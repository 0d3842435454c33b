"""Every hostile archive is refused with the rule it breaks, and nothing of it can be promoted.

The chain promotes staged members only after `unpack` returned; so for each archive `unpack` must raise,
and the rules that can be checked early must stop the bad entry before (or while) it is staged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fusion_extract.chain.archive import unpack
from fusion_extract.errors import UnsafeInputError
from tests.unit.hostile_zips import (
    BOMB_BYTES,
    LIMITS,
    OK,
    HostileZip,
    RecordingStage,
    hostile_zips,
    zip_bytes,
)

CASES = hostile_zips()


def pieces(data: bytes, size: int | None) -> Iterator[bytes]:
    if size is None:
        yield data
        return
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("chunk_size", [None, 997], ids=["one chunk", "small chunks"])
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_unpack_hostile_archive_is_refused_before_anything_can_be_promoted(case: HostileZip, chunk_size):
    # Given a hostile archive, arriving whole or in small chunks
    stage = RecordingStage()

    # When it is unpacked
    with pytest.raises(case.error) as caught:
        unpack(
            pieces(case.data, chunk_size),
            expected_sha256=None,
            expected_size=None,
            limits=case.limits,
            stage=stage,
        )

    # Then the error names the rule, unpack never returned, and staging stopped where the rule allows
    assert case.message in str(caught.value)
    assert stage.started == list(case.staged)
    if case.caught == "stream":
        assert list(stage.completed) == list(case.staged[:-1]), "the offending member never completes"
    else:
        assert list(stage.completed) == list(case.staged)


def test_hostile_catalogue_covers_every_rule():
    # README's security rules for ZIPs, each with at least one archive
    rules = {
        "absolute path",
        "'..' segment",
        "backslash",
        "drive letter",
        "empty name",
        "symbolic link",
        "encrypted",
        "duplicate name",
        "entries",
        "expands beyond",
        "expands more than",
    }
    covered = {rule for rule in rules if any(rule in case.message for case in CASES)}
    assert covered == rules


def test_unpack_bomb_is_stopped_early_not_after_inflating_it():
    # Given a 50 MB member of zeros, about 1000:1
    data = zip_bytes([OK, ("bomb.csv", bytes(BOMB_BYTES))])
    received = {"bytes": 0}

    def counting(path: str, chunks: Iterator[bytes]) -> None:
        for chunk in chunks:
            received["bytes"] += len(chunk)

    # When it is unpacked
    with pytest.raises(UnsafeInputError, match="zip bomb"):
        unpack([data], expected_sha256=None, expected_size=None, limits=LIMITS, stage=counting)

    # Then it was refused within a fraction of its size (bounded by max_ratio x (read + 64 KiB))
    assert received["bytes"] < BOMB_BYTES // 2
