"""How OCI SDK calls are retried, and how their failures become the product's errors.

Retry policy, chosen on purpose:
- The SDK default (8 attempts over up to 600 s) would outlive a function step, and the default circuit
  breaker is ONE process-wide object: ten failures of any service open it for every client. So clients get
  `BoundedRetry` and `NoCircuitBreakerStrategy` (see clients.py).
- `BoundedRetry` retries throttling (429), 5xx (not 501) and connection failures or timeouts within the
  product's RetryPolicy (attempts and total time bounded, jittered backoff, Retry-After obeyed).
- It never replays a call whose body is a stream (has read() or is an iterator): a replay would resend a
  half-consumed body. The adapters pass only bytes, so this is a guard, not a path taken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import oci
from oci._vendor.requests.exceptions import RequestException as HttpError

from fusion_extract.errors import (
    ConflictError,
    FusionExtractError,
    NotFoundError,
    TransientError,
    UpstreamError,
)
from fusion_extract.retry import RetryPolicy, parse_retry_after

# The SDK raises oci.exceptions.RequestException / ConnectTimeout for a failed request, but reading a
# body later raises its vendored `requests` errors; both derive from the vendored RequestException.
CONNECTION_ERRORS = (HttpError,)


def is_transient(exc: BaseException) -> bool:
    """Throttling, a server fault or a failed connection: the same call may succeed later."""
    if isinstance(exc, oci.exceptions.ServiceError):
        status = int(exc.status)
        return status == 429 or (status >= 500 and status != 501)
    return isinstance(exc, CONNECTION_ERRORS)


class BoundedRetry:
    """An SDK retry strategy (the SDK calls make_retrying_call) that follows the product's RetryPolicy."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def add_circuit_breaker_callback(self, _callback: object) -> None:
        """Called by the SDK; there is no breaker to notify (see the module docstring)."""

    def make_retrying_call(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        rewind = _rewind(kwargs.get("body"))
        if rewind is None:
            return call(*args, **kwargs)  # a replay would resend a half-read body

        def attempt() -> Any:
            rewind()
            return call(*args, **kwargs)

        return self.policy.call(attempt, is_transient=is_transient, retry_after=self._retry_after)

    def _retry_after(self, exc: BaseException) -> float | None:
        headers = getattr(exc, "headers", None) or {}
        return parse_retry_after(headers.get("retry-after"), self.policy.clock.now())


def _rewind(body: Any) -> Callable[[], object] | None:
    """What sets a request's body back before each attempt, so that a retry sends all of it: nothing for
    bytes, a seek back to where it started for a seekable stream; None for a stream read only once."""
    if not _is_stream(body):
        return lambda: None
    if not getattr(body, "seekable", lambda: False)():
        return None
    start = body.tell()
    return lambda: body.seek(start)


def _is_stream(body: object) -> bool:
    return hasattr(body, "read") or isinstance(body, Iterator)


def product_error(exc: Exception, what: str) -> FusionExtractError:
    """Map an SDK failure of `what` (e.g. "get object x") to the product's hierarchy."""
    if isinstance(exc, oci.exceptions.ServiceError):
        status, code = int(exc.status), str(exc.code)
        text = f"{what}: {status} {code}: {exc.message}"
        if status == 404:
            return NotFoundError(text, status=status, code=code)
        if status in (409, 412):
            return ConflictError(text)
        if is_transient(exc):
            return TransientError(text, status=status, code=code)
        return UpstreamError(text, status=status, code=code)
    if isinstance(exc, CONNECTION_ERRORS):
        return TransientError(f"{what}: connection failed ({type(exc).__name__})")
    if isinstance(exc, FusionExtractError):
        return exc
    return UpstreamError(f"{what}: {type(exc).__name__}: {exc}")


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Raise SDK failures inside the block as product errors that say what was being done."""
    try:
        yield
    except FusionExtractError:
        raise
    except (oci.exceptions.ServiceError, *CONNECTION_ERRORS) as exc:
        raise product_error(exc, what) from exc
