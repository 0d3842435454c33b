"""Every end-to-end test gets its own chain: emulators, three fdk runtimes, topics and schedules."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.chain import LocalChain


@pytest.fixture
def make_chain(tmp_path: Path) -> Iterator[object]:
    chains: list[LocalChain] = []

    def make(**config: str) -> LocalChain:
        chain = LocalChain(tmp_path / f"chain{len(chains)}", config=config).start()
        chains.append(chain)
        return chain

    yield make
    for chain in chains:
        chain.stop()
