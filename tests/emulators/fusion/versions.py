"""A file's version as HTTP names it, and the conditional requests that depend on it (RFC 9110, 13.1).

Every download answer carries the file's `ETag` (strong, from its SHA-256; none for a scenario that is
`dated_only`) and `Last-Modified`.
`If-Match` (strong comparison) and, without it, `If-Unmodified-Since` answer 412 when the file is another
version; `If-Range` sends the range only when it names the current version, else the whole file (200).
Oracle documents none of this for the content endpoint: this is plain HTTP, what a client may rely on
only where the server says so (docs/architecture.md: how a run goes).

A file can change in place (`Revised`): the byte in its middle flipped, so its size stays the same while
its ETag, Last-Modified and listed checksum change, and a download resumed across the change would join
two versions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message
from email.utils import format_datetime, parsedate_to_datetime

from tests.emulators.fusion.archive import OutputFile


@dataclass(frozen=True)
class Version:
    etag: str | None  # None: a server that names versions by date alone
    last_modified: str  # an HTTP-date

    @classmethod
    def of(cls, file: OutputFile, modified: datetime, *, dated_only: bool = False) -> Version:
        etag = None if dated_only else f'"{file.digest().sha256[:32]}"'
        return cls(etag, format_datetime(modified, usegmt=True))

    def headers(self) -> dict[str, str]:
        tag = {} if self.etag is None else {"ETag": self.etag}
        return {**tag, "Last-Modified": self.last_modified}

    def precondition_failed(self, headers: Message) -> bool:
        """If-Match / If-Unmodified-Since name another version."""
        if_match = headers.get("if-match")
        if if_match is not None:
            tags = [tag.strip() for tag in if_match.split(",")]
            return "*" not in tags and self.etag not in tags  # a weak tag never matches strongly
        since = _date(headers.get("if-unmodified-since"))
        modified = _date(self.last_modified)
        return since is not None and modified is not None and modified > since

    def range_applies(self, headers: Message) -> bool:
        """If-Range: a range of this version only (its ETag, or its exact date); absent, any range."""
        validator = headers.get("if-range")
        return validator is None or validator.strip() in (self.etag, self.last_modified)


class Revised(OutputFile):
    """`file` changed in place: the byte in its middle flipped. Revising it again flips it back."""

    def __init__(self, file: OutputFile) -> None:
        super().__init__(file.name, file.content_type, self._flipped)
        self._file = file
        self._middle = file.digest().size // 2

    def _flipped(self) -> Iterator[bytes]:
        position = 0
        for piece in self._file.read(0, self._file.digest().size):
            if position <= self._middle < position + len(piece):
                at = self._middle - position
                piece = piece[:at] + bytes([piece[at] ^ 0x01]) + piece[at + 1 :]
            position += len(piece)
            yield piece


def modified_at(ended: datetime, revisions: int) -> datetime:
    """A file is written when its job ends; each revision a second later than the one before."""
    return ended + timedelta(seconds=revisions)


def _date(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None  # an invalid date: the condition is ignored (RFC 9110, 13.1.4)
