"""Whether this container can land what submit would start: known before any Fusion job is spent.

A transfer hashes and inflates through native libraries (resumable.py). On an image where they cannot
load, every run would fail after its job ran, so submit asks first, once per container (the libraries do
not change while it lives). If they fail, it submits nothing, tells people once per container
(`runtime_broken`) and answers with the error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fusion_extract.errors import ConfigError

log = logging.getLogger(__name__)


class Readiness:
    """The outcome of `probe` (what was loaded, or a ConfigError), probed on first use and remembered."""

    def __init__(self, probe: Callable[[], str]) -> None:
        self._probe = probe
        self._checked = False
        self._problem: str | None = None
        self._told = False

    def problem(self) -> str | None:
        """None when this container can land a run; else the exact error."""
        if not self._checked:
            try:
                log.info("native libraries ready", extra={"libraries": self._probe()})
            except ConfigError as exc:
                self._problem = str(exc)
            self._checked = True
        return self._problem

    def to_tell(self) -> bool:
        """True the first time it is asked after a problem: people are told once, not on every run."""
        if self._problem is None or self._told:
            return False
        self._told = True
        return True
