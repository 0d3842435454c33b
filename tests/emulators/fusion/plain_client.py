"""The emulator's own test client: plain `requests`, no product code, so the emulator is tested alone."""

from __future__ import annotations

from typing import Any

import requests

from tests.emulators.fusion.batch import FILES, JOBS
from tests.emulators.fusion.emulator import FusionEmulator

CLIENT_ID = "client-id"
CLIENT_SECRET = "client-secret"
FULL = "Full Data Extract"


class PlainClient:
    def __init__(self, fusion: FusionEmulator) -> None:
        self.fusion = fusion
        self.session = requests.Session()
        self.session.verify = str(fusion.ca_path)
        self.session.trust_env = (
            False  # REQUESTS_CA_BUNDLE would override `verify` (as docs/security.md says)
        )

    def token(
        self, form: dict[str, str] | None = None, auth: tuple[str, str] | None = None
    ) -> requests.Response:
        body = form if form is not None else {"grant_type": "client_credentials", "scope": self.fusion.scope}
        return self.session.post(
            f"{self.fusion.idcs_url}/oauth2/v1/token", data=body, auth=auth or (CLIENT_ID, CLIENT_SECRET)
        )

    def authorize(self) -> str:
        """Get a token and send it on every later request; returns it."""
        token: str = self.token().json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"
        return token

    def submit(self, extract: str = "Sales", mode: str = FULL, **fields: Any) -> requests.Response:
        body = {
            "serviceName": "boss",
            "jobDefinitionName": "DataExport",
            "description": f"nightly::{extract}::Full::Immediate",
            "requestParameters": {"submit.argument1": extract, "submit.argument2": mode},
            **fields,
        }
        return self.session.post(f"{self.fusion.base_url}{JOBS}", json=body)

    def submit_job(self, extract: str = "Sales", **fields: Any) -> int:
        """Submit and return the new job's id, taken from the Location header."""
        response = self.submit(extract, **fields)
        response.raise_for_status()
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def status(self, job_id: int | str) -> requests.Response:
        return self.get(f"{JOBS}/{job_id}")

    def files(self, job_id: int, **query: int) -> requests.Response:
        return self.get(f"{FILES}/{job_id}/outputFiles", params=query)

    def all_files(self, job_id: int) -> list[dict[str, Any]]:
        """Every page of the outputFiles list."""
        items: list[dict[str, Any]] = []
        while True:
            response = self.files(job_id, offset=len(items))
            response.raise_for_status()
            page = response.json()
            items += page["items"]
            if not page["hasMore"]:
                return items

    def get(self, path_or_url: str, **options: Any) -> requests.Response:
        url = path_or_url if path_or_url.startswith("http") else f"{self.fusion.base_url}{path_or_url}"
        return self.session.get(url, **options)

    def download(
        self, item: dict[str, Any], headers: dict[str, str] | None = None, *, stream: bool = False
    ) -> requests.Response:
        return self.get(item["$context"]["links"]["enclosure"]["href"], headers=headers or {}, stream=stream)
