"""Resumable SHA-256 and inflate: the same results as hashlib and zlib, however the work is split, saved and
resumed (in a new object, as a later invocation would)."""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import random
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusion_extract import resumable
from fusion_extract.errors import ConfigError, IntegrityError
from fusion_extract.resumable import WINDOW, InflatePoint, Inflater, Sha256, seal, unseal
from tests.image_libraries import unpack

# --- data --------------------------------------------------------------------------------------------


def invoice_csv(rows: int, seed: int = 1) -> bytes:
    """Text shaped like an extract: repetitive columns, varying numbers."""
    rnd = random.Random(seed)
    suppliers = [
        f"Supplier {rnd.choice('ABCDEFGH')}{i:04d} {rnd.choice(['Ltd', 'Inc', 'SA'])}" for i in range(300)
    ]
    lines = ["INVOICE_ID,INVOICE_NUM,SUPPLIER,INVOICE_DATE,CURRENCY,AMOUNT,STATUS\n"]
    lines += [
        f"{300000000 + i},INV-{rnd.randint(1, 10**7):08d},{rnd.choice(suppliers)},"
        f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d},{rnd.choice(['USD', 'EUR'])},"
        f"{rnd.randint(100, 10**7) / 100:.2f},{rnd.choice(['VALIDATED', 'PAID', 'CANCELLED'])}\n"
        for i in range(rows)
    ]
    return "".join(lines).encode()


TEXT = invoice_csv(12_000)  # ~ 900 KB: a dozen blocks at level 6, windows of a full 32 KiB


