"""The one failure policy: what an error means for the run it happened to.

    transient  connection, timeout, 408/429/5xx, an Object Storage race (409/412 nobody expected):
               retried inside the step already; the run waits a growing delay and the sweep tries again
    malformed  Fusion answered something unreadable (not JSON, oversized, wrong shape): transient for
               MALFORMED_TRIES invocations in a row, then permanent
    permanent  everything else: 4xx, a URL or ZIP rule, an unknown job, refused credentials: the run ends
               FAILED, the lease is released, and people are told why

Errors are classified by their type, raised where they happened; never by their text. An error that is
not ours (a bug) is treated as transient: the run is retried, and after STALL_ALERT_AFTER failures in a
row a person is alerted, so even a bug cannot leave a run silently stuck.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from fusion_extract.errors import ConflictError, FusionExtractError, MalformedResponseError


class Kind(enum.Enum):
    TRANSIENT = "transient"
    MALFORMED = "malformed"
    PERMANENT = "permanent"


def classify(exc: BaseException) -> Kind:
    if isinstance(exc, MalformedResponseError):
        return Kind.MALFORMED
    if isinstance(exc, ConflictError) or not isinstance(exc, FusionExtractError) or exc.retryable:
        return Kind.TRANSIENT
    return Kind.PERMANENT


def describe(exc: BaseException) -> str:
    """An operator's one-line account of the error (bounded: it goes into documents and alerts)."""
    text = str(exc) if isinstance(exc, FusionExtractError) else f"{type(exc).__name__}: {exc}"
    return text[:500]


@dataclass(frozen=True)
class Patience:
    """How long a run may struggle before it fails or a person is told."""

    stall_alert_after: int = 5  # failures or re-drives in a row
    malformed_tries: int = 3
    defer_seconds: float = 60.0  # the first wait after a transient failure; doubles
    longest_wait: float = 3600.0

    def delay(self, failures: int) -> timedelta:
        return min(backoff(self.defer_seconds, failures), timedelta(seconds=self.longest_wait))


def backoff(base_seconds: float, attempt: int) -> timedelta:
    """Exponential: base, 2*base, 4*base ... for attempt 1, 2, 3 ..."""
    return timedelta(seconds=base_seconds * 2 ** max(attempt - 1, 0))
