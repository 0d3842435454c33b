"""Resumable SHA-256 and inflate on the real libraries of both worlds: this machine's OpenSSL 3 and zlib, and
the function image's OpenSSL 1.1.1 and zlib 1.2.11 (real builds, tests/image_libraries.py). States saved by
one go on in the other: a transfer may stop in one container and resume in another."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from fusion_extract import resumable
from fusion_extract.resumable import InflatePoint, Inflater, Libcrypto, Sha256
from tests.image_libraries import LIBCRYPTO, LIBZ, unpack


@pytest.fixture(scope="module")
def image_libraries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack(tmp_path_factory.mktemp("image-libs"))


@pytest.fixture(scope="module")
def openssl_111(image_libraries: Path) -> Libcrypto:
    return resumable.load_libcrypto(str(image_libraries / LIBCRYPTO))


def test_openssl_111_is_the_real_one_and_hashes_as_hashlib(openssl_111: Libcrypto) -> None:
    # Given the image's OpenSSL, bound
    assert openssl_111.version.startswith("OpenSSL 1.1.1w ")
    data = random.Random(1).randbytes(300_000)

    # When data is hashed in pieces, the state saved and resumed in a new object after each
    state, start = Sha256(library=openssl_111).state(), 0
    for end in (1, 64, 65, 1000, 150_000, len(data)):
        digest = Sha256(state, library=openssl_111)
        digest.update(data[start:end])
        state, start = digest.state(), end

    # Then the digest is hashlib's
    assert Sha256(state, library=openssl_111).hexdigest() == hashlib.sha256(data).hexdigest()


def test_sha256_states_are_the_same_bytes_in_openssl_3_and_111(openssl_111: Libcrypto) -> None:
    # Given both libraries, fed the same bytes in the same pieces
    openssl_3 = resumable.load_libcrypto("libcrypto.so.3")
    assert openssl_3.version.startswith("OpenSSL 3.")
    rnd = random.Random(2)
    new, old = Sha256(library=openssl_3), Sha256(library=openssl_111)
    for size in (0, 1, 63, 64, 65, 127, 4096, 100_003):
        piece = rnd.randbytes(size)
        new.update(piece)
        old.update(piece)

        # Then their saved states are identical, byte for byte (one SHA256_CTX layout)
        assert new.state() == old.state()


def test_sha256_state_crosses_between_openssl_3_and_111_and_back(openssl_111: Libcrypto) -> None:
    # Given data hashed in turns: OpenSSL 3, then 1.1.1 from 3's saved state, then 3 again, and so on
    openssl_3 = resumable.load_libcrypto("libcrypto.so.3")
    rnd = random.Random(3)
    data = rnd.randbytes(1_000_000)
    state, start, turn = Sha256(library=openssl_3).state(), 0, 0
    while start < len(data):
        end = start + rnd.randint(1, 90_000)
        digest = Sha256(state, library=(openssl_3, openssl_111)[turn % 2])
        digest.update(data[start:end])
        state, start, turn = digest.state(), end, turn + 1

    # Then either library finishes it as hashlib does
    assert turn > 10
    expected = hashlib.sha256(data).digest()
    assert Sha256(state, library=openssl_3).digest() == expected
    assert Sha256(state, library=openssl_111).digest() == expected


# A child that uses zlib 1.2.11 as its only zlib (its library path puts it first, as the image's is the only
# one): it inflates a member to a boundary and saves the point, or resumes a point saved by the parent.
ZLIB_CHILD = """
import json, sys, zlib
from fusion_extract import resumable
from fusion_extract.resumable import InflatePoint, Inflater
member, job = open(sys.argv[1], "rb").read(), json.loads(sys.argv[2])
if job["stop_at"]:
    asked = 0
    def stop():
        global asked
        asked += 1
        return asked == job["stop_at"]
    inflater = Inflater()
    head = b"".join(inflater.feed(member, stop))
    open(job["out"], "wb").write(inflater.stopped.to_bytes())
    open(job["out"] + ".head", "wb").write(head)
else:
    point = InflatePoint.from_bytes(open(job["point"], "rb").read())
    inflater = Inflater(point)
    tail = b"".join(inflater.feed(member[point.consumed:]))
    assert inflater.finished
    open(job["out"], "wb").write(tail)
print(resumable.libz().version.decode(), resumable.libz().path, zlib.ZLIB_RUNTIME_VERSION)
"""


def _in_zlib_1_2_11(libraries: Path, member: Path, **job: object) -> list[str]:
    env = {**os.environ, "LD_LIBRARY_PATH": str(libraries)}
    command = [sys.executable, "-c", ZLIB_CHILD, str(member), json.dumps(job)]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.split()


def test_inflate_points_cross_between_zlib_1_2_11_and_this_machines_zlib(
    image_libraries: Path, tmp_path: Path
) -> None:
    # Given a member of many blocks, and this machine's zlib (not 1.2.11)
    text = b"".join(b"%d,Supplier %d,INV-%08d,%.2f\n" % (i, i % 97, i * 7, i / 3) for i in range(60_000))
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    member_bytes = compressor.compress(text) + compressor.flush()
    member = tmp_path / "member.deflate"
    member.write_bytes(member_bytes)
    assert resumable.libz().version != b"1.2.11"

    # When zlib 1.2.11 inflates it to its 3rd boundary and saves the point
    found = _in_zlib_1_2_11(image_libraries, member, stop_at=3, out=str(tmp_path / "p1"))
    # Then that child used the image's zlib, for the zlib module too
    assert found == ["1.2.11", str(image_libraries / LIBZ), "1.2.11"]

    # And this machine's zlib resumes its point to the end
    point = InflatePoint.from_bytes((tmp_path / "p1").read_bytes())
    assert point.bits > 0  # a boundary inside a byte: the primed bits crossed too
    head = (tmp_path / "p1.head").read_bytes()
    resumed = Inflater(point)
    assert head + b"".join(resumed.feed(member_bytes[point.consumed :])) == text and resumed.finished

    # When this machine's zlib stops at its 7th boundary, Then 1.2.11 resumes that point to the end
    asked = 0

    def seventh() -> bool:
        nonlocal asked
        asked += 1
        return asked == 7

    here = Inflater()
    head = b"".join(here.feed(member_bytes, seventh))
    assert here.stopped is not None
    (tmp_path / "p2").write_bytes(here.stopped.to_bytes())
    tail = tmp_path / "tail"
    _in_zlib_1_2_11(image_libraries, member, stop_at=0, point=str(tmp_path / "p2"), out=str(tail))
    assert head + tail.read_bytes() == text