def deflate(data: bytes, level: int = 6, flush_every: int = 0, mode: int = zlib.Z_SYNC_FLUSH) -> bytes:
    """Raw deflate, as in a ZIP member; with `flush_every`, a flush (a byte-aligned boundary) that often."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    step = flush_every or len(data) or 1
    out = []
    for start in range(0, len(data), step):
        out.append(compressor.compress(data[start : start + step]))
        if flush_every:
            out.append(compressor.flush(mode))
    out.append(compressor.flush())
    return b"".join(out)


def pieces(
    data: bytes, rnd: random.Random, largest: int = 70_000
) -> Iterator[bytes | bytearray | memoryview]:
    """`data` in random-sized chunks, of each type a caller may hold."""
    view, start = memoryview(data), 0
    while start < len(data):
        size = rnd.randint(1, largest)
        chunk = view[start : start + size]
        kind = rnd.randrange(3)
        yield bytes(chunk) if kind == 0 else bytearray(chunk) if kind == 1 else chunk
        start += size


def run(
    compressed: bytes,
    point: InflatePoint | None = None,
    stop: Callable[[], bool] | None = None,
    seed: int = 0,
    largest: int = 70_000,
) -> tuple[bytes, Inflater]:
    """A new Inflater (resumed at `point`) fed the member from where it stands until it stops or ends."""
    inflater = Inflater(point)
    rest = compressed[point.consumed if point else 0 :]
    out = []
    for chunk in pieces(rest, random.Random(seed), largest):
        for piece in inflater.feed(chunk, stop):
            assert 0 < len(piece) <= resumable.PIECE
            out.append(piece)
        if inflater.stopped or inflater.finished:
            break
    return b"".join(out), inflater


def stop_at(k: int) -> Callable[[], bool]:
    """A stop() that says yes the k-th time it is asked (1-based)."""
    asked = 0

    def stop() -> bool:
        nonlocal asked
        asked += 1
        return asked == k

    return stop


def boundaries(compressed: bytes) -> list[tuple[int, int]]:
    """(consumed, produced) at each boundary stop() is asked about, never stopping."""
    seen: list[tuple[int, int]] = []
    inflater = Inflater()

    def stop() -> bool:
        seen.append((inflater.consumed, inflater.produced))
        return False

    for piece in inflater.feed(compressed, stop):
        assert piece
    assert inflater.finished
    return seen


STREAMS = {
    "level 1": deflate(TEXT, 1),
    "level 6": deflate(TEXT, 6),
    "level 9": deflate(TEXT, 9),
    "stored (level 0)": deflate(TEXT, 0),
    "sync flushes": deflate(TEXT, 6, flush_every=50_000),
    "full flushes": deflate(TEXT, 6, flush_every=50_000, mode=zlib.Z_FULL_FLUSH),
}


# --- Sha256 --------------------------------------------------------------------------------------------


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_sha256_equals_hashlib_for_any_split(data: bytes, cuts: list[int]) -> None:
    # Given any data cut anywhere, the pieces in turn bytes, bytearray and memoryview slices
    edges = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    view = memoryview(data)
    digest = Sha256()

    # When the pieces are hashed in order
    for i, (start, end) in enumerate(itertools.pairwise(edges)):
        digest.update((bytes(view[start:end]), bytearray(view[start:end]), view[start:end])[i % 3])

    # Then the digest is hashlib's
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert digest.digest() == hashlib.sha256(data).digest()


def test_sha256_state_round_trip_continues_identically() -> None:
    # Given 2 MB hashed in random pieces, each piece by a new Sha256 made from the previous one's state
    rnd = random.Random(5)
    data = rnd.randbytes(2_000_000)
    state, start = Sha256().state(), 0

    # When each piece is hashed in a new object resumed from the saved state (112 bytes each time)
    while start < len(data):
        end = start + rnd.choice([1, 63, 64, 65, 4096, rnd.randint(1, 300_000)])
        digest = Sha256(state)
        digest.update(data[start:end])
        state, start = digest.state(), end
        assert len(state) == 112

    # Then the last one's digest is hashlib's over the whole
    assert Sha256(state).hexdigest() == hashlib.sha256(data).hexdigest()


def test_sha256_hexdigest_does_not_disturb_the_running_state() -> None:
    # Given a digest under way
    digest, reference = Sha256(), hashlib.sha256()
    for piece in (b"alpha" * 100, b"beta" * 33, b"gamma"):
        digest.update(piece)
        reference.update(piece)
        state = digest.state()

        # When the digest so far is read
        assert digest.hexdigest() == reference.hexdigest()

        # Then the state is untouched and hashing goes on as if it had not been read
        assert digest.state() == state
    assert digest.hexdigest() == reference.hexdigest()


@pytest.mark.parametrize("size", [0, 104, 111, 113, 224])
def test_sha256_refuses_a_state_of_the_wrong_length(size: int) -> None:
    # Given bytes that are not 112 long
    # When they are resumed, Then they are refused
    with pytest.raises(IntegrityError, match=f"112 bytes, not {size}"):
        Sha256(bytes(size))


def _edit_state(state: bytes, **fields: int) -> bytes:
    h_and_counts = list(struct.unpack_from("=10I", state))
    num, md_len = struct.unpack_from("=2I", state, 104)
    if "nl" in fields:
        h_and_counts[8] = fields["nl"]
    num, md_len = fields.get("num", num), fields.get("md_len", md_len)
    return struct.pack("=10I", *h_and_counts) + state[40:104] + struct.pack("=2I", num, md_len)


@pytest.mark.parametrize(
    "edit",
    [{"num": 64}, {"num": 1 << 31}, {"md_len": 28}, {"nl": 101 * 8}, {"nl": 100 * 8 + 1}],
    ids=["index past the block", "huge index", "SHA-224 length", "count disagrees", "count not bytes"],
)
def test_sha256_refuses_a_state_whose_counters_are_inconsistent(edit: dict[str, int]) -> None:
    # Given the state after 100 bytes (its buffer index 36), one counter then altered
    digest = Sha256()
    digest.update(b"x" * 100)
    assert _edit_state(digest.state()) == digest.state()  # the helper alone changes nothing
    bad = _edit_state(digest.state(), **edit)

    # When it is resumed (an index past the block would make OpenSSL write past the context)
    # Then it is refused
    with pytest.raises(IntegrityError, match="not a SHA-256 state"):
        Sha256(bad)


def test_sha256_reads_a_memoryview_slice_where_it_starts() -> None:
    # Given read-only and writable views that start inside their buffers
    data = random.Random(3).randbytes(10_000)
    read_only, writable = memoryview(data)[1234:8765], memoryview(bytearray(data))[99:100]

    # When they are hashed
    first, second = Sha256(), Sha256()
    first.update(read_only)
    second.update(writable)

    # Then the bytes hashed are the slices'
    assert first.hexdigest() == hashlib.sha256(data[1234:8765]).hexdigest()
    assert second.hexdigest() == hashlib.sha256(data[99:100]).hexdigest()


@given(st.binary(max_size=300), st.data())
@settings(max_examples=60, deadline=None)
def test_sealed_state_reads_back_intact_and_any_flipped_bit_is_refused(
    data: bytes, pick: st.DataObject
) -> None:
    # Given state sealed by one invocation
    sealed = seal(data)
    assert unseal(sealed, "the state") == data

    # When any one bit of it is flipped, Then the next invocation refuses it, naming what it is
    bit = pick.draw(st.integers(0, len(sealed) * 8 - 1))
    damaged = bytearray(sealed)
    damaged[bit // 8] ^= 1 << bit % 8
    with pytest.raises(IntegrityError, match="the state is damaged"):
        unseal(bytes(damaged), "the state")
    # And so is one cut short of its checksum
    with pytest.raises(IntegrityError, match="damaged"):
        unseal(sealed[:20], "the state")


def test_sha256_length_is_the_bytes_hashed_and_survives_a_saved_state() -> None:
    # Given a hash of 70 bytes, and one resumed from its state
    digest = Sha256()
    digest.update(b"x" * 70)

    # Then it counts the bytes hashed, and so does a hash resumed from its state
    assert digest.length == 70
    resumed = Sha256(digest.state())
    resumed.update(b"y" * 5)
    assert resumed.length == 75


def test_sha256_refuses_a_buffer_that_is_not_contiguous() -> None:
    # Given every other byte of a buffer (a strided view)
    # When it is hashed, Then it is refused rather than hashed wrong
    with pytest.raises(BufferError):
        Sha256().update(memoryview(b"abcdef")[::2])


# --- Inflater: output --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(STREAMS))
def test_inflater_output_equals_zlib(name: str) -> None:
    # Given a member compressed by zlib, fed in random chunks of bytes, bytearray and memoryview
    compressed = STREAMS[name]

    # When it is inflated
    out, inflater = run(compressed, seed=11)

    # Then the output is zlib's, the final block ended, and the totals cover the member exactly
    assert out == zlib.decompress(compressed, -15) == TEXT
    assert inflater.finished and inflater.stopped is None and inflater.unused == b""
    assert (inflater.consumed, inflater.produced) == (len(compressed), len(TEXT))


def test_inflater_fed_one_byte_at_a_time() -> None:
    # Given a member fed a byte per call
    text = invoice_csv(800)
    compressed = deflate(text, 6, flush_every=9_000)

    # When it is inflated
    out, inflater = run(compressed, largest=1)

    # Then the output is the text
    assert inflater.finished and out == text


@pytest.mark.parametrize("largest", [1, 10**9])
def test_inflater_drains_output_pending_after_the_last_input_byte(
    monkeypatch: pytest.MonkeyPatch, largest: int
) -> None:
    # Given pieces of at most 100 bytes, and a 14-byte member whose last byte stands for 258-byte copies
    monkeypatch.setattr(resumable, "PIECE", 100)
    text = b"ab" * 10 + b"x" * 1000
    compressed = deflate(text, 6)

    # When it is fed (a byte at a time, or at once)
    out, inflater = run(compressed, largest=largest)

    # Then the output is all there once its input is, in pieces of at most 100 bytes
    assert out == text and inflater.finished


def test_inflater_gives_zlib_a_huge_chunk_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given zlib's input count (32-bit) lowered to 1,000 bytes, and a chunk far larger
    monkeypatch.setattr(resumable, "_MAX_IN", 1000)
    compressed = STREAMS["level 6"]

    # When the whole member is fed as one chunk
    inflater = Inflater()
    out = b"".join(inflater.feed(compressed))

    # Then zlib was given all of it, slice after slice
    assert out == TEXT and inflater.finished


def test_inflater_empty_member_and_empty_chunks() -> None:
    # Given the deflate of nothing, fed with empty chunks around it
    inflater = Inflater()
    out = [*inflater.feed(b""), *inflater.feed(deflate(b"")), *inflater.feed(b"")]

    # Then nothing comes out and the member is over
    assert out == [] and inflater.finished and inflater.produced == 0


def test_inflater_keeps_the_bytes_after_the_final_block() -> None:
    # Given a member followed by other data (the next ZIP header), in the same chunk and in a later one
    compressed = STREAMS["level 6"]
    inflater = Inflater()

    # When all is fed
    out = b"".join([*inflater.feed(compressed + b"PK\x07\x08"), *inflater.feed(b"more")])

    # Then the member's output is whole and what came after it is `unused`, not consumed
    assert out == TEXT and inflater.finished
    assert inflater.unused == b"PK\x07\x08more" and inflater.consumed == len(compressed)


# --- Inflater: stopping and resuming -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(STREAMS))
def test_inflater_resumes_at_every_boundary_in_a_new_inflater(name: str) -> None:
    # Given a member and the boundaries stop() is asked about
    compressed = STREAMS[name]
    seen = boundaries(compressed)
    count = len(seen)
    assert count >= 8
    bits_seen = set()

    for k in range(1, count + 1):
        # When the first run stops at the k-th boundary, and its point goes through its bytes
        head, first = run(compressed, stop=stop_at(k), seed=k)
        assert first.stopped is not None and not first.finished
        point = InflatePoint.from_bytes(first.stopped.to_bytes())
        assert point == first.stopped
        assert (point.consumed, point.produced) == (first.consumed, first.produced) == seen[k - 1]
        bits_seen.add(point.bits)

        # And a new inflater resumes from it, fed from point.consumed
        tail, second = run(compressed, point, seed=100 + k)

        # Then the two outputs are the text, split at the point
        assert len(head) == point.produced
        assert head + tail == TEXT
        assert second.finished and (second.consumed, second.produced) == (len(compressed), len(TEXT))

    # (points inside a byte, bits > 0, are among them, unless every block ends byte-aligned: stored, flushed)
    assert bits_seen != {0} or name in {"stored (level 0)"}


def test_inflater_resume_chain_through_many_stops() -> None:
    # Given a member with many boundaries (a flush every 4 KB)
    compressed = deflate(TEXT, 6, flush_every=4_000)
    outputs: list[bytes] = []
    point: InflatePoint | None = None
    stops = bits = 0

    # When every invocation stops at its first boundary and the next resumes from the saved bytes
    while True:
        out, inflater = run(compressed, point, stop=lambda: True, seed=stops)
        outputs.append(out)
        if inflater.finished:
            break
        assert inflater.stopped is not None
        point = InflatePoint.from_bytes(inflater.stopped.to_bytes())
        stops, bits = stops + 1, bits + (point.bits > 0)

    # Then the outputs join into the text
    assert b"".join(outputs) == TEXT
    # (a flush ends its data block anywhere in a byte, then adds an empty stored block, byte-aligned)
    assert stops >= 400 and 0 < bits < stops


def test_inflater_resume_chain_with_points_inside_a_byte_fed_a_byte_at_a_time() -> None:
    # Given a member whose blocks end mid-byte (level 1 makes many blocks), fed a byte per call
    text = invoice_csv(3000, seed=2)
    compressed = deflate(text, 1)
    outputs: list[bytes] = []
    points: list[InflatePoint] = []
    point: InflatePoint | None = None

    # When each invocation stops at its first boundary and the next resumes from the point
    while True:
        out, inflater = run(compressed, point, stop=lambda: True, largest=1)
        outputs.append(out)
        if inflater.finished:
            break
        assert inflater.stopped is not None
        point = InflatePoint.from_bytes(inflater.stopped.to_bytes())
        points.append(point)

    # Then the outputs join into the text, across points primed with partial bytes
    assert b"".join(outputs) == text
    assert len(points) >= 2 and any(p.bits for p in points)


def test_inflater_point_keeps_the_last_32_kib_of_output() -> None:
    # Given a member flushed every 1,000 bytes: two boundaries each time (the data block's end, then the
    # empty stored block's), the first after 1,000 bytes, most far beyond 32 KiB
    compressed = deflate(TEXT, 6, flush_every=1_000)

    for k in (1, 2, 3, 80, 801):
        # When inflating stops at the k-th boundary
        head, inflater = run(compressed, stop=stop_at(k))
        point = inflater.stopped
        assert point is not None

        # Then the window is the output's last 32 KiB (all of it, when shorter)
        assert point.produced == len(head) == 1000 * ((k + 1) // 2)
        assert point.window == head[-WINDOW:] and len(point.window) == min(len(head), WINDOW)


def test_inflater_goes_on_after_a_stop_when_fed_from_the_point() -> None:
    # Given an inflater that stopped at its third boundary, with input of the chunk left over
    compressed = STREAMS["level 6"]
    inflater = Inflater()
    asked = stop_at(3)
    head = b"".join(inflater.feed(compressed, asked))
    point = inflater.stopped
    assert point is not None and point.consumed < len(compressed)

    # When the same inflater is fed again from point.consumed
    tail = b"".join(inflater.feed(compressed[point.consumed :]))

    # Then it goes on where it stopped, and is no longer `stopped`
    assert head + tail == TEXT and inflater.finished and inflater.stopped is None


def test_inflater_never_asks_stop_at_or_after_the_final_block() -> None:
    # Given members, one ending in an empty final block (a flush before the end) and data after each
    for compressed in (STREAMS["level 6"], STREAMS["sync flushes"], deflate(TEXT[:5000], 6, 5000)):
        inflater = Inflater()
        asked_at: list[int] = []

        def stop(inflater: Inflater = inflater, asked_at: list[int] = asked_at) -> bool:
            asked_at.append(inflater.consumed)
            return False

        # When everything is fed, trailing bytes too
        out = b"".join([*inflater.feed(compressed + b"trailer", stop), *inflater.feed(b"later", stop)])

        # Then stop() was asked only before the final block began (it still needs a byte of its own)
        assert inflater.finished and out == zlib.decompress(compressed, -15)
        assert asked_at and max(asked_at) < len(compressed)


# --- Inflater: refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x07\x00\x00", "invalid block type"),
        (b"\x01\x05\x00\x00\x00hello", "invalid stored block lengths"),  # LEN 5 but NLEN not ~5
        (b"\x01\x05\x00\xfa\xffhe", None),  # a stored block cut short: not an error, just not finished
    ],
)
def test_inflater_refuses_corrupt_data_naming_the_problem(data: bytes, message: str | None) -> None:
    # Given data that is not valid deflate (or valid but cut short)
    inflater = Inflater()

    # When it is fed, Then corrupt data is an IntegrityError naming zlib's reason
    if message is None:
        assert b"".join(inflater.feed(data)) == b"he" and not inflater.finished
        return
    with pytest.raises(IntegrityError, match=f"corrupt deflate data: {message}"):
        list(inflater.feed(data))


def test_inflater_refuses_corruption_inside_a_real_member() -> None:
    # Given a real member with its dynamic-Huffman header damaged
    damaged = bytearray(STREAMS["level 6"])
    damaged[3] ^= 0xFF

    # When it is inflated, Then the damage is found
    with pytest.raises(IntegrityError, match="corrupt deflate data: invalid"):
        run(bytes(damaged))


def test_inflater_refuses_to_go_on_after_an_abandoned_feed_or_close() -> None:
    # Given an inflater whose feed was left after its first piece (part of a chunk consumed)
    inflater = Inflater()
    feeding = inflater.feed(STREAMS["level 6"])
    next(feeding)
    feeding.close()

    # When it is fed again, Then it refuses: its position in the input is lost
    with pytest.raises(ValueError, match="unfinished"):
        list(inflater.feed(b"x"))

    # And a closed inflater (also as a context manager) refuses too
    with Inflater() as closed:
        pass
    with pytest.raises(ValueError, match="closed"):
        list(closed.feed(b"x"))


def _point_bytes(
    consumed: int, bits: int, prime: int, produced: int, window: bytes, head: bytes = b""
) -> bytes:
    """A point's bytes with any field values and a valid CRC (layout: <4sBBBxQQ, window, crc32)."""
    body = (head or struct.pack("<4sB", b"FXIP", 1)) + struct.pack("<BBxQQ", bits, prime, consumed, produced)
    body += window
    return body + struct.pack("<I", zlib.crc32(body))


