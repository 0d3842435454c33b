"""An OCI emulator with the landing bucket, for the adapter tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators import pool
from tests.emulators.oci import OciEmulator
from tests.integration.oci_support import BUCKET, NAMESPACE


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[OciEmulator]:
    with pool.OCI.lend() as emulator:
        emulator.reset(tmp_path / "oci", NAMESPACE)
        emulator.create_bucket(BUCKET)
        yield emulator
