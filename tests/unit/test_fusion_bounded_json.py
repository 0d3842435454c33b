"""Every JSON body from Fusion or IDCS is read through a size cap, in pieces, and must be JSON of the
expected shape; anything else is a MalformedResponseError naming the call and quoting only a short prefix."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from fusion_extract.config import KEYS, Settings
from fusion_extract.errors import MalformedResponseError, TransientError, UpstreamError
from fusion_extract.fusion.batch import build_batch_client
from tests.clocks import ManualClock
from tests.unit.fusion_support import (
    FILES,
    JOBS,
    TOKEN_URL,
    EndlessBody,
    StaticCredentials,
    add_token,
    settings_env,
    stack,
)

JOB_URL = JOBS + "/44046"
LIST_URL = FILES + "/44046/outputFiles"
MIB = 1 << 20
STATUS = {"jobDetails": {"jobRequestId": 44046, "jobStatus": "RUNNING"}}


@pytest.fixture
def fake():
    with responses.RequestsMock() as mock:
        yield mock


def endless(fake: responses.RequestsMock, method: str, url: str, size: int) -> EndlessBody:
    """A body of `size` bytes that starts like JSON and is produced only as it is read."""
    body = EndlessBody(b'{"jobStatus": "RUNNING", "pad": "', size)
    fake.add(method, url, body=body.as_body(), content_type="application/json")
    return body


def test_job_status_body_larger_than_the_cap_stops_reading_near_the_cap(fake):
    # Given a 64 MiB status body without a Content-Length, and the default 1 MiB cap
    add_token(fake)
    body = endless(fake, responses.GET, JOB_URL, 64 * MIB)

    # When the status is read
    with pytest.raises(MalformedResponseError, match=r"GET .*/44046: the body is larger than 1048576 bytes"):
        stack().batch.job_status("44046")

    # Then reading stopped soon after the cap: the body never got into memory
    assert body.served < 2 * MIB


def test_job_status_declaring_a_length_over_the_cap_is_refused_before_reading(fake):
    # Given a status answer that declares 64 MiB
    add_token(fake)
    body = EndlessBody(b"{", 64 * MIB)
    fake.add(responses.GET, JOB_URL, body=body.as_body(), headers={"Content-Length": str(64 * MIB)})

    # When it is read, Then it is refused from its header alone
    with pytest.raises(MalformedResponseError, match="declares 67108864 bytes, more than the 1048576"):
        stack().batch.job_status("44046")
    assert body.served == 0


def test_job_status_cap_is_the_configured_one(fake):
    # Given a cap of 100 bytes and a 200-byte status body
    add_token(fake)
    fake.add(responses.GET, JOB_URL, json=STATUS | {"pad": "x" * 150})

    # When it is read, Then it is refused (the 70-byte token response fit under the same cap)
    with pytest.raises(MalformedResponseError, match="larger than 100 bytes"):
        stack(max_json_bytes=100).batch.job_status("44046")


def test_job_status_not_json_quotes_only_a_short_prefix(fake):
    # Given an HTML page of 10,000 characters instead of JSON
    add_token(fake)
    fake.add(responses.GET, JOB_URL, body="<html>maintenance" + "y" * 10_000)

    # When the status is read
    with pytest.raises(MalformedResponseError) as caught:
        stack().batch.job_status("44046")

    # Then the error names the call and the problem, and quotes only the start of the body
    message = str(caught.value)
    assert "GET " + JOB_URL in message
    assert "is not JSON" in message
    assert "'<html>maintenance" in message
    assert "y" * 61 not in message
    assert caught.value.status == 200


def test_job_status_deeply_nested_json_is_malformed_not_a_recursion_error(fake):
    add_token(fake)
    fake.add(responses.GET, JOB_URL, body="[" * 100_000 + "]" * 100_000)

    with pytest.raises(MalformedResponseError, match="is not JSON"):
        stack().batch.job_status("44046")


@pytest.mark.parametrize("document", [[STATUS], "RUNNING", {"jobDetails": {"jobStatus": 5}}])
def test_job_status_json_of_the_wrong_shape_is_malformed(fake, document):
    add_token(fake)
    fake.add(responses.GET, JOB_URL, json=document)

    with pytest.raises(MalformedResponseError):
        stack().batch.job_status("44046")


def test_job_status_connection_dropped_mid_body_is_retried(fake):
    # Given a status body cut short once, then served whole
    add_token(fake)
    fake.add(responses.GET, JOB_URL, body=requests.exceptions.ChunkedEncodingError("connection broken"))
    fake.add(responses.GET, JOB_URL, json=STATUS)

    # When it is read, Then the second try answers
    assert stack().batch.job_status("44046").status == "RUNNING"


def test_malformed_response_is_a_permanent_upstream_error():
    error = MalformedResponseError("GET x: the body is not JSON", status=200)

    assert isinstance(error, UpstreamError)
    assert not isinstance(error, TransientError)
    assert error.retryable is False


def test_token_response_larger_than_the_cap_is_malformed(fake):
    endless(fake, responses.POST, TOKEN_URL, 64 * MIB)

    with pytest.raises(MalformedResponseError, match=r"POST .*/oauth2/v1/token: the body is larger than"):
        stack().tokens.token()


def test_token_response_not_json_is_malformed(fake):
    fake.add(responses.POST, TOKEN_URL, body="<html>login</html>")

    with pytest.raises(MalformedResponseError, match=r"POST .*/oauth2/v1/token answered 200 .*is not JSON"):
        stack().tokens.token()


def test_token_response_without_access_token_is_malformed(fake):
    fake.add(responses.POST, TOKEN_URL, json={"token_type": "Bearer"})

    with pytest.raises(MalformedResponseError, match="has no access_token"):
        stack().tokens.token()


def test_listing_page_has_its_own_larger_cap(fake):
    # Given a listing page of about 2 MiB: over the 1 MiB status cap, under the 16 MiB listing cap
    add_token(fake)
    items = [{"fileName": f"f{n}.zip", "fileSize": 1, "note": "z" * 2000} for n in range(1000)]
    fake.add(responses.GET, LIST_URL, json={"items": items, "hasMore": False})

    # When the output files are listed, Then the page is read
    assert len(stack().batch.output_files("44046")) == 1000


def test_listing_page_over_the_listing_cap_is_malformed(fake):
    add_token(fake)
    body = endless(fake, responses.GET, LIST_URL, 64 * MIB)

    with pytest.raises(MalformedResponseError, match="larger than 2097152 bytes"):
        stack(max_listing_bytes=2 * MIB).batch.output_files("44046")
    assert body.served < 4 * MIB


def test_listing_items_not_a_list_is_malformed(fake):
    add_token(fake)
    fake.add(responses.GET, LIST_URL, json={"items": {"a": 1}})

    with pytest.raises(MalformedResponseError, match="items is not a list"):
        stack().batch.output_files("44046")


def test_factory_reads_the_caps_from_configuration(fake):
    # Given FUSION_MAX_JSON_BYTES=100 and a status body of 200 bytes
    env = settings_env(FUSION_MAX_JSON_BYTES="100")
    settings = Settings.from_mapping(env)
    fake.add(responses.POST, TOKEN_URL, json={"access_token": "t", "expires_in": 3600})
    fake.add(responses.GET, JOB_URL, body=json.dumps(STATUS | {"pad": "x" * 150}))
    client = build_batch_client(settings, StaticCredentials(), ManualClock())

    # When a status is read, Then the configured cap applies
    with pytest.raises(MalformedResponseError, match="larger than 100 bytes"):
        client.job_status("44046")


def test_settings_caps_default_to_one_and_sixteen_mib():
    defaults = {key.env: key.default for key in KEYS}

    assert defaults["FUSION_MAX_JSON_BYTES"] == str(MIB)
    assert defaults["FUSION_MAX_LISTING_BYTES"] == str(16 * MIB)