GOOD = InflatePoint(consumed=1234, bits=3, prime=5, produced=40_000, window=bytes(range(256)) * 128)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (GOOD.to_bytes()[:20], "too short"),
        (GOOD.to_bytes()[:-1], "CRC-32"),
        (GOOD.to_bytes()[:30] + b"\x00" + GOOD.to_bytes()[31:], "CRC-32"),
        (_point_bytes(1234, 3, 5, 40_000, GOOD.window, head=b"PK\x03\x04\x01"), "unknown format"),
        (_point_bytes(1234, 3, 5, 40_000, GOOD.window, head=b"FXIP\x02"), "unknown format"),
        (_point_bytes(1234, 8, 5, 40_000, GOOD.window), "bits"),
        (_point_bytes(1234, 3, 8, 40_000, GOOD.window), "bits"),
        (_point_bytes(1234, 0, 1, 40_000, GOOD.window), "bits"),
        (_point_bytes(0, 3, 5, 40_000, GOOD.window), "out of range"),
        (_point_bytes(1234, 3, 5, 40_000, GOOD.window[1:]), "window"),
        (_point_bytes(1234, 3, 5, 100, GOOD.window[:99]), "window"),
    ],
    ids=[
        "empty",
        "truncated header",
        "truncated crc",
        "damaged window",
        "wrong magic",
        "newer version",
        "8 bits",
        "prime wider than bits",
        "prime without bits",
        "nothing consumed",
        "short window",
        "window vs produced",
    ],
)
def test_inflate_point_from_bytes_refuses_malformed_bytes(data: bytes, message: str) -> None:
    # Given bytes that are not a sound point
    # When they are read, Then they are refused
    with pytest.raises(IntegrityError, match=message):
        InflatePoint.from_bytes(data)


