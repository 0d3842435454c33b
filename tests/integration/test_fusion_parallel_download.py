"""Parallel ranged downloads against the emulated Fusion over HTTPS: several ranges at once, delivered in
the file's order, every byte served once, resumed from an offset, each range resumed after a drop, and
every range of the version the first one named."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

import pytest
import requests

from fusion_extract.errors import IntegrityError
from fusion_extract.fusion.download import CHUNK_SIZE, ParallelDownload
from fusion_extract.fusion.download import SEGMENT as DEFAULT_SEGMENT
from fusion_extract.fusion.http import Bearer, HttpClient
from fusion_extract.fusion.tokens import TokenProvider
from fusion_extract.models import OutputFile, SourceVersion
from fusion_extract.retry import RetryPolicy
from tests.emulators.fusion import ExtractScenario
from tests.integration.fusion_stack import CREDENTIALS, FusionStack, fusion_stack
from tests.unit.fusion_support import StaticCredentials

SEGMENT = 256 * 1024
CHUNK = 64 * 1024
LARGE = ExtractScenario(chunks=1, rows_per_chunk=20_000, compress_level=0)  # one ZIP of about 4.8 MB


@contextmanager
def downloading(tmp_path: Path, scenario: ExtractScenario = LARGE) -> Iterator[tuple[FusionStack, Fetch]]:
    """The emulator with one finished job, and a parallel download of its archive with small ranges."""
    with fusion_stack(tmp_path, scenario) as stack, requests.Session() as session:
        fusion = stack.fusion
        retry = RetryPolicy(stack.clock, max_attempts=4, max_seconds=300.0, rand=lambda: 0.5)
        plain = HttpClient(session, timeout=(3.0, 20.0), ca_bundle=str(fusion.ca_path), retry=retry)
        scope, credentials = fusion.scope, StaticCredentials(CREDENTIALS)
        tokens = TokenProvider(
            plain,
            idcs_url=fusion.idcs_url,
            scope=scope,
            grant="password",
            credentials=credentials,
            clock=stack.clock,
        )
        bearer = Bearer(tokens, fusion.base_url)
        http = HttpClient(
            session, timeout=(3.0, 20.0), ca_bundle=str(fusion.ca_path), retry=retry, bearer=bearer
        )
        job = stack.finished_job()
        yield stack, Fetch(http, job, stack.client.output_files(job)[0])


class Fetch:
    def __init__(self, http: HttpClient, job: str, archive: OutputFile) -> None:
        self.http, self.job, self.archive = http, job, archive

    def __call__(
        self, start: int = 0, version: SourceVersion | None = None, connections: int = 4
    ) -> ParallelDownload:
        return ParallelDownload(
            self.http,
            self.archive,
            CHUNK,
            start=start,
            version=version,
            connections=connections,
            segment=SEGMENT,
            least=1024 * 1024,
        )


def reading_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("download")]


def served_ranges(stack: FusionStack) -> list[tuple[int, int, int]]:
    """(first byte, last byte, status) of each download request, in the order they were answered."""
    found = []
    for served in stack.to_fusion("/content"):
        asked = served.headers.get("range", "bytes=0-").removeprefix("bytes=")
        first, _, last = asked.partition("-")
        found.append((int(first), int(last) if last else -1, served.status))
    return found


def planned(size: int, start: int = 0, *, version_known: bool = False) -> list[tuple[int, int]]:
    """(first byte, last byte) of each range a download from `start` asks for: one chunk alone until the
    version is known, then SEGMENT bytes each; the file's last range is asked for open-ended (-1)."""
    ranges = [] if version_known else [(start, start + CHUNK - 1)]
    begins = range(start if version_known else start + CHUNK, size, SEGMENT)
    return ranges + [(begin, begin + SEGMENT - 1 if begin + SEGMENT < size else -1) for begin in begins]


def test_ranges_are_read_at_once_and_delivered_in_the_files_order_each_byte_once(tmp_path: Path) -> None:
    # Given an archive of about 4.8 MB, read in ranges of 256 KiB over four connections
    with downloading(tmp_path) as (stack, fetch):
        archive = fetch.archive

        # When it is downloaded
        data = b"".join(fetch())

        # Then the bytes are the file's, in order
        assert hashlib.sha256(data).hexdigest() == archive.sha256 and len(data) == archive.size
        # And every range was asked for once, the first alone (it names the version), the rest consecutive
        ranges = served_ranges(stack)
        assert ranges[0] == (0, CHUNK - 1, 206)
        assert sorted((first, last) for first, last, _ in ranges) == planned(archive.size)
        assert all(status == 206 for _, _, status in ranges)
        # And every later range was conditional on the first answer's version
        etags = {served.headers.get("if-match") for served in stack.to_fusion("/content")[1:]}
        assert len(etags) == 1 and None not in etags
        # And no reading thread is left behind
        assert not reading_threads()


