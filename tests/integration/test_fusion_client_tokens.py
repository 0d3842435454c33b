"""The Fusion client's IDCS tokens against the emulated identity domain over HTTPS: both grants, the
cache and its refresh by the clock, one fresh token after a 401, refusals that are never retried."""

from pathlib import Path

import pytest

from fusion_extract.errors import AuthError
from fusion_extract.models import FusionCredentials
from tests.emulators.fusion import ExtractScenario
from tests.integration.fusion_stack import (
    CLIENT_ID,
    CLIENT_SECRET,
    FULL_SALES,
    PASSWORD,
    USERNAME,
    fusion_stack,
)


def test_token_client_credentials_grant_submits_as_the_client(tmp_path: Path) -> None:
    # Given the default grant
    with fusion_stack(tmp_path) as stack:
        # When a job is submitted
        job = stack.client.submit(FULL_SALES, "run-1")

        # Then one token was fetched, with HTTP Basic client authentication, and Fusion saw the client
        assert [(t.method, t.status) for t in stack.token_requests()] == [("POST", 200)]
        assert stack.token_requests()[0].headers["authorization"].startswith("Basic ")
        assert stack.fusion.job(job).request["jobSubmitter"] == CLIENT_ID


def test_token_password_grant_submits_as_the_user(tmp_path: Path) -> None:
    # Given the password grant
    with fusion_stack(tmp_path, FUSION_GRANT="password") as stack:
        # When a job is submitted
        job = stack.client.submit(FULL_SALES, "run-1")

        # Then the token was issued to the user, so Fusion saw the user as the submitter
        assert [t.status for t in stack.token_requests()] == [200]
        assert stack.fusion.job(job).request["jobSubmitter"] == USERNAME


def test_token_is_cached_across_calls_while_valid(tmp_path: Path) -> None:
    # Given a submitted job and an hour-long token
    with fusion_stack(tmp_path) as stack:
        job = stack.client.submit(FULL_SALES, "run-1")

        # When the status is read twice, minutes apart
        stack.clock.advance(600)
        stack.client.job_status(job)
        stack.clock.advance(600)
        stack.client.job_status(job)

        # Then the one token served every call
        assert len(stack.token_requests()) == 1
        assert len(set(stack.bearers())) == 1


@pytest.mark.parametrize("seconds_later", [250, 301], ids=["near-expiry", "past-expiry"])
def test_token_near_or_past_expiry_is_refreshed_before_fusion_refuses_it(
    tmp_path: Path, seconds_later: int
) -> None:
    # Given tokens that live five minutes, and a submitted job
    with fusion_stack(tmp_path, token_lifetime=300) as stack:
        job = stack.client.submit(FULL_SALES, "run-1")

        # When the status is read close to or after the token's expiry
        stack.clock.advance(seconds_later)
        stack.client.job_status(job)

        # Then a second token was fetched first: Fusion never had to refuse one
        assert [t.status for t in stack.token_requests()] == [200, 200]
        assert [served.status for served in stack.to_fusion()] == [202, 200]
        first, second = stack.bearers()
        assert first != second


def test_token_refused_by_fusion_while_valid_is_refreshed_once_and_the_call_succeeds(
    tmp_path: Path,
) -> None:
    # Given Fusion refuses the first (valid) token, as if revoked early
    with fusion_stack(tmp_path, ExtractScenario(expire_tokens=1)) as stack:
        # When a job is submitted
        job = stack.client.submit(FULL_SALES, "run-1")

        # Then a fresh token was fetched and the POST sent once more with it; one job exists
        posts = stack.to_fusion("/jobRequests", "POST")
        assert [served.status for served in posts] == [401, 202]
        assert posts[0].headers["authorization"] != posts[1].headers["authorization"]
        assert len(stack.token_requests()) == 2
        assert [str(j.id) for j in stack.fusion.jobs] == [job]
        assert stack.clock.sleeps == []


def test_token_refused_twice_by_fusion_raises_auth_error_without_looping(tmp_path: Path) -> None:
    # Given Fusion refuses the token and the fresh one too
    with fusion_stack(tmp_path, ExtractScenario(expire_tokens=2)) as stack:
        # When a job is submitted
        with pytest.raises(AuthError, match="refused a freshly issued token") as caught:
            stack.client.submit(FULL_SALES, "run-1")

        # Then it stopped after one refresh; nothing was created
        assert caught.value.retryable is False
        assert [served.status for served in stack.to_fusion("/jobRequests", "POST")] == [401, 401]
        assert stack.fusion.jobs == []


def test_token_with_invalid_client_raises_auth_error_not_retried(tmp_path: Path) -> None:
    # Given credentials with the wrong client secret
    wrong = FusionCredentials(CLIENT_ID, "not-the-secret")
    with fusion_stack(tmp_path, credentials=wrong) as stack:
        # When a job is submitted
        with pytest.raises(AuthError, match="invalid_client") as caught:
            stack.client.submit(FULL_SALES, "run-1")

        # Then IDCS was asked once, nothing waited, Fusion was never called, and no secret is shown
        assert [t.status for t in stack.token_requests()] == [401]
        assert stack.clock.sleeps == []
        assert stack.to_fusion() == []
        assert "not-the-secret" not in str(caught.value)


def test_token_password_grant_with_wrong_password_raises_auth_error_naming_the_fix(tmp_path: Path) -> None:
    # Given the password grant and a wrong password
    wrong = FusionCredentials(CLIENT_ID, CLIENT_SECRET, USERNAME, "wrong-password-5e1")
    with fusion_stack(tmp_path, credentials=wrong, FUSION_GRANT="password") as stack:
        # When a job is submitted
        with pytest.raises(AuthError, match=r"invalid_grant.*check the username and password") as caught:
            stack.client.submit(FULL_SALES, "run-1")

        # Then IDCS was asked once and the error shows neither password
        assert len(stack.token_requests()) == 1
        assert "wrong-password-5e1" not in str(caught.value)
        assert PASSWORD not in str(caught.value)


def test_token_endpoint_unavailable_is_retried_after_its_retry_after(tmp_path: Path) -> None:
    # Given IDCS answers 503 with Retry-After: 4 once
    with fusion_stack(tmp_path) as stack:
        stack.fusion.fail_next("/oauth2/v1/token", 503, retry_after=4)

        # When a job is submitted
        stack.client.submit(FULL_SALES, "run-1")

        # Then the client waited the 4 seconds and got its token on the second try
        assert [t.status for t in stack.token_requests()] == [503, 200]
        assert stack.clock.sleeps == [4.0]
        assert len(stack.fusion.jobs) == 1
