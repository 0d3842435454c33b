"""IDCS (OCI IAM identity domain) access tokens for Fusion, cached until shortly before they expire.

POST {IDCS_URL}/oauth2/v1/token, form-encoded, HTTP Basic client authentication, grant
`client_credentials` or `password`. Credentials are asked of the CredentialSource on every fetch (it
does its own caching), and every secret value is registered for log masking before it is used.
A refusal (OAuth error JSON) is an AuthError naming the OAuth error code; it is never retried.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fusion_extract.clock import Clock
from fusion_extract.errors import (
    AuthError,
    ConfigError,
    FusionExtractError,
    MalformedResponseError,
    NotFoundError,
    SecretError,
    UpstreamError,
)
from fusion_extract.fusion.http import HttpClient, Rejection
from fusion_extract.logging import mask, register_secret
from fusion_extract.ports import CredentialSource

logger = logging.getLogger(__name__)

TOKEN_PATH = "/oauth2/v1/token"
GRANTS = ("client_credentials", "password")
DEFAULT_LIFETIME = 3600.0  # IDCS default when a response leaves expires_in out
_MAX_LIFETIME = 366 * 86400.0  # IDCS allows up to a year
MAX_JSON_BYTES = 2**20  # the token response (FUSION_MAX_JSON_BYTES)
_HINTS = {
    "invalid_client": "check the client id and secret in the credentials secret",
    "invalid_grant": "check the username and password, or FUSION_GRANT",
    "invalid_scope": "check FUSION_SCOPE",
    "unauthorized_client": "the OAuth client is not allowed this grant type; check FUSION_GRANT",
    "unsupported_grant_type": "check FUSION_GRANT",
}


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: datetime


class TokenProvider:
    def __init__(
        self,
        http: HttpClient,
        *,
        idcs_url: str,
        scope: str,
        grant: str,
        credentials: CredentialSource,
        clock: Clock,
        refresh_margin: float = 60.0,
        max_json_bytes: int = MAX_JSON_BYTES,
    ) -> None:
        if grant not in GRANTS:
            raise ConfigError(f"FUSION_GRANT must be one of {', '.join(GRANTS)}, not {grant!r}")
        self._http = http
        self._url = idcs_url.rstrip("/") + TOKEN_PATH
        self._scope = scope
        self._grant = grant
        self._credentials = credentials
        self._clock = clock
        self._margin = refresh_margin
        self._max_json = max_json_bytes
        self._cached: _Token | None = None
        self._fetching = threading.Lock()  # a download's parallel ranges share one token, fetched once

    def token(self) -> str:
        """A valid access token, fetched only when the cached one is missing or about to expire."""
        with self._fetching:
            now, cached = self._clock.now(), self._cached  # read once: another thread may invalidate it
            if cached is None or now >= cached.refresh_at:
                cached = self._cached = self._fetch(now)
            return cached.value

    def invalidate(self) -> None:
        """Forget the cached token (Fusion refused it); the next call fetches a new one."""
        self._cached = None

    def _fetch(self, now: datetime) -> _Token:
        credentials = self._credentials.credentials()
        register_secret(credentials.client_secret)
        register_secret(credentials.password)
        form = {"grant_type": self._grant, "scope": self._scope}
        if self._grant == "password":
            if not credentials.username or not credentials.password:
                raise SecretError(
                    "the credentials secret lacks username or password, which FUSION_GRANT=password needs"
                )
            form |= {"username": credentials.username, "password": credentials.password}
        body = self._http.get_json(
            "POST",
            self._url,
            limit=self._max_json,
            data=form,
            auth=(credentials.client_id, credentials.client_secret),
            headers={"Accept": "application/json"},
            errors=oauth_error,
        )
        value, lifetime = _read_token(body, self._url)
        register_secret(value)
        logger.info("fetched an access token", extra={"grant": self._grant, "expires_in": lifetime})
        # Refresh a little early, so a token never expires between our check and Fusion's.
        return _Token(value, now + timedelta(seconds=lifetime - min(self._margin, lifetime / 2)))


def oauth_error(rejection: Rejection) -> FusionExtractError:
    """The error for a token endpoint answer that retrying will not fix."""
    if rejection.status == 404:
        return NotFoundError(f"{rejection.call} answered 404: check IDCS_URL", status=404)
    code, description = _oauth_fields(rejection.body)
    if code is not None or rejection.status in (400, 401, 403):
        hint = _HINTS.get(code or "", "check the OAuth client, grant and FUSION_SCOPE")
        detail = f"{code}: {description}" if code else f"HTTP {rejection.status}"
        return AuthError(mask(f"IDCS refused the token request ({detail}); {hint}")[:500])
    return UpstreamError(
        f"{rejection.call} answered {rejection.status}: {rejection.excerpt}", status=rejection.status
    )


def _oauth_fields(body: str) -> tuple[str | None, str]:
    try:
        document: Any = json.loads(body)
    except ValueError:
        return None, ""
    if not isinstance(document, dict) or not isinstance(document.get("error"), str):
        return None, ""
    description = document.get("error_description")
    return document["error"], description if isinstance(description, str) else ""


def _read_token(body: Any, url: str) -> tuple[str, float]:
    if not isinstance(body, dict):
        raise MalformedResponseError(f"POST {url} answered without a JSON object (JSON of another type)")
    value = body.get("access_token")
    if not isinstance(value, str) or not value:
        raise MalformedResponseError(f"POST {url}: the token response has no access_token")
    token_type = body.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise MalformedResponseError(f"POST {url}: token_type {repr(token_type)[:60]} is not Bearer")
    lifetime = body.get("expires_in", DEFAULT_LIFETIME)
    seconds = _seconds(lifetime)
    if seconds is None:
        raise MalformedResponseError(
            f"POST {url}: expires_in {repr(lifetime)[:60]} is not a number of seconds up to a year"
        )
    return value, seconds


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 < seconds <= _MAX_LIFETIME else None
