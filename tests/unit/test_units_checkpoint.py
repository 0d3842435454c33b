"""A unit checkpoint reads back exactly as written, and not at all once any bit of it changed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusion_extract.chain.transfer.archive import MemberPoint
from fusion_extract.chain.transfer.units import Checkpoint
from fusion_extract.errors import IntegrityError
from fusion_extract.resumable import Sha256


def checkpoint(pending: bytes) -> Checkpoint:
    digest = Sha256()
    digest.update(b"x" * 5000)
    point = MemberPoint(5000, 0x1234ABCD, digest.state(), newlines=7)
    return Checkpoint(3, "upload-1", ((1, "etag-1"), (2, "etag-2")), point, pending)


def test_checkpoint_round_trip_keeps_every_field() -> None:
    # Given a checkpoint with bytes pending; When written and read back, Then it is the same
    original = checkpoint(b"not yet in a part")
    assert Checkpoint.from_bytes(original.to_bytes()) == original


@given(st.binary(min_size=1, max_size=64), st.data())
@settings(max_examples=80, deadline=None)
def test_checkpoint_with_any_bit_flipped_is_refused(pending: bytes, pick: st.DataObject) -> None:
    # Given a checkpoint as written
    data = bytearray(checkpoint(pending).to_bytes())

    # When any one bit of it changes (header, point, pending bytes or the checksum itself)
    bit = pick.draw(st.integers(0, len(data) * 8 - 1))
    data[bit // 8] ^= 1 << bit % 8

    # Then it is refused as damaged, never read as another checkpoint
    with pytest.raises(IntegrityError, match="unit checkpoint is damaged"):
        Checkpoint.from_bytes(bytes(data))
