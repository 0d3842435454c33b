"""IDCS tokens: the documented request, caching by expiry, refusals as AuthError, transient retries."""

import base64
import logging
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses

from fusion_extract.errors import AuthError, NotFoundError, SecretError, TransientError, UpstreamError
from fusion_extract.models import FusionCredentials
from tests.unit.fusion_support import SCOPE, SECRET, TOKEN_URL, add_token, stack


@pytest.fixture
def fake():
    with responses.RequestsMock() as mock:
        yield mock


def form_of(call: Any) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(call.request.body).items()}


def test_token_client_credentials_posts_form_with_basic_auth(fake):
    # Given IDCS issues a token
    add_token(fake, "token-abc")
    client = stack()

    # When a token is asked for
    token = client.tokens.token()

    # Then the documented request went out, and its token came back
    call = fake.calls[0]
    assert token == "token-abc"
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert (
        call.request.headers["Authorization"]
        == "Basic " + base64.b64encode(f"client-id:{SECRET}".encode()).decode()
    )
    assert form_of(call) == {"grant_type": "client_credentials", "scope": SCOPE}


def test_token_password_grant_sends_username_and_password(fake):
    add_token(fake)
    client = stack(grant="password")
    client.credentials.value = FusionCredentials("client-id", SECRET, "svc_user", "user-password")

    client.tokens.token()

    assert form_of(fake.calls[0]) == {
        "grant_type": "password",
        "scope": SCOPE,
        "username": "svc_user",
        "password": "user-password",
    }


def test_token_password_grant_without_user_in_secret_fails_before_any_call(fake):
    client = stack(grant="password")

    with pytest.raises(SecretError, match="lacks username or password"):
        client.tokens.token()

    assert len(fake.calls) == 0


def test_token_is_cached_until_shortly_before_expiry(fake):
    # Given a token that lives 3600 s, refreshed 60 s early
    add_token(fake, "first")
    add_token(fake, "second")
    client = stack()
    first = client.tokens.token()

    # When time passes to just before and then to the refresh point
    client.clock.advance(3539)
    before = client.tokens.token()
    client.clock.advance(1)
    after = client.tokens.token()

    # Then the cached token serves until the refresh point, and only then a new one is fetched
    assert (first, before, after) == ("first", "first", "second")
    assert len(fake.calls) == 2


def test_token_short_lived_is_refreshed_at_half_its_life(fake):
    add_token(fake, "first", expires_in=60)
    add_token(fake, "second")
    client = stack()
    client.tokens.token()

    client.clock.advance(30)

    assert client.tokens.token() == "second"


def test_token_invalidate_forces_a_new_fetch_reading_credentials_again(fake):
    # Given a cached token, and a secret rotated since it was fetched
    add_token(fake, "first")
    add_token(fake, "second")
    client = stack()
    client.tokens.token()
    client.credentials.value = FusionCredentials("client-id", "rotated-secret")

    # When the token is invalidated and asked for again
    client.tokens.invalidate()
    token = client.tokens.token()

    # Then a new token is fetched with the credentials read afresh
    assert token == "second"
    assert client.credentials.reads == 2
    assert (
        fake.calls[1]
        .request.headers["Authorization"]
        .endswith(base64.b64encode(b"client-id:rotated-secret").decode())
    )


@pytest.mark.parametrize(
    ("status", "code", "hint"),
    [
        (401, "invalid_client", "check the client id and secret"),
        (400, "invalid_client", "check the client id and secret"),
        (400, "invalid_grant", "check the username and password"),
        (400, "invalid_scope", "check FUSION_SCOPE"),
        (400, "unauthorized_client", "not allowed this grant type"),
        (400, "server_says_no", "check the OAuth client, grant and FUSION_SCOPE"),
    ],
)
def test_token_oauth_refusal_raises_auth_error_with_code_not_retried(fake, status, code, hint):
    # Given IDCS refuses with an OAuth error document
    description = f"Client authentication failed for {SECRET}"
    fake.add(responses.POST, TOKEN_URL, status=status, json={"error": code, "error_description": description})
    client = stack()

    # When a token is asked for
    with pytest.raises(AuthError) as caught:
        client.tokens.token()

    # Then the error names the OAuth code, description and a hint, never the secret, after one call
    message = str(caught.value)
    assert f"({code}: Client authentication failed for ***)" in message
    assert hint in message
    assert SECRET not in message
    assert caught.value.retryable is False
    assert len(fake.calls) == 1


