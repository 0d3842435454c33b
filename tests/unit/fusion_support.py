"""Shared pieces of the Fusion client tests: endpoints, a credential source, the wired client, and a
response body that breaks its connection part way, the way a dropped TCP stream does."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import requests
import responses

from fusion_extract.fusion.batch import BatchClient
from fusion_extract.fusion.http import Bearer, HttpClient
from fusion_extract.fusion.tokens import TokenProvider
from fusion_extract.models import FusionCredentials
from fusion_extract.retry import RetryPolicy
from tests.clocks import ManualClock

BASE = "https://fa-abc.fa.example.com"
IDCS = "https://idcs-123.identity.example.com"
TOKEN_URL = IDCS + "/oauth2/v1/token"
SCOPE = "urn:opc:resource:fusion:abc:saas-batch/"
JOBS = BASE + "/api/saas-batch/jobscheduler/v1/jobRequests"
FILES = BASE + "/api/saas-batch/jobfilemanager/v1/jobRequests"
TIMEOUT = (3.0, 20.0)
SECRET = "client-secret-value"


@dataclass
class StaticCredentials:
    """A CredentialSource that counts reads; tests may swap the value (a rotated secret)."""

    value: FusionCredentials = field(default_factory=lambda: FusionCredentials("client-id", SECRET))
    reads: int = 0

    def credentials(self) -> FusionCredentials:
        self.reads += 1
        return self.value


@dataclass
class Stack:
    """The client wired as build_batch_client wires it, with every part reachable."""

    clock: ManualClock
    credentials: StaticCredentials
    tokens: TokenProvider
    http: HttpClient
    batch: BatchClient


def settings_env(**overrides: str) -> dict[str, str]:
    """A complete, valid function configuration for this Fusion, with the keys given changed."""
    return {
        "FUSION_BASE_URL": BASE,
        "IDCS_URL": IDCS,
        "FUSION_SCOPE": SCOPE,
        "CREDENTIALS_SECRET_ID": "ocid1.vaultsecret.oc1.eu-frankfurt-1.amaaaaaa",
        "BUCKET_NAME": "landing",
        "POLL_TOPIC_ID": "ocid1.onstopic.oc1.eu-frankfurt-1.poll",
        "TRANSFER_TOPIC_ID": "ocid1.onstopic.oc1.eu-frankfurt-1.transfer",
        "RERUN_TOPIC_ID": "ocid1.onstopic.oc1.eu-frankfurt-1.rerun",
        "ALERTS_TOPIC_ID": "ocid1.onstopic.oc1.eu-frankfurt-1.alerts",
        **overrides,
    }


def stack(
    *,
    grant: str = "client_credentials",
    ca_bundle: str | None = None,
    max_attempts: int = 4,
    max_seconds: float = 300.0,
    chunk_size: int = 1 << 20,
    max_json_bytes: int = 1 << 20,
    max_listing_bytes: int = 16 << 20,
) -> Stack:
    clock = ManualClock()
    credentials = StaticCredentials()
    retry = RetryPolicy(clock, max_attempts=max_attempts, max_seconds=max_seconds, rand=lambda: 0.5)
    idcs = HttpClient(requests.Session(), timeout=TIMEOUT, ca_bundle=ca_bundle, retry=retry)
    tokens = TokenProvider(
        idcs,
        idcs_url=IDCS,
        scope=SCOPE,
        grant=grant,
        credentials=credentials,
        clock=clock,
        max_json_bytes=max_json_bytes,
    )
    http = HttpClient(
        requests.Session(), timeout=TIMEOUT, ca_bundle=ca_bundle, retry=retry, bearer=Bearer(tokens, BASE)
    )
    batch = BatchClient(
        http,
        base_url=BASE,
        chunk_size=chunk_size,
        max_json_bytes=max_json_bytes,
        max_listing_bytes=max_listing_bytes,
    )
    return Stack(clock, credentials, tokens, http, batch)


def add_token(fake: responses.RequestsMock, token: str = "token-1", expires_in: Any = 3600) -> None:
    body = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    fake.add(responses.POST, TOKEN_URL, json=body)


def bearer_of(call: Any) -> str:
    return str(call.request.headers.get("Authorization", ""))


def json_body(call: Any) -> Any:
    return json.loads(call.request.body)


class DroppingBody(io.RawIOBase):
    """Serves `data`, then fails with a connection reset after `drop_after` bytes."""

    def __init__(self, data: bytes, drop_after: int) -> None:
        self._data = data
        self._position = 0
        self._drop_after = drop_after

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._position >= min(self._drop_after, len(self._data)) and self._position < len(self._data):
            raise ConnectionResetError("connection reset by peer")
        count = min(len(buffer), min(self._drop_after, len(self._data)) - self._position)
        buffer[:count] = self._data[self._position : self._position + count]
        self._position += count
        return count

    def as_body(self) -> io.BufferedReader:
        return io.BufferedReader(self)


class EndlessBody(io.RawIOBase):
    """`prefix`, then `filler` bytes for as long as anyone reads, up to `size`; counts what was read,
    so a test can show a client stopped early without the body ever existing in memory."""

    def __init__(self, prefix: bytes, size: int, filler: bytes = b"x") -> None:
        self._prefix = prefix
        self._size = size
        self._filler = filler
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self._size - self.served)
        if count <= 0:
            return 0
        head = self._prefix[self.served : self.served + count]
        buffer[: len(head)] = head
        buffer[len(head) : count] = self._filler * (count - len(head))
        self.served += count
        return count

    def as_body(self) -> io.BufferedReader:
        return io.BufferedReader(self)
