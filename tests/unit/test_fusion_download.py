"""Downloads stream in bounded chunks and resume with Range after a dropped connection."""

from __future__ import annotations

import pytest
import responses

from fusion_extract.errors import IntegrityError, RangeIgnoredError, UnsafeInputError
from fusion_extract.models import OutputFile
from tests.unit.fusion_support import FILES, DroppingBody, add_token, stack

URL = FILES + "/44046/outputFiles/part_1.zip/content"
CHUNK = 64 * 1024
CONTENT = bytes(range(256)) * 4096  # 1 MiB


class FileServer:
    """Fusion's content endpoint for one file: honours `Range: bytes=N-` with 206 and Content-Range,
    and breaks the connection after the planned number of bytes on each request."""

    def __init__(self, content: bytes, *, drops: list[int] | None = None, honour_range: bool = True) -> None:
        self.content = content
        self.drops = list(drops or [])
        self.honour_range = honour_range
        self.ranges: list[str | None] = []
        self.encodings: list[str | None] = []

    def __call__(self, request):
        requested = request.headers.get("Range")
        self.ranges.append(requested)
        self.encodings.append(request.headers.get("Accept-Encoding"))
        start, status, headers = 0, 200, {}
        if requested and self.honour_range:
            start, status = int(requested.removeprefix("bytes=").removesuffix("-")), 206
            headers["Content-Range"] = f"bytes {start}-{len(self.content) - 1}/{len(self.content)}"
        body = self.content[start:]
        drop_after = self.drops.pop(0) if self.drops else len(body)
        headers["Content-Length"] = str(len(body))
        return status, headers, DroppingBody(body, drop_after).as_body()


@pytest.fixture
def fake():
    with responses.RequestsMock() as mock:
        add_token(mock)
        yield mock


def listed(size: int = len(CONTENT), url: str = URL) -> OutputFile:
    return OutputFile("part_1.zip", size, None, url)


def serve(fake, server: FileServer) -> FileServer:
    fake.add_callback(responses.GET, URL, callback=server)
    return server


def test_download_streams_the_file_in_bounded_chunks(fake):
    # Given a 1 MiB file
    server = serve(fake, FileServer(CONTENT))

    # When it is downloaded with 64 KiB chunks
    chunks = list(stack(chunk_size=CHUNK).batch.download(listed()))

    # Then it arrives whole, never more than one chunk at a time, uncompressed on the wire
    assert b"".join(chunks) == CONTENT
    assert max(len(chunk) for chunk in chunks) <= CHUNK
    assert server.ranges == [None]
    assert server.encodings == ["identity"]


def test_download_after_dropped_connection_resumes_from_bytes_received(fake):
    # Given the connection drops after 200,000 bytes (three whole 64 KiB chunks got through)
    server = serve(fake, FileServer(CONTENT, drops=[200_000]))
    client = stack(chunk_size=CHUNK)

    # When the file is downloaded
    data = b"".join(client.batch.download(listed()))

    # Then the second request asked for the rest only, and the bytes are exactly the file
    assert server.ranges == [None, f"bytes={3 * CHUNK}-"]
    assert data == CONTENT
    assert client.clock.sleeps == [0.5]


def test_download_when_server_ignores_range_refuses_the_resume_instead_of_reading_everything_again(fake):
    # Given a server that answers every request with the whole file, and drops the first after 200,000 bytes
    server = serve(fake, FileServer(CONTENT, drops=[200_000], honour_range=False))
    received: list[bytes] = []

    # When the file is downloaded, Then the resume's whole-file answer is refused, unread, by its own error
    with pytest.raises(RangeIgnoredError, match=f"from {3 * CHUNK}, the server sent the whole file"):
        for chunk in stack(chunk_size=CHUNK).batch.download(listed()):
            received.append(chunk)

    assert server.ranges == [None, f"bytes={3 * CHUNK}-"]
    assert b"".join(received) == CONTENT[: 3 * CHUNK]


