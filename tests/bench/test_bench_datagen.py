"""Benchmark data: seeded, realistic, 5-10x compressible, cached once per parameter set."""

import json
import zipfile
import zlib

import pytest

from tests.bench.datagen import Spec, build, member_blocks, member_format

MiB = 2**20


@pytest.mark.parametrize("data_format", ["csv", "json"])
def test_members_deflate_between_five_and_ten_times(data_format):
    # Given 2 MiB of generated member data
    data = b"".join(block for _rows, block in member_blocks("ratio", 2 * MiB, data_format))

    # When deflated as the archives are (level 6)
    ratio = len(data) / len(zlib.compress(data, 6))

    # Then it compresses like an extract, neither like noise nor like repeated text
    assert 5.0 <= ratio <= 10.0


@pytest.mark.parametrize("data_format", ["csv", "json"])
def test_member_holds_whole_rows_close_to_the_size_asked_and_counts_them(data_format):
    # Given a member of about 300 kB
    blocks = list(member_blocks("rows", 300_000, data_format))
    data = b"".join(block for _rows, block in blocks)
    counted = sum(rows for rows, _block in blocks)

    # Then it parses, its row count is right, and it is within one row of the size
    if data_format == "csv":
        assert data.endswith(b"\n")
        assert data.count(b"\n") - 1 == counted
    else:
        assert len(json.loads(data)["items"]) == counted
    assert 300_000 - 1000 < len(data) <= 300_000


def test_same_seed_same_bytes_other_seed_other_bytes():
    def sample(seed):
        return b"".join(block for _rows, block in member_blocks(seed, 100_000, "csv"))

    assert sample("a") == sample("a")
    assert sample("a") != sample("b")


def test_many_member_archives_mix_three_csv_to_one_json():
    assert [member_format(i, 8) for i in range(8)] == ["csv", "csv", "csv", "json"] * 2
    assert member_format(0, 1) == "csv"


def test_build_writes_the_archive_once_and_describes_it(tmp_path):
    # Given a small spec: 1 MiB in four members
    spec = Spec(megabytes=1, members=4, seed=3)

    # When it is built, then asked for again
    built = build(spec, cache=tmp_path)
    written = built.path.stat().st_mtime_ns
    again = build(spec, cache=tmp_path)

    # Then the second time reuses the first archive, described the same
    assert again.path.stat().st_mtime_ns == written
    assert (again.size, again.sha256, again.members) == (built.size, built.sha256, built.members)
    # And the description matches the ZIP: members, sizes, and a metadata member listing the rows
    with zipfile.ZipFile(built.path) as archive:
        assert [(i.filename, i.file_size) for i in archive.infolist()] == [
            (m["name"], m["size"]) for m in built.members
        ]
        metadata = json.loads(archive.read("invoices_metadata.json"))
    assert metadata["files"] == [{"name": m["name"], "rows": m["rows"]} for m in built.members[:4]]
    assert 5.0 <= built.ratio <= 10.0
