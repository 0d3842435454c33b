"""Streams are regrouped into parts of exactly the part size, whatever their chunking."""

import pytest

from fusion_extract.chunks import exact_parts

DATA = bytes(range(256)) * 40  # 10,240 bytes


@pytest.mark.parametrize("chunk_size", [1, 7, 1000, 1024, 4096, 10_240, 50_000])
def test_exact_parts_whatever_the_chunking_cuts_at_the_part_size(chunk_size):
    # Given the same bytes arriving in chunks of some size
    chunks = [DATA[i : i + chunk_size] for i in range(0, len(DATA), chunk_size)]

    # When they are regrouped into 4 KiB parts
    parts = list(exact_parts(chunks, 4096))

    # Then every part but the last is exactly 4 KiB, and together they are the input
    assert [len(p) for p in parts] == [4096, 4096, 2048]
    assert b"".join(parts) == DATA


def test_exact_parts_when_input_fills_whole_parts_yields_no_empty_tail():
    assert [len(p) for p in exact_parts([DATA[:8192]], 4096)] == [4096, 4096]


def test_exact_parts_when_input_is_empty_yields_nothing():
    assert list(exact_parts([b"", b""], 4096)) == []
