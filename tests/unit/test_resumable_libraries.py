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


# --- zlib-ng: the inflate and CRC-32 the functions use (its package is a dependency) --------------------


def test_zlib_ng_and_zlib_1_2_11_resume_each_others_points_at_every_boundary(image_libraries: Path) -> None:
    # Given a member of many blocks, zlib-ng (the package's extension) and the image's zlib 1.2.11
    zlib_ng = resumable.inflate_library()
    assert zlib_ng.name.endswith(".so") and "zlib_ng" in zlib_ng.name and zlib_ng.version.startswith(b"2.")
    zlib_1_2_11 = resumable.load_libz(str(image_libraries / LIBZ))
    text = b"".join(b"%d,Supplier %d,INV-%08d,%.2f\n" % (i, i % 97, i * 7, i / 3) for i in range(40_000))
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    member = compressor.compress(text) + compressor.flush()

    for first, second in ((zlib_ng, zlib_1_2_11), (zlib_1_2_11, zlib_ng)):
        for boundary in (1, 2, 5, 9):
            # When one stops at a boundary and the other resumes its point
            asked = 0

            def at_boundary(wanted: int = boundary) -> bool:
                nonlocal asked
                asked += 1
                return asked == wanted

            head = Inflater(library=first)
            before = b"".join(head.feed(member, at_boundary))
            assert head.stopped is not None
            point = InflatePoint.from_bytes(head.stopped.to_bytes())
            tail = Inflater(point, library=second)
            after = b"".join(tail.feed(member[point.consumed :]))

            # Then the member is whole and the resumed inflate ends where the member ends
            assert before + after == text and tail.finished and tail.unused == b""


def test_inflate_library_is_zlib_ng_where_installed_else_this_pythons_zlib() -> None:
    # Given a fresh interpreter that cannot find the zlib-ng package (another name for it)
    script = (
        "import fusion_extract.resumable as r, zlib\n"
        "r.ZLIB_NG_MODULE = 'zlib_ng_absent.zlib_ng'\n"
        "print(r.inflate_library() == r.libz(), r.crc32() is zlib.crc32)\n"
    )

    # When the inflate and the CRC-32 are chosen, Then they are the standard library's zlib
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "True"]

    # And with the package installed (this environment, as the image), they are zlib-ng's
    assert resumable.inflate_library() != resumable.libz()
    assert resumable.crc32() is not zlib.crc32


def test_zlib_ng_crc32_equals_zlib_for_any_pieces() -> None:
    # Given data cut into pieces of every kind of size
    rnd = random.Random(5)
    data = rnd.randbytes(2_000_000)
    cuts = sorted(rnd.sample(range(1, len(data)), 40))

    # When the CRC-32 runs over the pieces, Then it is zlib's
    value, start = 0, 0
    for end in [*cuts, len(data)]:
        value = resumable.crc32()(data[start:end], value)
        start = end
    assert value == zlib.crc32(data)
