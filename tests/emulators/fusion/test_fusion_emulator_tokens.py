"""The identity domain's token endpoint, TLS, and the bearer check on saas-batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.clocks import ManualClock
from tests.emulators.fusion import FusionEmulator
from tests.emulators.fusion.batch import JOBS
from tests.emulators.fusion.plain_client import CLIENT_ID, CLIENT_SECRET, PlainClient

ROOT = Path(__file__).resolve().parents[3]


def test_token_client_credentials_returns_bearer_with_client_lifetime(fusion: FusionEmulator) -> None:
    # Given a client whose tokens live 120 s
    fusion.add_client("short", "lived", token_lifetime=120)
    client = PlainClient(fusion)
    # When it asks for a token with the client_credentials grant
    response = client.token(auth=("short", "lived"))
    # Then it gets a Bearer token that says so, and is told not to cache the answer
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 120
    assert body["access_token"].count(".") == 2  # JWT-like, opaque to clients
    assert response.headers["Cache-Control"] == "no-store"


def test_token_password_grant_with_right_user_succeeds_wrong_password_is_invalid_grant(
    fusion: FusionEmulator,
) -> None:
    # Given a client set up for the password grant
    fusion.add_client("ropc", "secret", username="extract.user", password="pw")
    client = PlainClient(fusion)
    form = {"grant_type": "password", "username": "extract.user", "scope": fusion.scope}
    # When it asks with the right and then a wrong password
    right = client.token({**form, "password": "pw"}, auth=("ropc", "secret"))
    wrong = client.token({**form, "password": "nope"}, auth=("ropc", "secret"))
    # Then the first gets a token, the second a 400 invalid_grant
    assert right.status_code == 200
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    ("form", "auth", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, (CLIENT_ID, "wrong-secret"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, ("nobody", CLIENT_SECRET), 401, "invalid_client"),
        ({"grant_type": "client_credentials", "scope": "urn:opc:resource:other"}, None, 400, "invalid_scope"),
        ({"grant_type": "authorization_code"}, None, 400, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "u", "password": "p"}, None, 400, "unauthorized_client"),
        ({}, None, 400, "invalid_request"),
    ],
    ids=["wrong-secret", "unknown-client", "wrong-scope", "unknown-grant", "no-ropc-user", "no-grant"],
)
def test_token_bad_request_returns_oauth_error(
    client: PlainClient, form: dict[str, str], auth: tuple[str, str] | None, status: int, error: str
) -> None:
    # Given a request that breaks one rule (the scope is right unless the case is about it)
    request = {"scope": client.fusion.scope, **form}
    # When it is sent
    response = client.token(request, auth=auth)
    # Then the answer is the standard OAuth error for that rule
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["error_description"]


def test_token_without_basic_auth_or_with_json_body_is_refused(client: PlainClient) -> None:
    # Given the token URL
    url = f"{client.fusion.idcs_url}/oauth2/v1/token"
    form = {"grant_type": "client_credentials", "scope": client.fusion.scope}
    # When the client credentials are missing, or the body is JSON instead of a form
    anonymous = client.session.post(url, data=form)
    as_json = client.session.post(url, json=form, auth=(CLIENT_ID, CLIENT_SECRET))
    # Then both are refused with the matching OAuth error
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_client")
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")


def test_saas_batch_without_or_with_unknown_token_returns_401(client: PlainClient) -> None:
    # Given no token, then a token the identity domain never issued
    url = f"{client.fusion.base_url}{JOBS}/1"
    # When saas-batch is called
    without = client.session.get(url)
    forged = client.session.get(url, headers={"Authorization": "Bearer forged.token.value"})
    # Then both get 401 with a JSON error
    assert without.status_code == forged.status_code == 401
    assert forged.json()["status"] == 401


def test_saas_batch_token_past_its_lifetime_returns_401(fusion: FusionEmulator, clock: ManualClock) -> None:
    # Given a token that lives 60 s, accepted now
    fusion.add_client("brief", "secret", token_lifetime=60)
    client = PlainClient(fusion)
    token = client.token(auth=("brief", "secret")).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{JOBS}", headers=headers).status_code == 200
    # When the emulator clock passes its lifetime
    clock.advance(60)
    # Then the same token is refused
    assert client.get(f"{JOBS}", headers=headers).status_code == 401


def test_servers_idcs_and_fusion_listen_on_different_ports_over_verified_https(
    fusion: FusionEmulator,
) -> None:
    # Given the running emulator
    # When its two URLs are compared and called without trusting its CA
    untrusting = requests.Session()
    untrusting.trust_env = False
    # Then they are two https servers on loopback, and an unconfigured client refuses their certificate
    assert fusion.base_url.startswith("https://127.0.0.1:")
    assert fusion.idcs_url.startswith("https://127.0.0.1:")
    assert fusion.base_url != fusion.idcs_url
    with pytest.raises(requests.exceptions.SSLError):
        untrusting.get(f"{fusion.idcs_url}/oauth2/v1/token", verify=True)


def test_certificate_is_valid_for_localhost_too(fusion: FusionEmulator) -> None:
    # Given the Fusion URL spelled with localhost
    url = fusion.base_url.replace("127.0.0.1", "localhost") + JOBS
    # When it is called trusting the emulator CA
    response = requests.get(url, verify=str(fusion.ca_path))
    # Then TLS verifies (the answer is 401: no token), and the record shows the host it arrived on
    assert response.status_code == 401
    assert fusion.requests[-1].host.startswith("localhost:")


def test_requests_record_keeps_server_host_authorization_and_status(client: PlainClient) -> None:
    # Given an authorized client
    token = client.authorize()
    # When it lists jobs
    client.get(JOBS, params={"limit": "5"})
    # Then the record shows both calls, which server took each, and the token where it went
    token_call, list_call = client.fusion.requests
    assert (token_call.server, token_call.method, token_call.path) == ("idcs", "POST", "/oauth2/v1/token")
    assert "authorization" in token_call.headers  # HTTP Basic
    assert (list_call.server, list_call.status, list_call.query) == ("fusion", 200, {"limit": "5"})
    assert list_call.headers["authorization"] == f"Bearer {token}"
    assert list_call.host == client.fusion.base_url.removeprefix("https://")


def test_standalone_runner_prints_endpoints_and_serves_until_terminated(tmp_path: Path) -> None:
    # Given the emulator started as a program
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.fusion", "--workdir", str(tmp_path), "--extract", "Orders"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        endpoints = json.loads(process.stdout.readline())
        # When a client uses the endpoints it printed
        response = requests.post(
            f"{endpoints['idcs_url']}/oauth2/v1/token",
            data={"grant_type": "client_credentials", "scope": endpoints["scope"]},
            auth=(endpoints["client_id"], endpoints["client_secret"]),
            verify=endpoints["ca_path"],
        )
        # Then it gets a token for the extract the program defined
        assert response.status_code == 200
        assert endpoints["extracts"] == ["Orders"]
    finally:
        process.terminate()
        process.wait(timeout=30)
    # And a terminated emulator exits cleanly
    assert process.returncode == 0
