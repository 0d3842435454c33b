"""The exit codes of every `fusion-extract` command: one table (README: CLI reference, checked by a test)."""

from __future__ import annotations

import enum


class Exit(enum.IntEnum):
    OK = 0
    RUN_FAILED = 1
    USAGE = 2
    UNUSABLE = 3
    NOT_FOUND = 4
    REFUSED = 5
    TIMED_OUT = 6

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS = {
    Exit.OK: "done: a run started, was cancelled or is re-landing; the watched run LANDED; doctor passed",
    Exit.RUN_FAILED: "the run ended FAILED, TIMED_OUT or CANCELLED (`watch`; `submit` if its job is refused)",
    Exit.USAGE: "the command line is wrong",
    Exit.UNUSABLE: "the target cannot be used: configuration missing or invalid, unreachable, credentials "
    "refused, no such profile, a doctor check failed, a function broken",
    Exit.NOT_FOUND: "no such run, or an extract the catalog does not declare",
    Exit.REFUSED: "the chain refused, or had nothing to do: the message says why and what would",
    Exit.TIMED_OUT: "`watch --timeout` passed before the run was final",
}


class Stop(Exception):
    """End the command with this code and message (what was refused and why, and what would do it)."""

    def __init__(self, code: Exit, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
