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
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator, Iterator
from functools import partial

import requests

from fusion_extract.errors import FusionExtractError, IntegrityError, RangeIgnoredError, TransientError
from fusion_extract.fusion.http import HttpClient, Rejection, fusion_error
from fusion_extract.models import OutputFile, SourceVersion

logger = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024  # a dropped connection loses at most the chunk in flight; resume starts after it
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_STREAM_BROKEN = (requests.exceptions.ChunkedEncodingError, requests.ConnectionError, requests.Timeout)


def download(
    http: HttpClient,
    file: OutputFile,
    chunk_size: int = CHUNK_SIZE,
    *,
    start: int = 0,
    version: SourceVersion | None = None,
) -> Generator[bytes, None, None]:
    """The file's bytes from `start` in chunks; after a drop, resume from the bytes received so far.

    Each connection is opened (and its first chunk read) under the retry policy, so every stretch of
    streaming makes progress; progress is bounded by the size, so this ends. IntegrityError when the
    stream stays short of `file.size` or runs past it, or the file is no longer `version` (an empty one is
    filled in from the first answer); RangeIgnoredError when a resume is answered with the whole file.
    """
    if not 0 <= start <= file.size:
        raise IntegrityError(f"{file.name}: cannot start at byte {start} of {file.size}")
    version = version if version is not None else SourceVersion()
    received = start
    backoff = http.retry.start()
    while received < file.size or received == 0:
        try:
            opening = partial(_open_at, http, file, received, chunk_size, version)
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
    http: HttpClient, file: OutputFile, offset: int, chunk_size: int, version: SourceVersion
) -> tuple[requests.Response, Iterator[bytes], bytes | None]:
    """A response streaming the file from `offset`, and its first new chunk (None: the file is empty).

    TransientError when no byte arrives (a drop, a short stream): the caller's retry policy decides.
    """
    headers = {"Accept-Encoding": "identity", **_conditions(version)}  # offsets must be the file's
    if offset:
        headers["Range"] = f"bytes={offset}-"
    errors = partial(_changed_or_refused, file)
    response = http.request(
        "GET", file.url, headers=headers, stream=True, follow_redirects=True, errors=errors
    )
    try:
        _same_version(response, file, version)
        _check_range(response, file, offset)
        chunks = response.iter_content(chunk_size)
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


def _check_range(response: requests.Response, file: OutputFile, received: int) -> None:
    """A resume's answer must be the rest of the file: 206, from the byte where we stopped."""
    if received == 0:
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
