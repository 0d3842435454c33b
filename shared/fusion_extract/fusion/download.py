"""Downloading one output file: a bounded-memory stream that resumes with Range after a dropped connection.

Each connection is opened (and its first chunk read) under the retry policy, so every stretch of streaming
makes progress, and progress is bounded by the file's size: a download always ends. A server that ignores
Range is tolerated (the bytes already received are skipped); a Content-Range that does not continue where we
stopped is refused.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator, Iterator
from functools import partial

import requests

from fusion_extract.errors import IntegrityError, TransientError
from fusion_extract.fusion.http import HttpClient
from fusion_extract.models import OutputFile

logger = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024  # a dropped connection loses at most the chunk in flight; resume starts after it
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_STREAM_BROKEN = (requests.exceptions.ChunkedEncodingError, requests.ConnectionError, requests.Timeout)


def download(
    http: HttpClient, file: OutputFile, chunk_size: int = CHUNK_SIZE, *, start: int = 0
) -> Generator[bytes, None, None]:
    """The file's bytes from `start` in chunks; after a drop, resume from the bytes received so far.

    Each connection is opened (and its first chunk read) under the retry policy, so every stretch of
    streaming makes progress; progress is bounded by the size, so this ends. IntegrityError when the
    stream stays short of `file.size` or runs past it.
    """
    if not 0 <= start <= file.size:
        raise IntegrityError(f"{file.name}: cannot start at byte {start} of {file.size}")
    received = start
    backoff = http.retry.start()
    while received < file.size or received == 0:
        try:
            opening = partial(_open_at, http, file, received, chunk_size)
            response, chunks, first = http.retry.call(opening, backoff=backoff)
        except TransientError as exc:
            raise _truncated(file, received, str(exc)) from exc
        try:
            chunk: bytes | None = first
            while chunk is not None:
                received += len(chunk)
                if received > file.size:
                    raise IntegrityError(f"{file.name}: more bytes than the listed {file.size}")
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
                raise _truncated(file, received, f"the connection dropped ({type(exc).__name__})") from exc
        finally:
            response.close()
        if file.size == 0:
            return


def _open_at(
    http: HttpClient, file: OutputFile, offset: int, chunk_size: int
) -> tuple[requests.Response, Iterator[bytes], bytes | None]:
    """A response streaming the file from `offset`, and its first new chunk (None: the file is empty).

    TransientError when no byte arrives (a drop, a short stream): the caller's retry policy decides.
    """
    headers = {"Accept-Encoding": "identity"}  # byte offsets must be offsets in the file
    if offset:
        headers["Range"] = f"bytes={offset}-"
    response = http.request("GET", file.url, headers=headers, stream=True, follow_redirects=True)
    try:
        skip = _resume_skip(response, file, offset)
        chunks = _skipping(response.iter_content(chunk_size), skip)
        first = next(chunks, None)
    except _STREAM_BROKEN as exc:
        response.close()
        raise TransientError(f"the connection dropped ({type(exc).__name__})") from exc
    except BaseException:
        response.close()
        raise
    if first is None and offset < file.size:
        response.close()
        raise TransientError("the stream ended early")
    return response, chunks, first


def _truncated(file: OutputFile, received: int, problem: str) -> IntegrityError:
    return IntegrityError(f"{file.name} truncated: received {received} of {file.size} bytes ({problem})")


def _skipping(chunks: Iterator[bytes], skip: int) -> Iterator[bytes]:
    """The chunks without their first `skip` bytes (a server that ignored Range sends them again)."""
    for chunk in chunks:
        if skip:
            chunk, skip = chunk[skip:], max(0, skip - len(chunk))
        if chunk:
            yield chunk


def _resume_skip(response: requests.Response, file: OutputFile, received: int) -> int:
    """How many leading bytes of this response we already have."""
    if received == 0:
        return 0
    if response.status_code == 200:
        return received  # Range ignored: the whole file again
    header = response.headers.get("Content-Range", "")
    match = _CONTENT_RANGE.match(header)
    if response.status_code != 206 or match is None:
        raise IntegrityError(f"{file.name}: resume got {response.status_code} with Content-Range {header!r}")
    start, total = int(match.group(1)), match.group(3)
    if start != received or (total != "*" and int(total) != file.size):
        raise IntegrityError(f"{file.name}: resume from byte {received} got Content-Range {header!r}")
    return 0
