"""Staging an archive's members and promoting them, with the store's calls in parallel.

A member that fits in one upload part is handed to a small pool of workers, so the inflater goes on with
the next member instead of waiting for Object Storage; at most `2 * parallelism` such members are held at
once, which bounds memory. A larger member streams as a multipart upload (parallel parts of its own).
Promotion (the create-only renames) also runs in parallel, and reuses what each upload returned instead of
looking the staged object up again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain
from types import TracebackType

from fusion_extract.ports import ObjectInfo, ObjectStore


class Stager:
    def __init__(self, store: ObjectStore, part_size: int, parallelism: int) -> None:
        self._store = store
        self._part_size = part_size
        self._pool = ThreadPoolExecutor(parallelism, thread_name_prefix="stage")
        self._slots = threading.BoundedSemaphore(2 * parallelism)
        self._staged: dict[str, Future[ObjectInfo]] = {}

    def __enter__(self) -> Stager:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def stage(self, name: str, chunks: Iterator[bytes]) -> None:
        """Upload one member under `name`; a small one in the background."""
        head: list[bytes] = []
        size = 0
        for chunk in chunks:
            head.append(chunk)
            size += len(chunk)
            if size >= self._part_size:
                info = self._store.upload_stream(name, chain(head, chunks))
                self._staged[name] = _done(info)
                return
        data = b"".join(head)
        self._slots.acquire()
        future = self._pool.submit(self._store.upload_stream, name, [data])
        future.add_done_callback(lambda _: self._slots.release())
        self._staged[name] = future

    def promote(self, moves: list[tuple[str, str]]) -> None:
        """Every staged member to its final name, once all uploads finished; the first failure raises."""
        staged = {name: future.result() for name, future in self._staged.items()}
        renames = [
            self._pool.submit(self._store.promote, source, target, staged.get(source))
            for source, target in moves
        ]
        for rename in renames:
            rename.result()


def _done(info: ObjectInfo) -> Future[ObjectInfo]:
    future: Future[ObjectInfo] = Future()
    future.set_result(info)
    return future