def test_download_each_resume_that_makes_progress_earns_a_fresh_budget(fake):
    # Given a link that drops every 150,000 bytes: 7 requests, more than the 4 attempts of one budget
    serve(fake, FileServer(CONTENT, drops=[150_000] * 6))

    # When the file is downloaded
    data = b"".join(stack(chunk_size=CHUNK, max_attempts=4).batch.download(listed()))

    # Then it completes, because every try moved forward
    assert data == CONTENT


def test_download_without_progress_raises_truncated_after_retries(fake):
    # Given a connection that drops after 200,000 bytes, then before any byte every time;
    # the try that made progress opens a budget of 3 tries
    server = serve(fake, FileServer(CONTENT, drops=[200_000] + [0] * 10))
    client = stack(chunk_size=CHUNK, max_attempts=3)

    # When the file is downloaded
    with pytest.raises(IntegrityError) as caught:
        b"".join(client.batch.download(listed()))

    # Then after the budget of tries without progress, it reports the truncation
    assert str(caught.value) == (
        f"part_1.zip truncated: received {3 * CHUNK} of {len(CONTENT)} bytes "
        "(the connection dropped (ChunkedEncodingError))"
    )
    assert len(server.ranges) == 3
    assert client.clock.sleeps == [0.5, 1.0]


def test_download_stream_that_ends_quietly_short_raises_truncated(fake):
    # Given a server that sends only the first half and closes cleanly (no Content-Length), then answers
    # each resume with the range asked for and no byte of it
    half = CONTENT[: len(CONTENT) // 2]
    fake.add(responses.GET, URL, body=half)
    rest = {"Content-Range": f"bytes {len(half)}-{len(CONTENT) - 1}/{len(CONTENT)}"}
    for _ in range(3):
        fake.add(responses.GET, URL, body=b"", status=206, headers=rest)

    # When the file is downloaded
    with pytest.raises(
        IntegrityError, match=r"truncated: received 524288 of 1048576 bytes \(the stream ended early\)"
    ):
        b"".join(stack(chunk_size=CHUNK, max_attempts=3).batch.download(listed()))


def test_download_longer_than_listed_raises_integrity_error(fake):
    serve(fake, FileServer(CONTENT))

    with pytest.raises(IntegrityError, match="more bytes than the listed 1000"):
        b"".join(stack(chunk_size=CHUNK).batch.download(listed(size=1000)))


def test_download_resume_with_mismatched_content_range_raises(fake):
    # Given a resume answered with a range that starts at the wrong byte
    fake.add_callback(responses.GET, URL, callback=FileServer(CONTENT, drops=[200_000]))
    fake.add(
        responses.GET,
        URL,
        status=206,
        headers={"Content-Range": f"bytes 0-99/{len(CONTENT)}"},
        body=b"x" * 100,
    )

    with pytest.raises(
        IntegrityError, match="resume from byte 196608 got Content-Range 'bytes 0-99/1048576'"
    ):
        b"".join(stack(chunk_size=CHUNK).batch.download(listed()))


def test_download_of_empty_file_yields_nothing(fake):
    serve(fake, FileServer(b""))

    assert b"".join(stack().batch.download(listed(size=0))) == b""


def test_download_link_off_the_fusion_api_sends_nothing():
    foreign = listed(url="https://evil.example.com/api/saas-batch/part_1.zip/content")

    with responses.RequestsMock() as fake, pytest.raises(UnsafeInputError, match="not on the Fusion host"):
        list(stack().batch.download(foreign))

    assert len(fake.calls) == 0


def test_download_abandoned_midway_closes_the_response(fake):
    # Given a download the consumer stops reading after the first chunk
    serve(fake, FileServer(CONTENT))
    stream = stack(chunk_size=CHUNK).batch.download(listed())
    next(stream)

    # When the consumer closes the stream, Then the generator ends cleanly (no further requests)
    stream.close()
    assert [call.request.url for call in fake.calls].count(URL) == 1
