"""The one exception hierarchy. Every error the product raises is a FusionExtractError.

`retryable` tells the caller whether trying the same thing again later may succeed;
the function adapters map it to the right outcome (retry, rerun, or fail with a reason).
"""

from __future__ import annotations


class FusionExtractError(Exception):
    """Base of every error this product raises."""

    retryable = False


class ConfigError(FusionExtractError):
    """Function configuration is missing or invalid."""


class CatalogMissingError(ConfigError):
    """The extract catalog object the configuration names is absent. Retryable: `terraform apply` writes
    it, so a run that needs it waits (and a person is alerted if it stalls) rather than failing."""

    retryable = True


class MessageError(FusionExtractError):
    """An incoming message or request body is malformed; nothing was done."""


class SecretError(FusionExtractError):
    """The credentials secret is missing or malformed (names the key, never the value)."""


class AuthError(FusionExtractError):
    """The identity provider refused to issue a token (bad client, grant or scope)."""


class UnsafeInputError(FusionExtractError):
    """Input from outside broke a security rule: a foreign URL, a hostile archive entry, a bad name."""


class IntegrityError(FusionExtractError):
    """Data did not verify: checksum mismatch, truncated or corrupt archive, manifest disagreement."""


class RangeIgnoredError(IntegrityError):
    """A server answered a ranged read with the whole file (200): the read cannot go on where it stopped."""


class UpstreamError(FusionExtractError):
    """A remote service answered with an error."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class MalformedResponseError(UpstreamError):
    """A remote answer we cannot read: larger than its cap, not JSON, or JSON of the wrong shape.

    The chain's failure policy (chain/policy.py) gives it MALFORMED_TRIES invocations before it fails a run:
    one proxy's error page should not end a run that is otherwise fine.
    """


class TransientError(UpstreamError):
    """Throttling, 5xx, timeouts, dropped connections: worth retrying (after `retry_after` s, if given)."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class NotFoundError(UpstreamError):
    """The remote resource does not exist."""


class ConflictError(FusionExtractError):
    """A conditional write lost: the document changed or already exists. Callers re-read and decide."""


class SupersededError(FusionExtractError):
    """The work is no longer wanted: its run ended (cancelled, failed) while it was under way."""


class LeaseHeldError(FusionExtractError):
    """Another run of the same extract holds the lease."""
