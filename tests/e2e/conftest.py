"""Every end-to-end test gets its own chain: emulators, three fdk runtimes, topics and schedules.

Chains come from a session-wide supply that starts the next one while a test runs and stops a test's
chain after it in the background (tests.emulators.chain_supply); each is used by one test only.
"""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.chain import LocalChain
from tests.emulators.chain_supply import ChainSupply


@pytest.fixture(scope="session")
def chain_supply(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainSupply]:
    root = tmp_path_factory.mktemp("chains")  # here, not from the supply's threads: pytest's is not theirs
    supply = ChainSupply(lambda: Path(tempfile.mkdtemp(prefix="chain-", dir=root)))
    yield supply
    supply.close()


@pytest.fixture
def make_chain(chain_supply: ChainSupply) -> Iterator[object]:
    chains: list[LocalChain] = []

    def make(**config: str) -> LocalChain:
        chain = chain_supply.take(config)
        chains.append(chain)
        return chain

    yield make
    for chain in chains:
        chain_supply.give_back(chain)
