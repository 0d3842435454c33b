"""An output ZIP served from a file on disk instead of generated (ExtractScenario.prebuilt_zip).

For benchmarks: a generated archive costs the emulator a deflate pass per download, which on a small
machine is what a client benchmark would end up measuring. A prebuilt archive is read from disk (the page
cache, once warm) and hashed once per process: every job of the extract serves the same bytes under the
job's own file name, and the `.mf` manifest lists its SHA-256 as usual.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

from tests.emulators.fusion.archive import Digest, OutputFile

READ_BYTES = 1024 * 1024
_digests: dict[tuple[str, int, int], Digest] = {}  # (path, size, mtime_ns): hashed once per process
_lock = threading.Lock()


class PrebuiltFile(OutputFile):
    """The bytes of `path`, served under `name`; a Range read seeks instead of regenerating."""

    def __init__(self, name: str, path: Path, content_type: str = "application/zip") -> None:
        super().__init__(name, content_type, self._whole)
        self.path = path

    def digest(self) -> Digest:
        stat = self.path.stat()
        key = (str(self.path), stat.st_size, stat.st_mtime_ns)
        with _lock:
            if key not in _digests:
                hasher = hashlib.sha256()
                with self.path.open("rb") as data:
                    while block := data.read(4 * READ_BYTES):
                        hasher.update(block)
                _digests[key] = Digest(stat.st_size, hasher.hexdigest())
            return _digests[key]

    def read(self, start: int, stop: int) -> Iterator[bytes]:
        with self.path.open("rb") as data:
            data.seek(start)
            left = stop - start
            while left > 0:
                block = data.read(min(READ_BYTES, left))
                if not block:
                    return
                left -= len(block)
                yield block

    def _whole(self) -> Iterator[bytes]:
        return self.read(0, self.path.stat().st_size)
