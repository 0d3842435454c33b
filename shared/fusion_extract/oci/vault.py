"""Fusion credentials read from an OCI Vault secret, cached for a while.

The secret holds one JSON object: {"client_id", "client_secret"}, plus {"username", "password"} for the
password grant. Key names match case-insensitively and may carry an "IDCS_" prefix, so the blog's secret
(IDCS_CLIENT_ID, IDCS_CLIENT_SECRET, USERNAME, password) works as it is; other keys are ignored.
Errors name the key, never a value; every value is registered with the log masker as soon as it is read.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from datetime import datetime
from typing import Any

import oci

from fusion_extract.clock import Clock
from fusion_extract.errors import SecretError
from fusion_extract.logging import register_secret
from fusion_extract.models import FusionCredentials
from fusion_extract.oci.calls import is_transient, product_error

FIELDS = ("client_id", "client_secret", "username", "password")
PASSWORD_FIELDS = ("username", "password")


class VaultCredentials:
    """CredentialSource over one secret OCID; re-reads the secret once `ttl_seconds` have passed."""

    def __init__(
        self,
        secrets_client: Any,
        secret_id: str,
        clock: Clock,
        ttl_seconds: float,
        *,
        grant: str = "client_credentials",
    ) -> None:
        self.client = secrets_client
        self.secret_id = secret_id
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        self.grant = grant
        self._lock = threading.Lock()
        self._cached: tuple[FusionCredentials, datetime] | None = None

    def credentials(self) -> FusionCredentials:
        with self._lock:
            now = self.clock.now()
            if self._cached and (now - self._cached[1]).total_seconds() < self.ttl_seconds:
                return self._cached[0]
            credentials = parse_credentials(self._read(), grant=self.grant)
            self._cached = (credentials, now)
            return credentials

    def _read(self) -> bytes:
        what = f"credentials secret {self.secret_id}"
        try:
            bundle = self.client.get_secret_bundle(self.secret_id).data
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404:
                raise SecretError(
                    f"{what} not found or not readable (check CREDENTIALS_SECRET_ID and the policy)"
                ) from None
            if is_transient(exc):
                raise product_error(exc, f"read {what}") from exc
            raise SecretError(f"{what} could not be read: {exc.status} {exc.code}") from None
        except Exception as exc:
            raise product_error(exc, f"read {what}") from exc
        content = bundle.secret_bundle_content
        if getattr(content, "content_type", None) != "BASE64":
            raise SecretError(f"{what} has no BASE64 content")
        try:
            return base64.b64decode(content.content or "", validate=True)
        except (binascii.Error, ValueError):
            raise SecretError(f"{what} content is not valid base64") from None


def parse_credentials(raw: bytes, *, grant: str = "client_credentials") -> FusionCredentials:
    """Credentials from the secret's JSON; SecretError names the first problem (a key, never a value)."""
    try:
        document = json.loads(raw)
    except ValueError:
        raise SecretError("credentials secret is not JSON") from None  # `from None`: the error holds the text
    if not isinstance(document, dict):
        raise SecretError("credentials secret must be a JSON object")
    values: dict[str, str] = {}
    for key, value in document.items():
        field = key.lower().removeprefix("idcs_")
        if field not in FIELDS:
            continue
        if isinstance(value, str):
            register_secret(value)
        if field in values:
            raise SecretError(f"credentials secret gives key {field!r} twice (as {key!r} too)")
        if not isinstance(value, str) or not value.strip():
            raise SecretError(f"credentials secret key {key!r} must be a non-empty string")
        values[field] = value
    required = ("client_id", "client_secret") + (PASSWORD_FIELDS if grant == "password" else ())
    missing = [field for field in required if field not in values]
    if missing:
        reason = " (FUSION_GRANT=password needs username and password)" if grant == "password" else ""
        raise SecretError(f"credentials secret is missing key {', '.join(missing)}{reason}")
    return FusionCredentials(**values)
