"""The credentials secret's JSON: accepted shapes, and errors that name a key but never a value."""

import json

import pytest

from fusion_extract.errors import SecretError
from fusion_extract.logging import mask
from fusion_extract.oci.vault import parse_credentials


def secret(**values: object) -> bytes:
    return json.dumps(values).encode()


def test_parse_credentials_when_client_credentials_returns_them():
    credentials = parse_credentials(secret(client_id="app-id", client_secret="s3cr3t-value"))

    assert credentials.client_id == "app-id"
    assert credentials.client_secret == "s3cr3t-value"
    assert credentials.username is None


def test_parse_credentials_when_blog_style_keys_accepts_them():
    raw = secret(IDCS_CLIENT_ID="app", IDCS_CLIENT_SECRET="blog-secret", USERNAME="svc", password="pw-1234")

    credentials = parse_credentials(raw, grant="password")

    assert (credentials.client_id, credentials.username, credentials.password) == ("app", "svc", "pw-1234")


def test_parse_credentials_registers_every_value_with_the_log_masker():
    parse_credentials(secret(client_id="masked-client-77", client_secret="never-log-me", IDCS_HOST="x"))

    assert mask("secret never-log-me for masked-client-77") == "secret *** for ***"


def test_parse_credentials_when_password_grant_lacks_password_names_the_key():
    with pytest.raises(SecretError, match="missing key password"):
        parse_credentials(secret(client_id="a", client_secret="b", username="u"), grant="password")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"not json at all: hidden-value-1", "not JSON"),
        (b"\xff\xfe hidden-value-1", "not JSON"),
        (b'["hidden-value-1"]', "must be a JSON object"),
        (secret(client_id="hidden-value-1"), "missing key client_secret"),
        (secret(client_id="a", client_secret=12345678), "'client_secret' must be a non-empty string"),
        (secret(client_id="a", client_secret="   "), "'client_secret' must be a non-empty string"),
        (
            secret(client_id="a", IDCS_CLIENT_ID="hidden-value-1", client_secret="b"),
            "'client_id' twice",
        ),
    ],
)
def test_parse_credentials_when_malformed_names_the_problem_without_the_value(raw, problem):
    with pytest.raises(SecretError, match=problem) as caught:
        parse_credentials(raw)

    assert "hidden-value-1" not in str(caught.value)
    assert "12345678" not in str(caught.value)
    shown_context = caught.value.__context__ if not caught.value.__suppress_context__ else None
    assert caught.value.__cause__ is None and shown_context is None  # no chained error carries the text