def test_token_401_without_oauth_document_is_auth_error(fake):
    fake.add(responses.POST, TOKEN_URL, status=401, body="<html>Unauthorized</html>")

    with pytest.raises(AuthError, match=r"IDCS refused the token request \(HTTP 401\)"):
        stack().tokens.token()


def test_token_endpoint_missing_points_at_idcs_url(fake):
    fake.add(
        responses.POST,
        TOKEN_URL,
        status=404,
        json={"error": "not_found", "error_description": "no such path"},
    )

    with pytest.raises(NotFoundError, match="check IDCS_URL"):
        stack().tokens.token()


def test_token_throttled_and_5xx_are_retried_honouring_retry_after(fake):
    # Given IDCS throttles, then fails once, then issues a token
    fake.add(responses.POST, TOKEN_URL, status=429, headers={"Retry-After": "12"})
    fake.add(responses.POST, TOKEN_URL, status=502, body="bad gateway")
    add_token(fake, "token-ok")
    client = stack()

    # When a token is asked for
    token = client.tokens.token()

    # Then it waited what IDCS asked, then one jittered backoff, and succeeded
    assert token == "token-ok"
    assert client.clock.sleeps == [12.0, 1.0]


def test_token_connection_failures_spent_raise_transient_error(fake):
    for _ in range(4):
        fake.add(responses.POST, TOKEN_URL, body=requests.ConnectionError("connection refused"))
    client = stack(max_attempts=4)

    with pytest.raises(TransientError, match=r"POST .*oauth2/v1/token failed: ConnectionError") as caught:
        client.tokens.token()

    assert caught.value.retryable is True
    assert len(fake.calls) == 4
    assert client.clock.sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"token_type": "Bearer", "expires_in": 3600}, "no access_token"),
        ({"access_token": "", "expires_in": 3600}, "no access_token"),
        ({"access_token": "t", "token_type": "mac", "expires_in": 3600}, "token_type 'mac' is not Bearer"),
        ({"access_token": "t", "expires_in": "soon"}, "expires_in 'soon' is not a number"),
        ({"access_token": "t", "expires_in": 0}, "expires_in 0 is not a number"),
        ({"access_token": "t", "expires_in": True}, "expires_in True is not a number"),
        ({"access_token": "t", "expires_in": 1e300}, "is not a number of seconds up to a year"),
        (["access_token"], "without a JSON object"),
    ],
)
def test_token_malformed_response_raises_upstream_error_naming_field(fake, body, problem):
    fake.add(responses.POST, TOKEN_URL, json=body)

    with pytest.raises(UpstreamError, match=problem):
        stack().tokens.token()


def test_token_expires_in_as_text_is_accepted(fake):
    add_token(fake, "t", expires_in="1800")
    client = stack()
    client.tokens.token()

    client.clock.advance(1739)

    assert client.tokens.token() == "t"
    assert len(fake.calls) == 1


def test_token_value_never_reaches_the_logs(fake, caplog):
    add_token(fake, "token-that-must-stay-secret")
    caplog.set_level(logging.DEBUG)

    stack().tokens.token()

    logged = " ".join(str(vars(record)) for record in caplog.records)
    assert "fetched an access token" in caplog.text
    assert "token-that-must-stay-secret" not in logged
    assert SECRET not in logged
