"""Fresh chains for end-to-end tests, started ahead of time and stopped behind.

Every test still gets a chain of its own, never used before: new emulators, new topics, three fdk
processes that have not served a call yet (so each test sees cold starts, first token fetches and all
their log lines, as before). What moves is only when the waiting happens: starting a chain (three
processes) and stopping one (a busy handler may take seconds to end) used to sit on every test's path.
Now the chain for the next test of the same configuration starts in the background while a test runs,
and a test's chain is stopped in the background after it.

    supply = ChainSupply(new_workdir)
    chain = supply.take({"POLL_BUDGET_SECONDS": "0.5"})   # started, the caller's alone
    ...
    supply.give_back(chain)                               # stopped in the background
    supply.close()                                        # waits for every stop, stops the spares
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tests.emulators.chain import LocalChain

Config = frozenset[tuple[str, str]]


class ChainSupply:
    def __init__(self, new_workdir: Callable[[], Path]) -> None:
        self._new_workdir = new_workdir
        self._lock = threading.Lock()
        self._asked: Counter[Config] = Counter()
        self._spares: dict[Config, Future[LocalChain]] = {}
        self._stops: list[Future[None]] = []
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chain-supply")

    def take(self, config: Mapping[str, str]) -> LocalChain:
        """A started chain with this configuration that no one has used. The next one is started in
        the background when the configuration is the default or was asked for before."""
        key: Config = frozenset(config.items())
        with self._lock:
            self._asked[key] += 1
            spare = self._spares.pop(key, None)
            if not key or self._asked[key] > 1:
                self._spares[key] = self._background.submit(self._start, dict(config))
        return spare.result() if spare is not None else self._start(dict(config))

    def give_back(self, chain: LocalChain) -> None:
        """Stop the chain, in the background."""
        with self._lock:
            self._stops.append(self._background.submit(chain.stop))

    def close(self) -> None:
        """Wait for every stop, and stop the chains started for tests that never came."""
        with self._lock:
            stops, self._stops = self._stops, []
            spares, self._spares = list(self._spares.values()), {}
        for spare in spares:
            spare.result().stop()
        for stop in stops:
            stop.result()
        self._background.shutdown()

    def _start(self, config: dict[str, str]) -> LocalChain:
        return LocalChain(self._new_workdir(), config=config).start()
