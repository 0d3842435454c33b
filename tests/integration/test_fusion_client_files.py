"""Output files of a finished job against the emulated Fusion over HTTPS: every page of the listing,
checksums that match the bytes, downloads resumed with Range after a dropped connection."""

import hashlib
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

import pytest

from fusion_extract.errors import IntegrityError, RangeIgnoredError, UpstreamError
from fusion_extract.models import SourceVersion
from tests.emulators.fusion import ExtractScenario
from tests.integration.fusion_stack import FULL_SALES, fusion_stack


def sha256_of(chunks: Iterable[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def test_output_files_follow_every_page_and_list_checksums_of_the_bytes(tmp_path: Path) -> None:
    # Given a finished job with 5 ZIPs and a manifest, listed 2 per page
    with fusion_stack(tmp_path, ExtractScenario(chunks=5, page_size=2)) as stack:
        job = stack.finished_job()

        # When its output files are listed and each is downloaded
        files = stack.client.output_files(job)
        downloaded = [sha256_of(stack.client.download(file)) for file in files]

        # Then all three pages were read, in order, and every listed checksum and size is the bytes'
        assert [served.query for served in stack.to_fusion("/outputFiles")] == [
            {},
            {"offset": "2", "limit": "2"},
            {"offset": "4", "limit": "2"},
        ]
        assert [file.name.rsplit("_", 1)[-1] for file in files[:5]] == [f"{n}.zip" for n in range(1, 6)]
        assert files[5].name.startswith("MANIFEST_EXTRACT_") and files[5].name.endswith(".mf")
        assert downloaded == [(file.sha256, file.size) for file in files]


def test_output_files_of_a_job_with_nothing_new_is_empty(tmp_path: Path) -> None:
    # Given a finished job that produced no output
    with fusion_stack(tmp_path, ExtractScenario(zero_files=True)) as stack:
        job = stack.finished_job()

        # When its output files are listed
        files = stack.client.output_files(job)

        # Then there are none
        assert files == []


def test_output_files_before_the_job_succeeded_raises_upstream_error_not_retried(tmp_path: Path) -> None:
    # Given a job still running
    with fusion_stack(tmp_path) as stack:
        job = stack.client.submit(FULL_SALES, "run-1")

        # When its output files are listed
        with pytest.raises(UpstreamError, match="answered 409") as caught:
            stack.client.output_files(job)

        # Then Fusion's conflict is reported as it is, after one request
        assert caught.value.status == 409
        assert len(stack.to_fusion("/outputFiles")) == 1


def test_download_after_dropped_connections_resumes_with_range_and_matches_the_checksum(
    tmp_path: Path,
) -> None:
    # Given an output file of about 4.8 MB whose download Fusion cuts after 1.5 MB, twice (the client
    # keeps only whole 1 MiB chunks of a cut response, so the cut must come after at least one)
    scenario = ExtractScenario(
        chunks=1,
        rows_per_chunk=20_000,
        compress_level=0,
        drop_download_after_bytes=1_500_000,
        drop_download_times=2,
    )
    with fusion_stack(tmp_path, scenario) as stack:
        job = stack.finished_job()
        archive = stack.client.output_files(job)[0]

        # When it is downloaded
        sha256, size = sha256_of(stack.client.download(archive))

        # Then each retry asked only for the bytes after those received, and the whole verified
        contents = stack.to_fusion("/content")
        offsets = [int(served.headers["range"][len("bytes=") : -1]) for served in contents[1:]]
        assert "range" not in contents[0].headers
        assert [served.status for served in contents] == [200, 206, 206]
        assert 0 < offsets[0] < offsets[1] < archive.size
        assert (sha256, size) == (archive.sha256, archive.size)


def test_download_answered_503_is_retried_and_completes(tmp_path: Path) -> None:
    # Given a finished job whose first download request answers 503 with Retry-After: 2
    with fusion_stack(tmp_path, ExtractScenario(chunks=1)) as stack:
        job = stack.finished_job()
        archive = stack.client.output_files(job)[0]
        stack.fusion.fail_next(r"/content$", 503, retry_after=2)

        # When it is downloaded
        sha256, size = sha256_of(stack.client.download(archive))

        # Then the client waited as asked and got the whole file
        assert stack.clock.sleeps == [2.0]
        assert [served.status for served in stack.to_fusion("/content")] == [503, 200]
        assert (sha256, size) == (archive.sha256, archive.size)


def test_output_file_listed_with_a_wrong_checksum_differs_from_its_bytes(tmp_path: Path) -> None:
    # Given Fusion lists the first ZIP with a checksum it does not have
    with fusion_stack(tmp_path, ExtractScenario(chunks=2, wrong_checksum=True)) as stack:
        job = stack.finished_job()

        # When every file is listed and downloaded (the client itself does not verify)
        files = stack.client.output_files(job)
        downloaded = [sha256_of(stack.client.download(file)) for file in files]

        # Then a caller comparing sees the first ZIP's bytes disagree with its listing, the others agree
        assert downloaded[0][0] != files[0].sha256
        assert downloaded[0][1] == files[0].size
        assert downloaded[1:] == [(file.sha256, file.size) for file in files[1:]]


def test_download_resumed_after_the_file_changed_is_refused_before_any_byte(tmp_path: Path) -> None:
    # Given an output file read part-way: the version its first answer named is kept
    with fusion_stack(tmp_path, ExtractScenario(chunks=1, rows_per_chunk=5000, compress_level=0)) as stack:
        job = stack.finished_job()
        archive = stack.client.output_files(job)[0]
        version = SourceVersion()
        head = b"".join(islice(stack.client.download(archive, 0, version), 2))
        assert version.etag is not None and version.last_modified is not None

        # When the file changes in place, and the download resumes (in another invocation) from there
        stack.fusion.revise_output(job, archive.name)
        resumed = stack.client.download(archive, len(head), version)

        # Then the resume is refused as a changed file, without a byte, having asked for that version only
        with pytest.raises(IntegrityError, match="changed since its download began"):
            next(resumed)
        last = stack.to_fusion("/content")[-1]
        assert (last.status, last.headers["if-match"]) == (412, version.etag)


def test_download_pinned_by_last_modified_only_is_refused_once_the_file_changed(tmp_path: Path) -> None:
    # Given the version of a file known by its Last-Modified alone (a server that sent no ETag)
    with fusion_stack(tmp_path, ExtractScenario(chunks=1)) as stack:
        job = stack.finished_job()
        archive = stack.client.output_files(job)[0]
        first = SourceVersion()
        b"".join(stack.client.download(archive, 0, first))
        version = SourceVersion(last_modified=first.last_modified)

        # When the file changes, Then a read of that version is refused (If-Unmodified-Since answered 412)
        stack.fusion.revise_output(job, archive.name)
        with pytest.raises(IntegrityError, match="changed since its download began"):
            next(stack.client.download(archive, 10, version))
        assert stack.to_fusion("/content")[-1].headers["if-unmodified-since"] == first.last_modified


def test_download_whose_connection_drops_after_the_file_changed_refuses_to_join_two_versions(
    tmp_path: Path,
) -> None:
    # Given a download Fusion cuts after 1.5 MB, the file changing in place meanwhile
    scenario = ExtractScenario(
        chunks=1, rows_per_chunk=20_000, compress_level=0, drop_download_after_bytes=1_500_000
    )
    with fusion_stack(tmp_path, scenario) as stack:
        job = stack.finished_job()
        archive = stack.client.output_files(job)[0]
        chunks = stack.client.download(archive)
        received = len(next(chunks))
        stack.fusion.revise_output(job, archive.name)

        # When the download goes on past the cut, Then its resume is refused: no byte of the new version
        with pytest.raises(IntegrityError, match="changed since its download began"):
            for chunk in chunks:
                received += len(chunk)
        assert received < 1_500_000 + 2**20
        assert [served.status for served in stack.to_fusion("/content")] == [200, 412]


def test_download_resumed_from_a_server_that_ignores_range_is_refused_after_one_request(
    tmp_path: Path,
) -> None:
    # Given a Fusion that answers every download with the whole file
    with fusion_stack(tmp_path, ExtractScenario(chunks=1, ignore_range=True)) as stack:
        job = stack.finished_job()
        archive = stack.client.output_files(job)[0]

        # When a download resumes at byte 1000, Then it is refused at once, not read through to skip
        with pytest.raises(RangeIgnoredError, match="from 1000, the server sent the whole file"):
            next(stack.client.download(archive, 1000))
        assert [served.status for served in stack.to_fusion("/content")] == [200]


def test_download_pinned_by_a_weak_etag_compares_the_answers_etag_itself(tmp_path: Path) -> None:
    # Given the version of a file known by a weak ETag alone (If-Match cannot use it: it compares strongly)
    with fusion_stack(tmp_path, ExtractScenario(chunks=1)) as stack:
        job = stack.finished_job()
        archive = stack.client.output_files(job)[0]
        first = SourceVersion()
        b"".join(stack.client.download(archive, 0, first))
        version = SourceVersion(etag=f"W/{first.etag}")

        # When the file changes, Then the answer's own ETag gives it away: refused, though not asked for
        stack.fusion.revise_output(job, archive.name)
        with pytest.raises(IntegrityError, match="changed since its download began: its ETag is"):
            next(stack.client.download(archive, 10, version))
        last = stack.to_fusion("/content")[-1]
        assert last.status == 206 and "if-match" not in last.headers
