"""The seams the chain's steps depend on. Adapters implement them; steps take them as arguments."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fusion_extract.models import ExtractRequest, FusionCredentials, JobStatus, OutputFile, SourceVersion


class CredentialSource(Protocol):
    def credentials(self) -> FusionCredentials: ...


class FusionApi(Protocol):
    def submit(self, request: ExtractRequest, run_token: str, *, resume: bool = False) -> str:
        """Submit once per run token; `resume` looks for the token's job first. Returns the job id."""
        ...

    def job_status(self, job_id: str) -> JobStatus: ...

    def output_files(self, job_id: str) -> list[OutputFile]:
        """Every output file of the job, all pages."""
        ...

    def download(
        self, file: OutputFile, start: int = 0, version: SourceVersion | None = None
    ) -> Iterator[bytes]:
        """The file's bytes from `start` as a bounded-memory stream, resuming with Range after a dropped
        connection; pinned to `version` (filled in from the first answer when empty)."""
        ...


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int
    etag: str
    md5: str | None = None  # base64 MD5 (opc-content-md5); multipart objects carry '<b64>-<parts>'


class ObjectStore(Protocol):
    """One bucket."""

    def get_bytes(self, name: str) -> tuple[bytes, str]:
        """Small object content and its ETag. NotFoundError if absent."""
        ...

    def open(self, name: str) -> Iterator[bytes]:
        """Stream a (possibly large) object. NotFoundError if absent."""
        ...

    def read_range(self, name: str, start: int, end: int, *, if_match: str | None = None) -> Iterator[bytes]:
        """Bytes [start, end) of an object, streamed. NotFoundError if absent; ConflictError when
        `if_match` is given and the object's ETag is another."""
        ...

    def head(self, name: str) -> ObjectInfo | None: ...

    def put_bytes(
        self,
        name: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        content_type: str = "application/octet-stream",
    ) -> str:
        """Write a small object; returns the new ETag. ConflictError when a condition fails."""
        ...

    def put_whole(
        self, name: str, data: bytes | memoryview, *, content_type: str = "application/octet-stream"
    ) -> ObjectInfo:
        """Write an object held whole in one request; what the answer says of it (no look-up after).
        `data` is read only until this returns (its buffer is then filled again)."""
        ...

    def upload_stream(
        self, name: str, chunks: Iterable[bytes], *, content_type: str = "application/octet-stream"
    ) -> ObjectInfo:
        """Upload a stream of unknown length with bounded memory (multipart)."""
        ...

    # A multipart upload whose parts the caller keeps, so that it can go on in another invocation.
    def start_upload(self, name: str, *, content_type: str = "application/octet-stream") -> str:
        """A new multipart upload of `name`; its upload id."""
        ...

    def upload_part(self, name: str, upload_id: str, number: int, data: bytes | memoryview) -> str:
        """Upload part `number` (again, if need be: the last upload of a number wins); its ETag. `data` is
        read only until this returns (its buffer is then filled again)."""
        ...

    def commit_upload(
        self, name: str, upload_id: str, parts: Sequence[tuple[int, str]], size: int
    ) -> ObjectInfo:
        """The object made of `parts` ((number, ETag), in order), `size` bytes in all."""
        ...

    def promote(self, source: str, target: str, staged: ObjectInfo | None = None) -> None:
        """Make a staged object visible under its final name; never overwrites a different object.

        `staged`: what uploading `source` returned, if the caller has it (spares a lookup).
        """
        ...

    def delete(self, name: str, *, if_match: str | None = None) -> None: ...

    def list(self, prefix: str, *, start: str | None = None) -> Iterator[ObjectInfo]:
        """Every object under the prefix (from `start` on, if given), all pages, in name order."""
        ...

    def abort_uploads(self, prefix: str) -> int:
        """Abort every unfinished multipart upload of an object under the prefix; how many."""
        ...


class Publisher(Protocol):
    def publish(self, topic_id: str, message: Mapping[str, Any]) -> str:
        """Publish one JSON message; returns the message id."""
        ...

    def publish_text(self, topic_id: str, title: str, body: str) -> str:
        """Publish a message for people (the alerts topic): a title and a text body."""
        ...


class Metrics(Protocol):
    """Custom metrics: recorded during a step, posted at its end; never a reason for a step to fail."""

    def record(self, name: str, value: float, **dimensions: str) -> None: ...

    def flush(self) -> None: ...


class NoMetrics:
    """Metrics that go nowhere (no compartment configured; tests of other things)."""

    def record(self, name: str, value: float, **dimensions: str) -> None:
        pass

    def flush(self) -> None:
        pass
