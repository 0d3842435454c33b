"""The one HTTP path to Fusion: timeouts, CA bundle, retries with Retry-After, 401 refresh, no redirects,
the token only for the Fusion API, and errors that name the call."""

import pytest
import requests
import responses

from fusion_extract.config import Settings
from fusion_extract.errors import (
    AuthError,
    NotFoundError,
    TransientError,
    UnsafeInputError,
    UpstreamError,
)
from fusion_extract.fusion.batch import build_batch_client
from tests.clocks import ManualClock
from tests.unit.fusion_support import (
    BASE,
    JOBS,
    SECRET,
    TIMEOUT,
    TOKEN_URL,
    StaticCredentials,
    add_token,
    bearer_of,
    settings_env,
    stack,
)

JOB_URL = JOBS + "/44046"
STATUS = {"jobDetails": {"jobRequestId": 44046, "jobStatus": "RUNNING"}}


@pytest.fixture
def fake():
    with responses.RequestsMock() as mock:
        yield mock


def test_request_with_ca_bundle_passes_verify_and_timeouts_on_every_call(fake):
    # Given a client told to trust a private CA
    add_token(fake)
    fake.add(responses.GET, JOB_URL, json=STATUS)
    client = stack(ca_bundle="/etc/fusion-ca.pem")

    # When it calls Fusion (which first needs a token from IDCS)
    client.batch.job_status("44046")

    # Then both calls carried the CA bundle and explicit (connect, read) timeouts
    assert [call.request.req_kwargs["verify"] for call in fake.calls] == ["/etc/fusion-ca.pem"] * 2
    assert [call.request.req_kwargs["timeout"] for call in fake.calls] == [TIMEOUT] * 2


def test_factory_wires_settings_into_every_call(fake):
    # Given configuration with a CA bundle and timeouts
    env = settings_env(CA_BUNDLE="/etc/ca.pem", HTTP_CONNECT_TIMEOUT="4", HTTP_READ_TIMEOUT="30")
    add_token(fake, "wired-token")
    fake.add(responses.GET, JOB_URL, json=STATUS)
    client = build_batch_client(Settings.from_mapping(env), StaticCredentials(), ManualClock())

    # When the built client reads a job status
    status = client.job_status("44046")

    # Then the token came from the configured IDCS and every call used the configured transport
    assert status.status == "RUNNING"
    assert fake.calls[0].request.url == TOKEN_URL
    assert bearer_of(fake.calls[1]) == "Bearer wired-token"
    assert {(c.request.req_kwargs["verify"], c.request.req_kwargs["timeout"]) for c in fake.calls} == {
        ("/etc/ca.pem", (4.0, 30.0))
    }


def test_request_when_throttled_sleeps_the_retry_after_seconds(fake):
    # Given Fusion throttles once with Retry-After: 7
    add_token(fake)
    fake.add(responses.GET, JOB_URL, status=429, headers={"Retry-After": "7"})
    fake.add(responses.GET, JOB_URL, json=STATUS)
    client = stack()

    # When a status is read
    client.batch.job_status("44046")

    # Then the client slept exactly 7 seconds on the injected clock, then succeeded
    assert client.clock.sleeps == [7.0]


def test_request_when_unavailable_with_http_date_retry_after_waits_until_then(fake):
    add_token(fake)
    fake.add(responses.GET, JOB_URL, status=503, headers={"Retry-After": "Sun, 01 Mar 2026 08:00:30 GMT"})
    fake.add(responses.GET, JOB_URL, json=STATUS)
    client = stack()

    client.batch.job_status("44046")

    assert client.clock.sleeps == [30.0]


def test_request_when_5xx_persists_raises_transient_error_after_attempts(fake):
    # Given Fusion fails with 500 on every attempt
    add_token(fake)
    for _ in range(4):
        fake.add(responses.GET, JOB_URL, status=500, body="internal error")
    client = stack(max_attempts=4)

    # When a status is read
    with pytest.raises(TransientError) as caught:
        client.batch.job_status("44046")

    # Then it tried 4 times with jittered backoff, and the error is retryable and names the call
    assert caught.value.retryable is True
    assert caught.value.status == 500
    assert f"GET {JOB_URL} answered 500: internal error" in str(caught.value)
    assert client.clock.sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError("connection reset"),
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ChunkedEncodingError("broken"),
    ],
)
def test_request_after_dropped_connection_or_timeout_retries(fake, failure):
    add_token(fake)
    fake.add(responses.GET, JOB_URL, body=failure)
    fake.add(responses.GET, JOB_URL, json=STATUS)
    client = stack()

    assert client.batch.job_status("44046").status == "RUNNING"
    assert client.clock.sleeps == [0.5]


def test_request_when_tls_verification_fails_is_not_retried(fake):
    add_token(fake)
    fake.add(responses.GET, JOB_URL, body=requests.exceptions.SSLError("certificate verify failed"))
    client = stack()

    with pytest.raises(UpstreamError, match="TLS verification failed; check CA_BUNDLE") as caught:
        client.batch.job_status("44046")

    assert not isinstance(caught.value, TransientError)
    assert client.clock.sleeps == []


