"""VaultCredentials against the emulated Vault: decoding, caching, and errors that never show a value."""

import json

import pytest

from fusion_extract.errors import SecretError, TransientError
from fusion_extract.oci.vault import VaultCredentials
from tests.clocks import ManualClock
from tests.emulators.oci import OciEmulator
from tests.integration.oci_support import clients_for

SECRET_VALUE = "very-secret-value-42"


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def secrets(emu, tmp_path, clock):
    return clients_for(emu, tmp_path, clock).secrets


def bundle_reads(emu: OciEmulator) -> list[str]:
    return [path for method, path, _ in emu.served if path.startswith("/20190301/secretbundles/")]


def test_credentials_read_the_json_secret_once_per_ttl(emu, secrets, clock):
    # Given a secret with client credentials
    secret_id = emu.put_secret(
        "fusion", json.dumps({"client_id": "app", "client_secret": SECRET_VALUE}).encode()
    )
    source = VaultCredentials(secrets, secret_id, clock, ttl_seconds=300)

    # When they are asked for twice within the TTL, and once after it
    first = source.credentials()
    clock.advance(299)
    second = source.credentials()
    clock.advance(1)
    third = source.credentials()

    # Then the Vault is read twice, and the values are the secret's
    assert first == second == third
    assert (first.client_id, first.client_secret) == ("app", SECRET_VALUE)
    assert len(bundle_reads(emu)) == 2
    assert SECRET_VALUE not in repr(first)


def test_credentials_after_rotation_and_ttl_return_the_new_version(emu, secrets, clock):
    secret_id = emu.put_secret(
        "fusion", json.dumps({"client_id": "app", "client_secret": "old-secret"}).encode()
    )
    source = VaultCredentials(secrets, secret_id, clock, ttl_seconds=60)
    source.credentials()

    emu.put_secret("fusion", json.dumps({"client_id": "app", "client_secret": "new-secret"}).encode())
    clock.advance(61)

    assert source.credentials().client_secret == "new-secret"


def test_credentials_for_the_password_grant_accept_blog_style_keys(emu, secrets, clock):
    content = {
        "IDCS_CLIENT_ID": "app",
        "IDCS_CLIENT_SECRET": SECRET_VALUE,
        "USERNAME": "svc",
        "password": "pw-9",
    }
    secret_id = emu.put_secret("blog", json.dumps(content).encode())

    credentials = VaultCredentials(secrets, secret_id, clock, 300, grant="password").credentials()

    assert (credentials.username, credentials.password) == ("svc", "pw-9")


def test_credentials_when_the_secret_does_not_exist_raise_secret_error_naming_the_config_key(secrets, clock):
    source = VaultCredentials(secrets, "ocid1.vaultsecret.oc1..missing", clock, 300)

    with pytest.raises(SecretError, match=r"not found.*CREDENTIALS_SECRET_ID"):
        source.credentials()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (SECRET_VALUE.encode(), "not JSON"),
        (json.dumps({"client_id": "app"}).encode(), "missing key client_secret"),
        (json.dumps({"client_id": "app", "client_secret": ["x", SECRET_VALUE]}).encode(), "'client_secret'"),
    ],
)
def test_credentials_when_the_secret_is_malformed_name_the_key_never_the_value(
    emu, secrets, clock, content, problem
):
    source = VaultCredentials(secrets, emu.put_secret("bad", content), clock, 300)

    with pytest.raises(SecretError, match=problem) as caught:
        source.credentials()

    assert SECRET_VALUE not in str(caught.value)


def test_credentials_when_vault_is_unavailable_raise_transient(emu, tmp_path, clock):
    secrets = clients_for(emu, tmp_path, clock, HTTP_MAX_ATTEMPTS="1").secrets
    secret_id = emu.put_secret("fusion", json.dumps({"client_id": "a", "client_secret": "b"}).encode())
    emu.inject_fault("GET", r"/20190301/secretbundles/.*", 503, "ServiceUnavailable")

    with pytest.raises(TransientError, match="503"):
        VaultCredentials(secrets, secret_id, clock, 300).credentials()