def test_inflate_point_bytes_round_trip() -> None:
    # Given a point, Then its bytes are a 28-byte frame around the window and read back equal
    assert _point_bytes(1234, 3, 5, 40_000, GOOD.window) == GOOD.to_bytes()
    assert len(GOOD.to_bytes()) == 28 + WINDOW
    assert InflatePoint.from_bytes(GOOD.to_bytes()) == GOOD


# --- loading -------------------------------------------------------------------------------------------


def test_a_library_that_cannot_be_loaded_is_a_config_error_naming_it() -> None:
    # Given sonames that do not exist on this machine
    # When each is loaded, Then the error names the library
    with pytest.raises(ConfigError, match=r"^libcrypto-missing\.so\.3: .*cannot open shared object file"):
        resumable.load_libcrypto("libcrypto-missing.so.3")
    with pytest.raises(ConfigError, match=r"^libz-missing\.so\.1: "):
        resumable.load_libz("libz-missing.so.1")


def test_when_no_candidate_loads_the_error_names_each_and_where_they_were_looked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given no candidate that exists, and a library path
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/image-libs")
    candidates = ["/usr/lib64/libcrypto-gone.so.3", "libcrypto-gone.so.3", "libcrypto-gone.so.1.1"]

    # When the first that loads is asked for, Then the error lists every try and where sonames were sought
    with pytest.raises(ConfigError) as refused:
        resumable._first("OpenSSL libcrypto", candidates, resumable.load_libcrypto)
    message = str(refused.value)
    assert message.startswith("no usable OpenSSL libcrypto; tried /usr/lib64/libcrypto-gone.so.3: ")
    assert "; libcrypto-gone.so.3: " in message and "; libcrypto-gone.so.1.1: " in message
    assert "LD_LIBRARY_PATH=/opt/image-libs, /etc/ld.so.cache" in message


