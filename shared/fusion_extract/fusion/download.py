"""Downloading one output file: a bounded-memory stream that resumes with Range after a dropped connection.

Each connection is opened (and its first chunk read) under the retry policy, so every stretch of streaming
makes progress, and progress is bounded by the file's size: a download always ends.

A resume trusts nothing it is not told: an answer that is not 206 with a Content-Range starting where we
stopped is refused (a 200, the whole file again, is RangeIgnoredError: the caller decides whether one whole
read is worth it, instead of every resume costing the bytes already had). Every request after the first
answer is conditional on the version that answer named (If-Match on a strong ETag, else
If-Unmodified-Since on Last-Modified), and every answer's ETag / Last-Modified is compared with it: a file
that changed under the download is an IntegrityError, never two versions joined. A server that names no
version cannot be checked this way (the size and the listed SHA-256 still are).

A large file is read over several ranged requests at once (`ParallelDownload`), delivered in order.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from functools import partial

import requests

from fusion_extract.errors import FusionExtractError, IntegrityError, RangeIgnoredError, TransientError
from fusion_extract.fusion.http import HttpClient, Rejection, fusion_error
from fusion_extract.models import OutputFile, SourceVersion

logger = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024  # a dropped connection loses at most the chunk in flight; resume starts after it
CONNECTIONS = 4  # ranged requests at once for a large file
SEGMENT = 4 * 2**20  # the bytes of each: what one request holds until its turn in the file's order comes
# A smaller file is read in one stream: it comes about as fast as the other connections take to open. From
# two segments on, a connection's cap is the ceiling (`make bench` at 5 MB/s per connection: an archive of 15
# MB took 3.2 s in one stream).
PARALLEL_FROM = 2 * SEGMENT
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_STREAM_BROKEN = (requests.exceptions.ChunkedEncodingError, requests.ConnectionError, requests.Timeout)


def download(
    http: HttpClient,
    file: OutputFile,
    chunk_size: int = CHUNK_SIZE,
    *,
    start: int = 0,
    end: int | None = None,
    version: SourceVersion | None = None,
) -> Generator[bytes, None, None]:
    """The file's bytes from `start` to `end` (default: its size) in chunks; after a drop, resume from the
    bytes received so far.

    Each connection is opened (and its first chunk read) under the retry policy, so every stretch of
    streaming makes progress; progress is bounded by the size, so this ends. IntegrityError when the
    stream stays short of `end` or runs past it, or the file is no longer `version` (an empty one is
    filled in from the first answer); RangeIgnoredError when a resume is answered with the whole file.
    A range from byte 0 answered with the whole file (200) is taken whole: `end` becomes the size.
    """
    end = file.size if end is None else end
    if not 0 <= start <= end <= file.size:
        raise IntegrityError(f"{file.name}: cannot read bytes {start} to {end} of {file.size}")
    version = version if version is not None else SourceVersion()
    received = start
    backoff = http.retry.start()
    while received < end or received == 0:
        try:
            opening = partial(_open_at, http, file, received, end, chunk_size, version)
            response, chunks, first = http.retry.call(opening, backoff=backoff)
        except TransientError as exc:
            raise _truncated(file, received, end, str(exc)) from exc
        if response.status_code == 200:
            end = file.size  # the whole file, asked for or not (a range from 0 that the server ignored)
        try:
            chunk: bytes | None = first
            while chunk is not None:
                received += len(chunk)
                if received > end:
                    raise IntegrityError(f"{file.name}: more bytes than {_asked(file, end)}")
                yield chunk
                chunk = next(chunks, None)
        except _STREAM_BROKEN as exc:
            logger.warning(
                "download interrupted",
                extra={
                    "file": file.name,
                    "received": received,
                    "size": file.size,
                    "reason": type(exc).__name__,
                },
            )
            backoff = http.retry.start()  # the try that made progress opens a fresh budget
            if not backoff.wait():
                dropped = f"the connection dropped ({type(exc).__name__})"
                raise _truncated(file, received, end, dropped) from exc
        finally:
            response.close()
        if file.size == 0:
            return


class ParallelDownload(Iterator[bytes]):
    """`download`'s bytes, in order, read as consecutive ranges of `segment` bytes over up to `connections`
    requests at once, so that a cap per connection is not the ceiling (Oracle's advice for large output).

    At most `connections` ranges are held at a time, the one being delivered included (the reorder window:
    `connections` x `segment` bytes). Each is a `download` of its own, resumed after a drop and conditional
    on the version named by the answer to a first range of one chunk. A file under `least` bytes, a
    server that names no version (ranges of two versions could not be told apart), or one that answers the
    first range with the whole file: read in one stream, as `download` reads it.

    `settle(boundary)` asks the stream to end soon without dropping what Fusion is sending: no range is
    asked for past the first multiple of `boundary` at or after the bytes already asked for (in one stream:
    delivered), and the stream ends there. The ranges in flight are delivered, not cut off, so the next
    invocation's download starts where this one ended and Fusion serves each byte once.
    """

    def __init__(
        self,
        http: HttpClient,
        file: OutputFile,
        chunk_size: int = CHUNK_SIZE,
        *,
        start: int = 0,
        version: SourceVersion | None = None,
        connections: int = CONNECTIONS,
        segment: int = SEGMENT,
        least: int = PARALLEL_FROM,
    ) -> None:
        self._file = file
        self._version = version if version is not None else SourceVersion()
        self._whole = partial(download, http, file, chunk_size, version=self._version)
        self._asked = self._delivered = start  # the end of the ranges asked for; of the bytes delivered
        self._end = file.size  # where the stream ends: lowered by `settle`
        parallel = connections >= 2 and file.size >= least  # the rest of a large file too: it can settle
        self._chunks = self._ranges(start, chunk_size, connections, segment) if parallel else self._one(start)

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        """Done with it: the reads in flight end now (and their connections are released)."""
        self._chunks.close()

    def end_at(self, offset: int) -> None:
        """End at `offset`, before any byte past it was asked for (the rest is had already)."""
        if offset < max(self._asked, self._delivered):
            raise ValueError(f"{self._file.name}: bytes past {offset} were asked for already")
        self._end = min(self._end, offset)

    def settle(self, boundary: int) -> bool:
        """End at the first multiple of `boundary` at or after the bytes on their way (True: it will)."""
        on_the_way = max(self._asked, self._delivered)
        self._end = min(self._end, -(-on_the_way // boundary) * boundary)
        return True

    def _one(self, start: int) -> Generator[bytes, None, None]:
        """From `start` in one stream, up to the end (`end_at`'s; `settle` may bring it closer meanwhile)."""
        with closing(self._whole(start=start, end=self._end)) as chunks:
            for chunk in chunks:
                chunk = chunk[: self._end - self._delivered]
                self._delivered += len(chunk)
                if chunk:
                    yield chunk
                if self._delivered >= self._end:
                    return

    def _ranges(
        self, start: int, chunk_size: int, connections: int, segment: int
    ) -> Generator[bytes, None, None]:
        version, size = self._version, self._file.size
        if version.etag is None and version.last_modified is None:
            # A first range of one chunk pins the version: the others wait for it one round trip, not a range.
            self._asked = min(start + chunk_size, size)
            for chunk in self._whole(start=start, end=self._asked):
                self._delivered += len(chunk)
                yield chunk
            if self._delivered == size:  # the server sent the whole file for the first range
                return
            self._asked = self._delivered
            if version.etag is None and version.last_modified is None:
                yield from self._one(self._delivered)
                return
        yield from self._in_order(segment, connections)

    def _in_order(self, segment: int, connections: int) -> Generator[bytes, None, None]:
        """Ranges from the bytes asked for on, `connections` at a time, each delivered whole and in order."""
        stopping = threading.Event()

        def read(begin: int, end: int) -> list[bytes]:
            held: list[bytes] = []
            with closing(self._whole(start=begin, end=end)) as chunks:
                for chunk in chunks:
                    if stopping.is_set():
                        break
                    held.append(chunk)
            return held

        ahead: deque[Future[list[bytes]]] = deque()
        with ThreadPoolExecutor(connections, thread_name_prefix="download") as pool:
            try:
                while True:
                    while len(ahead) < connections and self._asked < self._end:
                        begin, self._asked = self._asked, min(self._asked + segment, self._end)
                        ahead.append(pool.submit(read, begin, self._asked))
                    if not ahead:
                        return
                    chunks = ahead.popleft().result()
                    for chunk in chunks:
                        self._delivered += len(chunk)
                        yield chunk
                    del chunks  # delivered: its room in the window goes to the next range
            finally:  # stopped early (an error, or the consumer is done): the reads in flight end now
                stopping.set()
                for future in ahead:
                    future.cancel()


def _open_at(
    http: HttpClient, file: OutputFile, offset: int, end: int, chunk_size: int, version: SourceVersion
) -> tuple[requests.Response, Iterator[bytes], bytes | None]:
    """A response streaming the file from `offset` up to `end`, and its first new chunk (None: the file
    is empty).

    TransientError when no byte arrives (a drop, a short stream): the caller's retry policy decides.
    """
    headers = {"Accept-Encoding": "identity", **_conditions(version)}  # offsets must be the file's
    if end < file.size:
        headers["Range"] = f"bytes={offset}-{end - 1}"
    elif offset:
        headers["Range"] = f"bytes={offset}-"
    errors = partial(_changed_or_refused, file)
    response = http.request(
        "GET", file.url, headers=headers, stream=True, follow_redirects=True, errors=errors
    )
    try:
        _same_version(response, file, version)
        _check_range(response, file, offset, end)
        chunks = response.iter_content(chunk_size)
        first = next(chunks, None)
    except _STREAM_BROKEN as exc:
        response.close()
        raise TransientError(f"the connection dropped ({type(exc).__name__})") from exc
    except BaseException:
        response.close()
        raise
    if first is None and offset < end:
        response.close()
        raise TransientError("the stream ended early")
    return response, chunks, first


def _truncated(file: OutputFile, received: int, end: int, problem: str) -> IntegrityError:
    of = f"{file.size} bytes" if end == file.size else f"the bytes up to {end}"
    return IntegrityError(f"{file.name} truncated: received {received} of {of} ({problem})")


def _asked(file: OutputFile, end: int) -> str:
    return f"the listed {file.size}" if end == file.size else f"the range up to byte {end} asked for"


def _conditions(version: SourceVersion) -> dict[str, str]:
    """Headers that make a request answer 412 unless the file is still `version`."""
    if version.etag is not None and not version.etag.startswith("W/"):  # If-Match compares strongly
        return {"If-Match": version.etag}
    if version.last_modified is not None:
        return {"If-Unmodified-Since": version.last_modified}
    return {}


def _changed_or_refused(file: OutputFile, rejection: Rejection) -> FusionExtractError:
    if rejection.status == 412:
        return _changed(file, "the server says it is not the version the download began with (412)")
    return fusion_error(rejection)


def _same_version(response: requests.Response, file: OutputFile, version: SourceVersion) -> None:
    """The first answer pins the version; every later one must name the same (or none)."""
    etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
    if version.etag is None and version.last_modified is None:
        version.etag, version.last_modified = etag, modified
    elif version.etag is not None and etag is not None:
        if etag.removeprefix("W/") != version.etag.removeprefix("W/"):
            raise _changed(file, f"its ETag is {etag}, not {version.etag}")
    elif version.last_modified is not None and modified is not None and modified != version.last_modified:
        raise _changed(file, f"it was modified {modified}, not {version.last_modified}")


def _changed(file: OutputFile, detail: str) -> IntegrityError:
    return IntegrityError(f"{file.name} changed since its download began: {detail}")


def _check_range(response: requests.Response, file: OutputFile, received: int, end: int) -> None:
    """A resume's answer must be the rest asked for: 206, from the byte where we stopped (a range from
    byte 0 may be answered with the whole file: nothing is read twice)."""
    if received == 0 and (end == file.size or response.status_code == 200):
        return
    if response.status_code == 200:
        raise RangeIgnoredError(
            f"{file.name}: asked for the bytes from {received}, the server sent the whole file (200)"
        )
    header = response.headers.get("Content-Range", "")
    match = _CONTENT_RANGE.match(header)
    if response.status_code != 206 or match is None:
        raise IntegrityError(f"{file.name}: resume got {response.status_code} with Content-Range {header!r}")
    start, total = int(match.group(1)), match.group(3)
    if start != received or (total != "*" and int(total) != file.size):
        raise IntegrityError(f"{file.name}: resume from byte {received} got Content-Range {header!r}")
