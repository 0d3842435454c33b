"""Output files: listing and paging, the generated ZIPs and manifest, downloads with Range."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.clocks import ManualClock
from tests.emulators.fusion import ExtractScenario, FusionEmulator
from tests.emulators.fusion.archive import ZIP64_FROM, Member, zip_stream
from tests.emulators.fusion.batch import FILES
from tests.emulators.fusion.plain_client import PlainClient

ZIP_NAME = re.compile(r"(\d+)_S_Sales_carriers_(\d{13})_(\d{8}_\d{6}\.\d{6})_(\d+)\.zip")
MANIFEST_NAME = re.compile(r"MANIFEST_EXTRACT_\d{14}-SCHEDULE_(\d+)_REQUEST_(\d+)_(\d+)\.mf")


def finished_job(client: PlainClient, clock: ManualClock, extract: str = "Sales") -> int:
    client.authorize()
    job_id = client.submit_job(extract)
    clock.advance(60)
    return job_id


def test_output_files_before_the_job_succeeded_returns_409(client: PlainClient) -> None:
    # Given a job still enqueued
    client.authorize()
    job_id = client.submit_job("Sales")
    # When its output files are listed
    response = client.files(job_id)
    # Then the answer is a conflict that says why, not an empty list
    assert response.status_code == 409
    assert "ENQUEUED" in response.json()["detail"]


def test_output_files_list_zips_then_manifest_with_documented_fields(
    client: PlainClient, clock: ManualClock
) -> None:
    # Given a finished job of two chunks
    job_id = finished_job(client, clock)
    # When its output files are listed
    page = client.files(job_id).json()
    items = page["items"]
    # Then there are two ZIPs named the way Oracle names them, then the manifest
    assert (page["totalItems"], page["hasMore"]) == (3, False)
    first, second, manifest = (item["fileName"] for item in items)
    first_match, second_match = ZIP_NAME.fullmatch(first), ZIP_NAME.fullmatch(second)
    assert first_match and second_match
    assert (first_match[1], first_match[4], second_match[4]) == (str(job_id + 9), "1", "2")
    assert MANIFEST_NAME.fullmatch(manifest)
    # And every item has size, creation time, checksum and links under the Fusion host
    item = items[0]
    assert item["fileSize"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", item["timeCreated"])
    assert re.fullmatch(r"sha-256=[0-9a-f]{64}", item["checksum"])
    self_href = f"{client.fusion.base_url}{FILES}/{job_id}/outputFiles/{first}"
    assert item["$context"]["links"] == {
        "$self": {"href": self_href},
        "enclosure": {"href": f"{self_href}/content"},
    }


def test_output_files_pages_by_the_scenario_page_size(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock
) -> None:
    # Given a job of five chunks (six files with the manifest) and pages of two
    fusion.define_extract("Sales", ExtractScenario(chunks=5, rows_per_chunk=3, page_size=2))
    job_id = finished_job(client, clock)
    # When the list is read, asking for more than a page holds
    first = client.files(job_id, limit=100).json()
    last = client.files(job_id, offset=4).json()
    # Then pages hold at most two and say whether more follow
    assert (first["count"], first["limit"], first["hasMore"], first["totalItems"]) == (2, 2, True, 6)
    assert (last["count"], last["hasMore"]) == (2, False)
    assert len(client.all_files(job_id)) == 6


def test_downloaded_zips_open_and_match_listing_and_manifest(client: PlainClient, clock: ManualClock) -> None:
    # Given a finished job's listing
    job_id = finished_job(client, clock)
    *zips, manifest = client.all_files(job_id)
    # When every file is downloaded
    bodies = [client.download(item).content for item in zips]
    manifest_text = client.download(manifest).text
    # Then each ZIP's size and SHA-256 are the listed ones, and the manifest lists them with the same
    for item, body in zip(zips, bodies, strict=True):
        assert len(body) == item["fileSize"]
        assert f"sha-256={hashlib.sha256(body).hexdigest()}" == item["checksum"]
    lines = [line.split(";") for line in manifest_text.splitlines()]
    assert [(name, sha) for name, _, sha in lines] == [
        (item["fileName"], hashlib.sha256(body).hexdigest()) for item, body in zip(zips, bodies, strict=True)
    ]
    assert all(docid.isdigit() for _, docid, _ in lines)
    # And the archives hold one CSV each; only the last holds the metadata, which counts every row
    first, last = (zipfile.ZipFile(io.BytesIO(body)) for body in bodies)
    assert first.namelist() == ["carriers_1.csv"]
    assert last.namelist() == ["carriers_2.csv", "carriers_metadata.json"]
    assert first.testzip() is None and last.testzip() is None
    metadata = json.loads(last.read("carriers_metadata.json"))
    assert metadata == {
        "extract": "Sales",
        "view": "carriers",
        "format": "csv",
        "files": [{"name": "carriers_1.csv", "rows": 50}, {"name": "carriers_2.csv", "rows": 50}],
        "totalRows": 100,
    }


def test_csv_member_has_upper_case_header_iso_timestamps_and_empty_nulls(
    client: PlainClient, clock: ManualClock
) -> None:
    # Given the first archive of a finished job
    job_id = finished_job(client, clock)
    body = client.download(client.all_files(job_id)[0]).content
    # When its CSV member is parsed
    text = zipfile.ZipFile(io.BytesIO(body)).read("carriers_1.csv").decode()
    header, *rows = list(csv.reader(io.StringIO(text)))
    # Then it looks like a Fusion extract: a quoted field survives, nulls are empty, ids run on
    assert header == [
        "ID",
        "CODE",
        "NAME",
        "DESCRIPTION",
        "AMOUNT",
        "ACTIVEFLAG",
        "NOTE",
        "TIMECREATED",
        "TIMEUPDATED",
    ]
    assert len(rows) == 50
    assert [int(row[0]) for row in rows] == list(range(1, 51))
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row[7]) for row in rows)
    notes = {row[6] for row in rows}
    assert "" in notes and 'Dock "B", north gate' in notes


def test_json_format_members_hold_items(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock
) -> None:
    # Given an extract in JSON format
    fusion.define_extract("Sales", ExtractScenario(format="json", chunks=1, rows_per_chunk=7))
    job_id = finished_job(client, clock)
    # When its archive is read
    archive = zipfile.ZipFile(io.BytesIO(client.download(client.all_files(job_id)[0]).content))
    # Then the member is {"items": [...]} with nulls as null, and the metadata says json
    items = json.loads(archive.read("carriers_1.json"))["items"]
    assert [item["id"] for item in items] == list(range(1, 8))
    assert items[4]["note"] is None
    assert json.loads(archive.read("carriers_metadata.json"))["format"] == "json"


def test_zero_files_scenario_succeeds_with_no_files_and_no_manifest(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock
) -> None:
    # Given an extract with nothing changed since the last run
    fusion.define_extract("Sales", ExtractScenario(zero_files=True))
    job_id = finished_job(client, clock)
    # When the output is listed
    page = client.files(job_id).json()
    # Then the job succeeded with an empty list
    assert (page["items"], page["totalItems"], page["hasMore"]) == ([], 0, False)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=10-19", (10, 20)),
        ("bytes=100-", (100, None)),
        ("bytes=-30", (-30, None)),
        ("5-9/999", (5, 10)),
    ],
    ids=["closed", "open", "suffix", "oracle-form"],
)
def test_content_range_returns_206_with_exact_slice(
    client: PlainClient, clock: ManualClock, header: str, expected: tuple[int, int | None]
) -> None:
    # Given a finished job's first archive, downloaded whole
    job_id = finished_job(client, clock)
    item = client.all_files(job_id)[0]
    whole = client.download(item).content
    # When a range of it is asked for
    response = client.download(item, {"Range": header})
    # Then exactly that slice comes back, with its Content-Range
    start, stop = expected
    part = whole[start:stop]
    first = len(whole) + start if start < 0 else start
    assert response.status_code == 206
    assert response.content == part
    assert response.headers["Content-Range"] == f"bytes {first}-{first + len(part) - 1}/{len(whole)}"


def test_content_range_past_the_end_returns_416_and_invalid_ranges_are_ignored(
    client: PlainClient, clock: ManualClock
) -> None:
    # Given a finished job's first archive
    job_id = finished_job(client, clock)
    item = client.all_files(job_id)[0]
    size = item["fileSize"]
    # When a range starting at its end, a range in an unknown syntax, and a backwards one are asked for
    past = client.download(item, {"Range": f"bytes={size}-"})
    unknown = client.download(item, {"Range": "lines=1-2"})
    backwards = client.download(item, {"Range": "bytes=20-10"})
    # Then the first is unsatisfiable and the others get the whole file (RFC 9110 lets a server ignore them)
    assert past.status_code == 416
    assert past.headers["Content-Range"] == f"bytes */{size}"
    assert (unknown.status_code, len(unknown.content)) == (200, size)
    assert (backwards.status_code, len(backwards.content)) == (200, size)


def test_content_names_its_version_and_conditional_requests_follow_it(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock
) -> None:
    # Given a finished job's first archive, downloaded whole: its answer names its version
    job_id = finished_job(client, clock)
    item = client.all_files(job_id)[0]
    first = client.download(item)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('"') and first.headers["Accept-Ranges"] == "bytes"

    # When it is asked for under that version, Then it is served (a range of it too)
    assert client.download(item, {"If-Match": etag}).status_code == 200
    assert client.download(item, {"If-Unmodified-Since": modified}).status_code == 200
    assert client.download(item, {"Range": "bytes=10-", "If-Range": etag}).status_code == 206

    # When the file changes in place
    fusion.revise_output(job_id, item["fileName"])
    changed = client.download(item)

    # Then it is as long as before, one byte differs, and its version is another
    assert len(changed.content) == len(first.content)
    assert sum(a != b for a, b in zip(changed.content, first.content, strict=True)) == 1
    assert changed.headers["ETag"] != etag and changed.headers["Last-Modified"] != modified
    assert client.all_files(job_id)[0]["checksum"] == f"sha-256={hashlib.sha256(changed.content).hexdigest()}"
    # And a request naming the old version is refused (412), or given the whole new file for If-Range
    assert client.download(item, {"Range": "bytes=10-", "If-Match": etag}).status_code == 412
    assert client.download(item, {"Range": "bytes=10-", "If-Unmodified-Since": modified}).status_code == 412
    whole = client.download(item, {"Range": "bytes=10-", "If-Range": etag})
    assert (whole.status_code, whole.content) == (200, changed.content)

    # When it is revised again, Then it is as it was (its ETag is its content's)
    fusion.revise_output(job_id, item["fileName"])
    again = client.download(item)
    assert (again.content, again.headers["ETag"]) == (first.content, etag)


def test_content_of_a_server_that_ignores_range_is_the_whole_file(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock
) -> None:
    # Given an extract whose downloads ignore Range
    fusion.define_extract("Whole", ExtractScenario(ignore_range=True))
    item = client.all_files(finished_job(client, clock, "Whole"))[0]

    # When a range is asked for, Then the whole file comes back, 200, without Content-Range
    response = client.download(item, {"Range": "bytes=10-"})
    assert (response.status_code, len(response.content)) == (200, item["fileSize"])
    assert "Content-Range" not in response.headers and response.headers["Accept-Ranges"] == "none"


def test_self_link_returns_the_item_and_unknown_file_returns_404(
    client: PlainClient, clock: ManualClock
) -> None:
    # Given a finished job's listing
    job_id = finished_job(client, clock)
    item = client.all_files(job_id)[0]
    # When its $self link and a file that does not exist are fetched
    itself = client.get(item["$context"]["links"]["$self"]["href"]).json()
    missing = client.get(f"{FILES}/{job_id}/outputFiles/nothing.zip/content")
    # Then the first is the same item and the second a 404
    assert itself == item
    assert missing.status_code == 404


def test_output_is_deterministic_across_emulators_with_the_same_clock(tmp_path: Path) -> None:
    # Given two emulators started at the same emulator time
    digests: list[list[Any]] = []
    for run in ("one", "two"):
        clock = ManualClock()
        with FusionEmulator(clock=clock, workdir=tmp_path / run) as fusion:
            fusion.add_client("client-id", "client-secret")
            fusion.define_extract("Sales", ExtractScenario(seed="fixed"))
            # When the same job runs on each
            client = PlainClient(fusion)
            job_id = finished_job(client, clock)
            digests.append([(item["fileName"], item["checksum"]) for item in client.all_files(job_id)])
            client.session.close()
    # Then the files have the same names and bytes
    assert digests[0] == digests[1]


def test_zip_stream_member_that_may_pass_4_gib_gets_zip64_headers_and_opens() -> None:
    # Given a member announced as possibly larger than 2 GiB (its real size is small)
    member = Member("big.csv", lambda: [b"ID\n", b"1\n"], size_hint=ZIP64_FROM)
    # When the archive is streamed
    body = b"".join(zip_stream([member], (2026, 3, 1, 8, 0, 0)))
    # Then it carries ZIP64 extra fields from the start and still reads back
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.read("big.csv") == b"ID\n1\n"
    name_end = 30 + len("big.csv")  # the local header is 30 fixed bytes, the name, then the extra fields
    assert int.from_bytes(body[28:30], "little") > 0
    assert body[name_end : name_end + 2] == b"\x01\x00"  # the ZIP64 extra field's id