def test_a_library_without_the_sha256_calls_is_skipped_for_the_next_candidate() -> None:
    # Given a first candidate that loads but is not OpenSSL (zlib), then the real libcrypto
    # When the first usable is asked for, Then the second is taken
    found = resumable._first("OpenSSL libcrypto", ["libz.so.1", "libcrypto.so.3"], resumable.load_libcrypto)
    assert found.name == "libcrypto.so.3" and found.version.startswith("OpenSSL 3.")


def test_libcrypto_is_the_one_this_pythons_hashlib_uses_before_any_soname(tmp_path: Path) -> None:
    # Given the only soname to try is OpenSSL 1.1.1's, found on the library path (a real 1.1.1w)
    libraries = unpack(tmp_path / "libs")
    script = (
        "import fusion_extract.resumable as r, ssl\n"
        "r.OPENSSL_SONAMES = ('libcrypto.so.1.1',)\n"
        "print(r.libcrypto().version.split()[1] == ssl.OPENSSL_VERSION.split()[1], r.libcrypto().path)\n"
    )

    # When the library is chosen
    env = {**os.environ, "LD_LIBRARY_PATH": str(libraries)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )

    # Then it is the OpenSSL this Python's own hashlib and ssl use, not the soname's
    same, path = result.stdout.split()
    assert same == "True" and not path.startswith(str(libraries))


