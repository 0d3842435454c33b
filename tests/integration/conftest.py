"""An OCI emulator with the landing bucket, for the adapter tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.oci import OciEmulator
from tests.integration.oci_support import BUCKET, NAMESPACE


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[OciEmulator]:
    with OciEmulator(root=tmp_path / "oci", namespace=NAMESPACE) as emulator:
        emulator.create_bucket(BUCKET)
        yield emulator
