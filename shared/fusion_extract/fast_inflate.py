"""Inflate for a member that will not stop: ISA-L's, about 1.5x the resumable inflate's speed.

A member the invocation is sure to finish never needs a stop at a block boundary, so it can be inflated by
the fastest inflater at hand, which cannot stop: ISA-L through the `isal` package (its igzip decompressor,
assembly for x86-64 and arm64). Where the package is absent, the resumable Inflater serves, never asked to
stop. Either way the caller sees the same surface as `resumable.Inflater`: `feed` yields pieces of at most
PIECE bytes, then `finished` and `unused`; `stopped` stays None; `crc` is the output's CRC-32 where the
inflater computes it (ISA-L does, as it writes), else None.

    with fast_inflater() as inflater:
        for out in inflater.feed(chunk):
            ...
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

from fusion_extract.errors import IntegrityError
from fusion_extract.resumable import PIECE, InflatePoint, Inflater

ISAL_MODULE = "isal.igzip_lib"  # the isal package's igzip binding (ISA-L linked in)


class IsalInflater:
    """Raw deflate by ISA-L; output in pieces of at most PIECE bytes, so memory stays bounded whatever the
    ratio (the decompressor keeps the input it has not used yet, and no piece copies it again)."""

    kind = "isal"
    stopped: InflatePoint | None = None  # never: this inflater cannot stop

    def __init__(self, module: Any) -> None:
        self._module = module
        # Raw deflate, its output's CRC-32 computed as it is written (no gzip header or trailer is read):
        # the same check as a CRC over the pieces, at a tenth of its cost.
        self._decompressor = module.IgzipDecompressor(module.DECOMP_GZIP_NO_HDR)
        self._after = b""  # fed once the stream had ended

    @property
    def finished(self) -> bool:
        return bool(self._decompressor.eof)

    @property
    def crc(self) -> int:
        """The CRC-32 (zlib.crc32) of all the output so far."""
        return int(self._decompressor.crc)

    @property
    def unused(self) -> bytes:
        """Bytes fed after the final block's end (the member's data is over)."""
        return bytes(self._decompressor.unused_data) + self._after

    def feed(
        self, data: bytes | bytearray | memoryview, stop: Callable[[], bool] | None = None
    ) -> Iterator[bytes]:
        """Inflate `data`, yielding the output in pieces of at most PIECE bytes. `stop` must be None."""
        if stop is not None:
            raise ValueError("this inflater cannot stop: use resumable.Inflater for a member that may")
        decompressor = self._decompressor
        if decompressor.eof:
            self._after += bytes(data)
            return
        try:
            out = decompressor.decompress(data, PIECE)
            while True:
                if out:
                    yield out
                if decompressor.eof or decompressor.needs_input:
                    return
                out = decompressor.decompress(b"", PIECE)
        except self._module.IsalError as exc:
            raise IntegrityError(f"corrupt deflate data: {exc}") from None

    def __enter__(self) -> IsalInflater:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _isal() -> Any | None:
    try:
        return importlib.import_module(ISAL_MODULE)
    except ImportError:
        return None


def fast_inflater() -> IsalInflater | Inflater:
    """ISA-L's inflater where the isal package is installed (the functions' image), else the resumable one."""
    module = _isal()
    return IsalInflater(module) if module is not None else Inflater()