@pytest.mark.skipif(not getattr(zlib, "__file__", None), reason="this Python's zlib module is built in")
def test_libz_is_the_one_this_pythons_zlib_module_uses_before_any_soname() -> None:
    # Given a soname to try that does not exist
    script = (
        "import fusion_extract.resumable as r, zlib\n"
        "r.ZLIB_SONAMES = ('libz-absent.so.1',)\n"
        "print(r.libz().version.decode() == zlib.ZLIB_RUNTIME_VERSION)\n"
    )

    # When the library is chosen
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    # Then it is the zlib this Python's zlib module is linked to
    assert result.stdout.split() == ["True"]


def test_libraries_load_at_first_use_not_at_import() -> None:
    # Given a fresh interpreter that imports the module
    script = (
        "import fusion_extract.resumable as r\n"
        "maps = lambda: open('/proc/self/maps').read()\n"
        "before = 'libcrypto' in maps()\n"
        "r.Sha256()\n"
        "print(before, 'libcrypto' in maps())\n"
    )

    # When it hashes for the first time
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    # Then libcrypto was mapped by that use, not by the import
    assert result.stdout.split() == ["False", "True"]


def test_a_library_without_a_needed_function_is_a_config_error_naming_both() -> None:
    # Given the real zlib, asked for a function it does not have
    # When it is bound, Then the error names the library and the function
    with pytest.raises(ConfigError, match=r"libz\.so\.1 has no inflateTeleport"):
        resumable._function(ctypes.CDLL("libz.so.1"), "inflateTeleport", ctypes.c_int)


def test_self_test_round_trips_both_libraries_and_says_which_it_loaded() -> None:
    # Given this machine's libraries, When the container's check runs
    found = resumable.self_test()

    # Then it names the libcrypto and zlib it used, with their versions
    assert f"libcrypto {resumable.libcrypto().path} (OpenSSL 3." in found
    inflate = resumable.inflate_library()
    assert f"libz {inflate.path} ({inflate.version.decode()})" in found
