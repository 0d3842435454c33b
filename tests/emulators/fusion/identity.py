"""The identity domain (IDCS / OCI IAM) token endpoint: `POST /oauth2/v1/token`.

Clients authenticate with HTTP Basic. Grants: client_credentials, and password for a client that was
given a user. The scope must equal the emulator's Fusion scope. Errors are RFC 6749 JSON
(`error`, `error_description`): invalid_client 401, the others 400. Tokens look like JWTs, are opaque
to clients, and expire by the emulator clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from fusion_extract.clock import Clock
from tests.emulators.loopback import Request, Response

TOKEN_PATH = "/oauth2/v1/token"
FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str = field(repr=False)
    username: str | None = None  # set: the client may also use the password grant, as this user
    password: str | None = field(default=None, repr=False)
    token_lifetime: int = 3600  # seconds


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    client_id: str
    subject: str  # the user for the password grant, else the client
    expires_at: datetime


class OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.response = Response.json(
            401 if error == "invalid_client" else 400,
            {"error": error, "error_description": description},
            {**NO_STORE, **({"WWW-Authenticate": 'Basic realm="idcs"'} if error == "invalid_client" else {})},
        )


class IdentityDomain:
    def __init__(self, scope: str, clock: Clock) -> None:
        self.scope = scope
        self._clock = clock
        self._clients: dict[str, OAuthClient] = {}
        self._tokens: dict[str, Token] = {}
        self._serial = itertools.count(1)
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()

    def add_client(self, client: OAuthClient) -> None:
        if not client.client_id or ":" in client.client_id or not client.client_secret:
            raise ValueError("a client needs an id without ':' and a non-empty secret")
        if (client.username is None) != (client.password is None):
            raise ValueError("give a client both a username and a password, or neither")
        if client.token_lifetime < 1:
            raise ValueError("token_lifetime must be at least one second")
        with self._lock:
            self._clients[client.client_id] = client

    def bearer(self, authorization: str | None) -> Token | None:
        """The token an `Authorization: Bearer ...` header carries, if it is ours and unexpired."""
        scheme, _, value = (authorization or "").partition(" ")
        with self._lock:
            token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None or self._clock.now() >= token.expires_at:
            return None
        return token

    def issued(self) -> list[str]:
        """Every token value minted so far (tests scan logs for them)."""
        with self._lock:
            return list(self._tokens)

    def dispatch(self, request: Request) -> Response:
        if request.path != TOKEN_PATH:
            return Response.json(
                404, {"error": "not_found", "error_description": f"no such path {request.path}"}
            )
        if request.method != "POST":
            return Response.json(405, {"error": "invalid_request", "error_description": "use POST"})
        try:
            token, lifetime = self._issue(request)
        except OAuthError as refused:
            return refused.response
        body = {"access_token": token.value, "token_type": "Bearer", "expires_in": lifetime}
        return Response.json(200, body, NO_STORE)

    def _issue(self, request: Request) -> tuple[Token, int]:
        form = _form(request)
        client = self._authenticate(request.headers.get("authorization"))
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant not in ("client_credentials", "password"):
            raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")
        if form.get("scope") != self.scope:
            raise OAuthError("invalid_scope", f"scope must be {self.scope}")
        subject = client.client_id
        if grant == "password":
            if client.username is None:
                raise OAuthError("unauthorized_client", "this client may not use the password grant")
            if form.get("username") != client.username or form.get("password") != client.password:
                raise OAuthError("invalid_grant", "invalid user credentials")
            subject = client.username
        return self._mint(client, subject), client.token_lifetime

    def _authenticate(self, authorization: str | None) -> OAuthClient:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError("invalid_client", "client authentication (HTTP Basic) is required")
        try:
            client_id, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "malformed Basic credentials") from None
        with self._lock:
            client = self._clients.get(client_id)
        if client is None or not hmac.compare_digest(secret, client.client_secret):
            raise OAuthError("invalid_client", "client authentication failed")
        return client

    def _mint(self, client: OAuthClient, subject: str) -> Token:
        now = self._clock.now()
        expires_at = now + timedelta(seconds=client.token_lifetime)
        claims = {
            "sub": subject,
            "client_id": client.client_id,
            "scope": self.scope,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": f"emu-{next(self._serial)}",
        }
        signed = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}))}.{_b64(json.dumps(claims))}"
        signature = hmac.new(self._key, signed.encode(), hashlib.sha256).digest()
        token = Token(f"{signed}.{_b64(signature)}", client.client_id, subject, expires_at)
        with self._lock:
            self._tokens[token.value] = token
        return token


def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise OAuthError("invalid_request", f"the body must be {FORM}")
    try:
        pairs = parse_qsl(request.body.decode(), keep_blank_values=True, strict_parsing=bool(request.body))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "malformed form body") from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise OAuthError("invalid_request", "a parameter was repeated")
    return form


def _b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