def test_a_resumed_download_reads_from_its_offset_in_parallel_at_once(tmp_path: Path) -> None:
    # Given the version known from an earlier invocation, and 1,000,000 bytes already fetched
    with downloading(tmp_path) as (stack, fetch):
        whole = b"".join(fetch(connections=1))
        version = SourceVersion()
        first = fetch(connections=1, version=version)
        next(first)
        first.close()
        before = len(stack.to_fusion("/content"))

        # When the download goes on from there
        rest = b"".join(fetch(1_000_000, version))

        # Then it delivers exactly the rest, in ranges from the offset on, each asked for of that version
        assert rest == whole[1_000_000:]
        ranges = served_ranges(stack)[before:]
        assert sorted((first, last) for first, last, _ in ranges) == planned(
            len(whole), 1_000_000, version_known=True
        )
        assert {served.headers.get("if-match") for served in stack.to_fusion("/content")[before:]} == {
            version.etag
        }


def test_each_range_resumes_after_its_connection_drops(tmp_path: Path) -> None:
    # Given a Fusion that cuts each download after 100,000 bytes, three times
    scenario = ExtractScenario(
        chunks=1,
        rows_per_chunk=20_000,
        compress_level=0,
        drop_download_after_bytes=100_000,
        drop_download_times=3,
    )
    with downloading(tmp_path, scenario) as (stack, fetch):
        # When it is downloaded in parallel ranges
        data = b"".join(fetch())

        # Then the bytes are the file's: a cut range went on from where it stopped, inside its range
        assert hashlib.sha256(data).hexdigest() == fetch.archive.sha256
        ranges = served_ranges(stack)
        plan = planned(fetch.archive.size)
        assert all(any(begin <= first and last == end for begin, end in plan) for first, last, _ in ranges)
        assert {(first, last) for first, last, _ in ranges} > set(plan)  # and some were resumed inside theirs


def test_a_server_that_ignores_range_sends_the_whole_file_once_for_the_first_range(tmp_path: Path) -> None:
    # Given a Fusion that answers every download with the whole file
    scenario = ExtractScenario(chunks=1, rows_per_chunk=20_000, compress_level=0, ignore_range=True)
    with downloading(tmp_path, scenario) as (stack, fetch):
        # When it is downloaded in parallel ranges
        data = b"".join(fetch())

        # Then that one answer is the file: nothing else asked for, no byte twice
        assert hashlib.sha256(data).hexdigest() == fetch.archive.sha256
        assert [served.status for served in stack.to_fusion("/content")] == [200]


def test_a_file_that_changes_under_a_parallel_download_is_refused_never_joined(tmp_path: Path) -> None:
    # Given a parallel download under way, its first 256 KiB delivered
    with downloading(tmp_path) as (stack, fetch):
        chunks = fetch()
        head = b"".join(islice(chunks, SEGMENT // CHUNK))
        assert len(head) == SEGMENT

        # When the file changes in place
        stack.fusion.revise_output(fetch.job, fetch.archive.name)

        # Then the download fails as a changed file before a byte of another version is delivered
        with pytest.raises(IntegrityError, match="changed since its download began"):
            for _ in chunks:
                pass
        assert 412 in [served.status for served in stack.to_fusion("/content")]


def test_closing_a_download_early_stops_its_reads_in_flight(tmp_path: Path) -> None:
    # Given a parallel download of which one chunk was taken
    with downloading(tmp_path) as (stack, fetch):
        chunks = fetch()
        next(chunks)

        # When the consumer is done with it (an invocation's budget spent)
        chunks.close()

        # Then no reading thread is left running, and no more ranges were asked for than the window holds
        assert not reading_threads()
        assert len(stack.to_fusion("/content")) <= 1 + 4


def test_a_settled_download_ends_at_the_boundary_past_the_ranges_asked_for_and_drops_no_byte(
    tmp_path: Path,
) -> None:
    # Given a parallel download whose first range (one chunk) and the first chunk of the next were taken:
    # four ranges of 256 KiB are asked for by then
    with downloading(tmp_path) as (stack, fetch):
        chunks = fetch()
        head = b"".join(islice(chunks, 2))
        asked = CHUNK + 4 * SEGMENT

        # When the consumer asks it to settle at a boundary of 300,000 bytes (an invocation's budget spent)
        chunks.settle(300_000)
        data = head + b"".join(chunks)

        # Then it delivered every byte asked for, up to the first boundary past them, and ended there
        end = -(-asked // 300_000) * 300_000
        assert len(data) == end
        whole = b"".join(fetch(connections=1))
        assert data == whole[:end]
        # And Fusion sent exactly those bytes before the whole read: none was cut off and lost
        assert stack.fusion.bytes_sent(fetch.archive.name) == end + len(whole)
        assert not reading_threads()


def test_a_file_of_two_segments_is_read_over_several_connections_by_default(tmp_path: Path) -> None:
    # Given an archive of about 11 MB: past two default segments (4 MiB each), under the 16 MiB once needed
    scenario = ExtractScenario(chunks=1, rows_per_chunk=45_000, compress_level=0)
    with downloading(tmp_path, scenario) as (stack, fetch):
        archive = fetch.archive
        assert 2 * DEFAULT_SEGMENT <= archive.size < 16 * 2**20

        # When it is downloaded with the defaults
        data = b"".join(ParallelDownload(fetch.http, archive))

        # Then it came whole, over a first range that pins the version and one range per segment after it,
        # so that a connection's cap is not the ceiling
        assert hashlib.sha256(data).hexdigest() == archive.sha256
        ranges = served_ranges(stack)
        assert len(ranges) == 1 + -(-(archive.size - CHUNK_SIZE) // DEFAULT_SEGMENT), ranges
