"""The product's Fusion client, wired from Settings by build_batch_client, aimed at a FusionEmulator.

Emulator and client share one ManualClock: the client's retry sleeps are recorded (and move time on),
and a test moves jobs forward with `clock.advance`, so nothing ever sleeps.

    with fusion_stack(tmp_path, ExtractScenario(chunks=3)) as stack:
        job = stack.client.submit(FULL_SALES, "run-1")
        stack.clock.advance(FINISHED)
        stack.client.job_status(job)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from fusion_extract.config import Settings
from fusion_extract.fusion.batch import BatchClient, build_batch_client
from fusion_extract.models import ExtractRequest, FusionCredentials, Mode
from tests.clocks import ManualClock
from tests.emulators import pool
from tests.emulators.fusion import ExtractScenario, FusionEmulator, ServedRequest
from tests.unit.fusion_support import StaticCredentials

EXTRACT = "Sales"
FULL_SALES = ExtractRequest(EXTRACT, Mode.FULL)
CLIENT_ID = "fusion-extract-client"
CLIENT_SECRET = "client-secret-7f3a"
USERNAME = "EXTRACT_USER"
PASSWORD = "user-password-91c2"
CREDENTIALS = FusionCredentials(CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD)
FINISHED = 3600.0  # seconds after which any scenario's job has reached its outcome
API_PREFIX = "/api/saas-batch/"

# Every required key that is not about Fusion; none of it is used by the Fusion client.
_OTHER_REQUIRED = {
    "CREDENTIALS_SECRET_ID": "ocid1.vaultsecret.oc1.eu-frankfurt-1.fusion",
    "BUCKET_NAME": "fusion-landing",
    "POLL_TOPIC_ID": "ocid1.onstopic.oc1.eu-frankfurt-1.poll",
    "TRANSFER_TOPIC_ID": "ocid1.onstopic.oc1.eu-frankfurt-1.transfer",
    "RERUN_TOPIC_ID": "ocid1.onstopic.oc1.eu-frankfurt-1.rerun",
    "ALERTS_TOPIC_ID": "ocid1.onstopic.oc1.eu-frankfurt-1.alerts",
}


@dataclass(frozen=True)
class FusionStack:
    fusion: FusionEmulator
    clock: ManualClock
    credentials: StaticCredentials
    client: BatchClient

    def to_fusion(self, path_end: str = "", method: str | None = None) -> list[ServedRequest]:
        """Requests the Fusion server answered whose path ends with `path_end` (and of `method`)."""
        return [
            served
            for served in self.fusion.requests_to("fusion")
            if served.path.endswith(path_end) and method in (None, served.method)
        ]

    def token_requests(self) -> list[ServedRequest]:
        return self.fusion.requests_to("idcs")

    def bearers(self, path_end: str = "") -> list[str]:
        """The Authorization header of each Fusion request whose path ends with `path_end`."""
        return [served.headers.get("authorization", "") for served in self.to_fusion(path_end)]

    def stray_requests(self) -> list[ServedRequest]:
        """Fusion-side requests that did not go to the configured host's Batch Processing API."""
        host = urlsplit(self.fusion.base_url).netloc
        return [
            served
            for served in self.fusion.requests_to("fusion")
            if served.host != host or not served.path.startswith(API_PREFIX)
        ]

    def finished_job(self, run_token: str = "run-1") -> str:
        """Submit a job and let it reach its outcome."""
        job = self.client.submit(FULL_SALES, run_token)
        self.clock.advance(FINISHED)
        return job


def settings_for(fusion: FusionEmulator, **overrides: str) -> Settings:
    """Valid configuration whose Fusion, IDCS, scope and CA bundle are the emulator's."""
    env = {
        **_OTHER_REQUIRED,
        "FUSION_BASE_URL": fusion.base_url,
        "IDCS_URL": fusion.idcs_url,
        "FUSION_SCOPE": fusion.scope,
        "CA_BUNDLE": str(fusion.ca_path),
        **overrides,
    }
    return Settings.from_mapping(env)


@contextmanager
def fusion_stack(
    workdir: Path,
    scenario: ExtractScenario | None = None,
    *,
    credentials: FusionCredentials = CREDENTIALS,
    token_lifetime: int = 3600,
    **config: str,
) -> Iterator[FusionStack]:
    """An emulator (one OAuth client with a user, the extract Sales) and the client aimed at it. The
    emulator is borrowed from the session's pool and reset, so `workdir` holds nothing of it.
    `config`: extra configuration keys, e.g. FUSION_GRANT="password"."""
    clock = ManualClock()
    with pool.FUSION.lend() as fusion, requests.Session() as session:
        fusion.reset(clock)
        fusion.add_client(CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD, token_lifetime)
        fusion.define_extract(EXTRACT, scenario or ExtractScenario())
        source = StaticCredentials(credentials)
        client = build_batch_client(
            settings_for(fusion, **config), source, clock, session=session, rand=lambda: 0.5
        )
        yield FusionStack(fusion, clock, source, client)
