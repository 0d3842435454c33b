"""OCI request-signature verification (draft-cavage HTTP signatures, rsa-sha256, version 1).

The emulator trusts two kinds of keyId:
- "<tenancy>/<user>/<fingerprint>": an API key registered with `trust_api_key`;
- "ST$<rpst>": a resource-principal session token (JWT) this verifier issued with `issue_rpst`; its
  `jwk` claim holds the session public key that must have signed the request, and it must not be expired.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm

from fusion_extract.clock import Clock
from tests.emulators.loopback import Request

BASE_HEADERS = ("date", "(request-target)", "host")
BODY_HEADERS = ("content-length", "content-type", "x-content-sha256")
# Object Storage PutObject and UploadPart stream their body, so the SDK signs only the base headers.
_UNSIGNED_BODY = re.compile(r"/n/[^/]+/b/[^/]+/[ou]/.+")
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class KeyPool:
    """RSA keys lent to emulators for as long as they run.

    Making a 2048-bit key costs tens of milliseconds (far more on a loaded machine), and every test used
    to make several. An emulator borrows the keys it needs and gives them back when it stops: a session
    makes only as many keys as are in use at once, and two running emulators never share a key, so one
    emulator's identities stay strangers to another. (A key given back may serve a later emulator.)"""

    def __init__(self) -> None:
        self._free: list[rsa.RSAPrivateKey] = []
        self._lock = threading.Lock()

    def borrow(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._free:
                return self._free.pop()
        return new_private_key()

    def give_back(self, keys: Iterable[rsa.RSAPrivateKey]) -> None:
        with self._lock:
            self._free.extend(keys)


KEYS = KeyPool()


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def fingerprint(key: rsa.RSAPublicKey) -> str:
    """OCI's key fingerprint: the MD5 of the DER public key, as colon-separated hex."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.md5(der).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


class Refused(Exception):
    """Why a request is not authenticated."""


class RequestVerifier:
    def __init__(
        self,
        clock: Clock,
        max_skew: timedelta = timedelta(minutes=5),
        issuer_key: Callable[[], rsa.RSAPrivateKey] = new_private_key,
    ) -> None:
        """`issuer_key` gives the key that signs resource-principal session tokens (asked for once)."""
        self.clock = clock
        self.max_skew = max_skew
        self._api_keys: dict[str, rsa.RSAPublicKey] = {}
        self._new_issuer_key = issuer_key

    @cached_property
    def _issuer_key(self) -> rsa.RSAPrivateKey:
        return self._new_issuer_key()

    def trust_api_key(self, tenancy: str, user: str, key: rsa.RSAPublicKey) -> str:
        """Register an API key; returns its fingerprint."""
        print_ = fingerprint(key)
        self._api_keys[f"{tenancy}/{user}/{print_}"] = key
        return print_

    def issue_rpst(
        self,
        session_key: rsa.RSAPublicKey,
        *,
        tenancy: str,
        compartment: str,
        resource_id: str,
        lifetime: timedelta,
    ) -> str:
        """A resource-principal session token for the session key, signed by this verifier."""
        now = self.clock.now()
        claims = {
            "iss": "emulator",
            "sub": resource_id,
            "res_id": resource_id,
            "res_type": "fnfunc",
            "res_tenant": tenancy,
            "res_compartment": compartment,
            "ttype": "res",
            "iat": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
            "jwk": RSAAlgorithm.to_jwk(session_key),
        }
        return jwt.encode(claims, self._issuer_key, algorithm="RS256")

    def verify(self, request: Request) -> str | None:
        """None if the request is properly signed by a trusted key; else why it is refused."""
        try:
            self._verify(request)
        except Refused as refused:
            return str(refused)
        return None

    def principal(self, request: Request) -> str | None:
        """Who signed a verified request: a resource principal's resource id, or an API key's user."""
        key_id = _signature_params(request.headers.get("authorization")).get("keyId", "")
        if key_id.startswith("ST$"):
            claims = jwt.decode(key_id.removeprefix("ST$"), options={"verify_signature": False})
            return str(claims.get("res_id")) if claims.get("res_id") else None
        parts = key_id.split("/")
        return parts[1] if len(parts) == 3 else None

    def _verify(self, request: Request) -> None:
        params = _signature_params(request.headers.get("authorization"))
        signed = params["headers"].lower().split()
        missing = [name for name in self._required_headers(request) if name not in signed]
        if missing:
            raise Refused(f"the signature does not cover the required headers {missing}")
        self._check_date(request.headers.get("date"))
        if "x-content-sha256" in signed:
            digest = base64.b64encode(hashlib.sha256(request.body).digest()).decode()
            if request.headers.get("x-content-sha256") != digest:
                raise Refused("x-content-sha256 does not match the request body")
        key = self._public_key(params["keyId"])
        signing_string = "\n".join(_header_line(request, name) for name in signed)
        try:
            key.verify(
                base64.b64decode(params["signature"]),
                signing_string.encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            raise Refused("the signature does not verify with the key named by keyId") from None

    @staticmethod
    def _required_headers(request: Request) -> tuple[str, ...]:
        if request.method in ("POST", "PATCH") or (
            request.method == "PUT" and not _UNSIGNED_BODY.fullmatch(request.path)
        ):
            return BASE_HEADERS + BODY_HEADERS
        return BASE_HEADERS

    def _check_date(self, value: str | None) -> None:
        try:
            sent = parsedate_to_datetime(value or "")
        except (TypeError, ValueError):
            raise Refused(f"the date header {value!r} is missing or not an HTTP date") from None
        if abs(self.clock.now() - sent) > self.max_skew:
            raise Refused(f"the date header {value!r} is more than {self.max_skew} from the server's clock")

    def _public_key(self, key_id: str) -> rsa.RSAPublicKey:
        if key_id.startswith("ST$"):
            return self._session_key(key_id.removeprefix("ST$"))
        key = self._api_keys.get(key_id)
        if key is None:
            raise Refused(f"unknown keyId {key_id!r} (not a registered tenancy/user/fingerprint)")
        return key

    def _session_key(self, token: str) -> rsa.RSAPublicKey:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._issuer_key.public_key(),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidTokenError as exc:
            raise Refused(f"the security token was not issued by this emulator: {exc}") from None
        if datetime.fromtimestamp(claims["exp"], self.clock.now().tzinfo) <= self.clock.now():
            raise Refused("the security token has expired")
        key = RSAAlgorithm.from_jwk(json.loads(claims["jwk"]))
        if not isinstance(key, rsa.RSAPublicKey):
            raise Refused("the security token's jwk is not an RSA public key")
        return key


def _signature_params(header: str | None) -> dict[str, str]:
    if not header:
        raise Refused("the request is not signed (no authorization header)")
    scheme, _, rest = header.partition(" ")
    params = dict(_PARAM.findall(rest))
    if scheme != "Signature" or not {"headers", "keyId", "signature"} <= params.keys():
        raise Refused("the authorization header is not an OCI Signature (headers, keyId, signature)")
    if params.get("algorithm", "rsa-sha256") != "rsa-sha256":
        raise Refused(f"unsupported signature algorithm {params['algorithm']!r}")
    return params


def _header_line(request: Request, name: str) -> str:
    if name == "(request-target)":
        return f"(request-target): {request.method.lower()} {request.target}"
    value = request.headers.get(name)
    if value is None:
        raise Refused(f"the signed header {name!r} is missing from the request")
    return f"{name}: {value}"
