"""A member that will not stop is inflated by ISA-L (fast_inflate); one that may stop, or goes on from a
point, by the resumable inflater. Both deliver the same bytes under the same checks."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable

import pytest

from fusion_extract.chain.transfer.archive import HASH_BESIDE_FROM, MemberPoint, MemberStream, read_directory
from fusion_extract.errors import IntegrityError
from fusion_extract.fast_inflate import IsalInflater, fast_inflater
from fusion_extract.resumable import PIECE
from tests.unit.hostile_zips import LIMITS, Reads, zip_bytes
from tests.unit.test_archive_resume import CONTENT, every


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def test_a_member_that_cannot_stop_is_inflated_by_isal_one_that_may_or_resumes_by_the_resumable_one() -> None:
    # Given an archive of a deflated CSV of many blocks and a stored one
    reads = Reads(zip_bytes([("big.csv", CONTENT)]))
    [entry] = read_directory(reads, len(reads.data), LIMITS)
    stored = Reads(zip_bytes([("big.csv", CONTENT)], method=zipfile.ZIP_STORED))
    [plain] = read_directory(stored, len(stored.data), LIMITS)

    # When the member is read without a stop, with a stop that never says yes, and from a point on
    fast = MemberStream(reads, entry)
    fast_bytes = b"".join(fast)
    asked = MemberStream(reads, entry, stop=lambda: False)
    asked_bytes = b"".join(asked)
    head = MemberStream(reads, entry, stop=every(3))
    head_bytes = b"".join(head)
    assert head.stopped is not None
    tail = MemberStream(reads, entry, point=MemberPoint.from_bytes(head.stopped.to_bytes()))
    tail_bytes = b"".join(tail)
    whole_stored = MemberStream(stored, plain)
    stored_bytes = b"".join(whole_stored)

    # Then the member no one may stop went through ISA-L, the others through the resumable inflater
    assert (fast.inflater, asked.inflater, head.inflater, tail.inflater) == ("isal", *["resumable"] * 3)
    assert whole_stored.inflater is None
    # And every way gives the same bytes and the same verified member
    assert fast_bytes == asked_bytes == head_bytes + tail_bytes == stored_bytes == CONTENT
    assert fast.result() == asked.result() == tail.result() == whole_stored.result()


def test_isal_pieces_stay_bounded_whatever_the_ratio_and_what_follows_the_stream_is_unused() -> None:
    # Given 20 MiB of zeros (about 1000:1) followed by bytes that are not part of the stream
    data = bytes(20 * 2**20)
    packed = deflated(data)

    # When it is fed in one chunk, then the rest byte by byte, to ISA-L's inflater
    with fast_inflater() as inflater:
        assert isinstance(inflater, IsalInflater)
        pieces = list(inflater.feed(packed[:-5]))
        for byte in packed[-5:]:
            pieces += inflater.feed(bytes([byte]))
        pieces += inflater.feed(b"after")

        # Then no piece exceeds PIECE, they make the data, and the bytes after the end are unused
        assert max(map(len, pieces)) == PIECE and b"".join(pieces) == data
        assert inflater.finished and inflater.unused == b"after"


def test_isal_refuses_corrupt_deflate_data_and_says_a_truncated_stream_is_not_finished() -> None:
    # Given a deflated member, and a copy whose first block header names the reserved block type
    packed = deflated(CONTENT[:200_000])
    broken = bytes([packed[0] | 0b110]) + packed[1:]

    # When each goes through ISA-L: the broken whole, the sound one without its last bytes
    with fast_inflater() as inflater, pytest.raises(IntegrityError, match="corrupt deflate data"):
        for _ in inflater.feed(broken):
            pass
    with fast_inflater() as short:
        for _ in short.feed(packed[:-3]):
            pass

        # Then the broken one is refused as corrupt, and the short one is not finished
        assert not short.finished


def test_isal_inflater_cannot_be_asked_to_stop() -> None:
    # Given ISA-L's inflater, When a stop is passed, Then it is refused before anything is inflated
    with fast_inflater() as inflater, pytest.raises(ValueError, match="cannot stop"):
        next(iter(inflater.feed(deflated(b"data"), stop=lambda: False)))


def test_fast_inflater_is_isal_where_installed_else_the_resumable_one() -> None:
    # Given a fresh interpreter that cannot find the isal package (another name for it)
    script = (
        "import fusion_extract.fast_inflate as f\n"
        "f.ISAL_MODULE = 'isal_absent.igzip_lib'\n"
        "print(f.fast_inflater().kind)\n"
    )

    # When the fast inflater is chosen, Then it is the resumable one, never asked to stop
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["resumable"]

    # And with the package installed (this environment, as the image), it is ISA-L's
    assert fast_inflater().kind == "isal"


@pytest.mark.parametrize("stop", [None, lambda: False], ids=["sure to finish (isal)", "may stop (resumable)"])
def test_a_deflated_member_whose_declared_crc_is_not_its_own_fails_either_way(
    stop: Callable[[], bool] | None,
) -> None:
    # Given a sound deflated member whose CRC-32, in its local header and the directory alike, is another's
    crc = struct.pack("<I", zlib.crc32(CONTENT))
    data = zip_bytes([("big.csv", CONTENT)])
    assert data.count(crc) == 2
    reads = Reads(data.replace(crc, struct.pack("<I", zlib.crc32(CONTENT[1:]))))
    [entry] = read_directory(reads, len(reads.data), LIMITS)

    # When it is read through, Then the CRC-32 check fails at its end
    stream = MemberStream(reads, entry, stop=stop)
    with pytest.raises(IntegrityError, match=r"'big\.csv' fails its CRC-32 check"):
        for _ in stream:
            pass
    assert stream.inflater == ("isal" if stop is None else "resumable")


def test_isal_computes_the_crc_of_its_output_as_it_writes_it() -> None:
    # Given a member of many blocks, fed to ISA-L's inflater in odd chunks
    packed = deflated(CONTENT)
    with fast_inflater() as inflater:
        output = b"".join(
            piece for at in range(0, len(packed), 9973) for piece in inflater.feed(packed[at : at + 9973])
        )

        # Then its CRC-32 is zlib's of the output
        assert output == CONTENT and inflater.crc == zlib.crc32(CONTENT)


def test_a_large_member_isal_inflates_is_hashed_beside_and_its_digest_is_the_same() -> None:
    # Given an archive of a CSV of more than HASH_BESIDE_FROM and one under it
    large = CONTENT * (HASH_BESIDE_FROM // len(CONTENT) + 1)
    assert len(large) >= HASH_BESIDE_FROM > len(CONTENT)
    reads = Reads(zip_bytes([("large.csv", large), ("small.csv", CONTENT)]))
    big, small = read_directory(reads, len(reads.data), LIMITS)

    # When each is read through by ISA-L, and the large one again by a stream that may stop
    beside = MemberStream(reads, big)
    beside_bytes = b"".join(beside)
    inline = MemberStream(reads, small)
    b"".join(inline)
    stoppable = MemberStream(reads, big, stop=lambda: False)
    b"".join(stoppable)

    # Then only the large one ISA-L inflated was hashed in a thread beside (a stream that may stop saves its
    # hash's state, so it keeps it), and its digest is the member's all the same
    assert (beside.hashed_beside, inline.hashed_beside, stoppable.hashed_beside) == (True, False, False)
    assert beside_bytes == large
    assert beside.result().sha256 == stoppable.result().sha256 == hashlib.sha256(large).hexdigest()
    assert inline.result().sha256 == hashlib.sha256(CONTENT).hexdigest()


def test_a_corrupt_large_member_hashed_beside_is_refused() -> None:
    # Given a large CSV whose deflated data has one byte changed near its end
    large = CONTENT * (HASH_BESIDE_FROM // len(CONTENT) + 1)
    data = bytearray(zip_bytes([("large.csv", large)]))
    [entry] = read_directory(Reads(bytes(data)), len(data), LIMITS)
    data[entry.limit - 1000] ^= 0xFF

    # When it is read through, hashed beside
    stream = MemberStream(Reads(bytes(data)), entry)

    # Then it is refused, and no member comes of it
    with pytest.raises(IntegrityError):
        b"".join(stream)
    assert stream.hashed_beside
    with pytest.raises(RuntimeError, match="not read to its end"):
        stream.result()
