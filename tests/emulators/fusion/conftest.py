"""Fixtures of the Fusion emulator's own tests: a manual clock, a started emulator, a plain client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clocks import ManualClock
from tests.emulators import pool
from tests.emulators.fusion import ExtractScenario, FusionEmulator
from tests.emulators.fusion.plain_client import CLIENT_ID, CLIENT_SECRET, PlainClient


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fusion(clock: ManualClock, tmp_path: Path) -> Iterator[FusionEmulator]:
    """Started, with one client and the extract "Sales" (2 chunks of 50 rows, 1 s enqueued, 4 s running)."""
    with pool.FUSION.lend() as emulator:
        emulator.reset(clock)
        emulator.add_client(CLIENT_ID, CLIENT_SECRET)
        emulator.define_extract("Sales", ExtractScenario())
        yield emulator


@pytest.fixture
def client(fusion: FusionEmulator) -> Iterator[PlainClient]:
    plain = PlainClient(fusion)
    yield plain
    plain.session.close()
