"""Fixtures for the OCI emulator's own tests."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.clocks import ManualClock
from tests.emulators import pool
from tests.emulators.oci import OciEmulator


@pytest.fixture
def clock() -> ManualClock:
    # Starts at the real time: the real SDK dates its requests by the wall clock.
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def emu(tmp_path: Path, clock: ManualClock) -> Iterator[OciEmulator]:
    with pool.OCI.lend() as emulator:
        yield emulator.reset(tmp_path / "oci", "emuns", clock=clock)