def test_request_404_saying_feature_not_enabled_gives_actionable_message(fake):
    add_token(fake)
    fake.add(
        responses.GET,
        JOB_URL,
        status=404,
        json={"title": "Not Found", "detail": "The Batch Processing service is not enabled for this pod"},
    )

    with pytest.raises(NotFoundError) as caught:
        stack().batch.job_status("44046")

    message = str(caught.value)
    assert message.startswith("Batch Processing / Data Extraction not enabled on this pod")
    assert "Setup Manager" in message
    assert caught.value.status == 404


def test_request_plain_404_raises_not_found_naming_the_call(fake):
    add_token(fake)
    fake.add(responses.GET, JOB_URL, status=404, json={"detail": "Job request 44046 does not exist"})

    with pytest.raises(NotFoundError, match=f"GET {JOB_URL} answered 404: .*does not exist"):
        stack().batch.job_status("44046")


def test_request_other_4xx_raises_upstream_error_with_masked_excerpt_once(fake):
    # Given a 400 whose body echoes a secret and a bearer token
    add_token(fake, "token-in-echo")
    body = (
        f'{{"detail": "bad request from client-id/{SECRET}", "header": "Bearer token-in-echo"}}' + "x" * 900
    )
    fake.add(responses.GET, JOB_URL, status=400, body=body)
    client = stack()

    # When a status is read
    with pytest.raises(UpstreamError) as caught:
        client.batch.job_status("44046")

    # Then the error carries the status and a short excerpt with the secrets masked; no retry happened
    message = str(caught.value)
    assert caught.value.status == 400
    assert "client-id/***" in message
    assert "Bearer ***" in message
    assert SECRET not in message and "token-in-echo" not in message
    assert len(message) < 500
    assert len(fake.calls) == 2  # the token, then one GET


def test_request_401_refreshes_token_once_and_retries(fake):
    # Given a token Fusion stops accepting, and a new one IDCS will issue
    add_token(fake, "old-token")
    add_token(fake, "new-token")
    fake.add(responses.GET, JOB_URL, status=401)
    fake.add(responses.GET, JOB_URL, json=STATUS)
    client = stack()

    # When a status is read
    client.batch.job_status("44046")

    # Then the second GET carried a freshly fetched token, without any backoff sleep
    fusion_calls = [call for call in fake.calls if call.request.url == JOB_URL]
    assert [bearer_of(call) for call in fusion_calls] == ["Bearer old-token", "Bearer new-token"]
    assert client.clock.sleeps == []


def test_request_401_with_fresh_token_raises_auth_error_without_looping(fake):
    add_token(fake, "old-token")
    add_token(fake, "new-token")
    fake.add(responses.GET, JOB_URL, status=401)
    fake.add(responses.GET, JOB_URL, status=401)

    with pytest.raises(AuthError, match="refused a freshly issued token"):
        stack().batch.job_status("44046")

    assert len(fake.calls) == 4


def test_request_token_cached_across_calls(fake):
    add_token(fake)
    fake.add(responses.GET, JOB_URL, json=STATUS)
    fake.add(responses.GET, JOB_URL, json=STATUS)
    client = stack()

    client.batch.job_status("44046")
    client.batch.job_status("44046")

    assert [call.request.url for call in fake.calls].count(TOKEN_URL) == 1


def test_request_redirect_to_another_host_is_not_followed_and_gets_no_token(fake):
    # Given Fusion answers with a redirect to a foreign host (nothing is registered there)
    add_token(fake, "secret-token")
    fake.add(responses.GET, JOB_URL, status=302, headers={"Location": "https://evil.example.com/steal"})

    # When a status is read
    with pytest.raises(UnsafeInputError, match="redirected to another host"):
        stack().batch.job_status("44046")

    # Then nothing was sent to the foreign host
    assert [call.request.url for call in fake.calls] == [TOKEN_URL, JOB_URL]


def test_request_redirect_on_same_host_is_not_followed_either(fake):
    add_token(fake)
    fake.add(responses.GET, JOB_URL, status=307, headers={"Location": JOBS + "/44047"})

    with pytest.raises(UpstreamError, match=r"answered 307 redirect .*redirects are not followed") as caught:
        stack().batch.job_status("44046")

    assert not isinstance(caught.value, TransientError)
    assert len(fake.calls) == 2


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/api/saas-batch/jobscheduler/v1/jobRequests",
        "http://fa-abc.fa.example.com/api/saas-batch/jobscheduler/v1/jobRequests",
        BASE + "/fscmRestApi/resources/latest/workers",
    ],
)
def test_request_outside_the_fusion_api_sends_nothing(fake, url):
    # Given a client with a bearer for the Fusion API
    client = stack()

    # When asked to call anything else
    with pytest.raises(UnsafeInputError, match="refused URL"):
        client.http.request("GET", url)

    # Then no request left, not even for a token
    assert len(fake.calls) == 0
