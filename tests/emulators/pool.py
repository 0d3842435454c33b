"""Emulators kept running for a whole test session, each lent to one test at a time.

Starting servers for every test bought no confidence and cost a good part of the suite's time. A test
borrows an emulator, resets it to the state a new one would have (its own clock, its own folder), and
gives it back when it ends; a test that needs two at once gets two. Tests stay independent: nothing a
test did survives the reset, and an emulator is never shared by two tests at the same moment.

    with OCI.lend() as emu:
        emu.reset(tmp_path / "oci", clock=clock)

`close_all()` stops every emulator the pools started (the root conftest calls it at the session's end).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from tests.emulators.fusion import FusionEmulator
from tests.emulators.oci import OciEmulator


class Stoppable(Protocol):
    def stop(self) -> None: ...


E = TypeVar("E", bound=Stoppable)


class Pool(Generic[E]):
    def __init__(self, start: Callable[[], E]) -> None:
        self._start = start
        self._free: list[E] = []
        self._started: list[E] = []
        self._lock = threading.Lock()

    @contextmanager
    def lend(self) -> Iterator[E]:
        """An emulator no one else holds, started if none is free; the borrower resets it."""
        with self._lock:
            emulator = self._free.pop() if self._free else None
        if emulator is None:
            emulator = self._start()
            with self._lock:
                self._started.append(emulator)
        try:
            yield emulator
        finally:
            with self._lock:
                self._free.append(emulator)

    def close(self) -> None:
        with self._lock:
            started, self._started, self._free = self._started, [], []
        for emulator in started:
            emulator.stop()


@cache
def _home() -> Path:
    """Where pooled emulators keep what is theirs rather than a test's (TLS files, an idle bucket root)."""
    return Path(tempfile.mkdtemp(prefix="emulator-pool-"))


def _start_oci() -> OciEmulator:
    return OciEmulator(_home() / "oci-idle").start()


def _start_fusion() -> FusionEmulator:
    return FusionEmulator(workdir=_home() / "fusion").start()


OCI: Pool[OciEmulator] = Pool(_start_oci)
FUSION: Pool[FusionEmulator] = Pool(_start_fusion)


def close_all() -> None:
    OCI.close()
    FUSION.close()
    shutil.rmtree(_home(), ignore_errors=True)
    _home.cache_clear()
