"""Vault secret bundles in the OCI emulator, read with the real SecretsClient."""

from __future__ import annotations

import base64

import oci
import pytest

VAULT = "ocid1.vault.oc1..emu"


@pytest.fixture
def secrets(emu) -> oci.secrets.SecretsClient:
    return oci.secrets.SecretsClient(emu.api_key_config(), service_endpoint=emu.endpoint)


def content(bundle: oci.secrets.models.SecretBundle) -> bytes:
    assert bundle.secret_bundle_content.content_type == "BASE64"
    return base64.b64decode(bundle.secret_bundle_content.content)


def not_found(call, *args, **kwargs) -> oci.exceptions.ServiceError:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        call(*args, **kwargs)
    assert (caught.value.status, caught.value.code) == (404, "NotAuthorizedOrNotFound")
    return caught.value


def test_get_secret_bundle_returns_base64_content_of_current_version(emu, secrets, clock):
    # Given a secret
    secret_id = emu.put_secret("fusion-client", b'{"client_id":"c","client_secret":"s"}')
    # When its bundle is read
    bundle = secrets.get_secret_bundle(secret_id).data
    # Then it is the current version, base64-encoded
    assert content(bundle) == b'{"client_id":"c","client_secret":"s"}'
    assert (bundle.secret_id, bundle.version_number) == (secret_id, 1)
    assert bundle.stages == ["CURRENT", "LATEST"]
    assert bundle.time_created == clock.now()


def test_get_secret_bundle_by_name_finds_secret_in_its_vault(emu, secrets):
    # Given secrets of the same name in two vaults
    emu.put_secret("fusion-client", b"first vault", vault_id=VAULT)
    emu.put_secret("fusion-client", b"second vault", vault_id="ocid1.vault.oc1..other")
    # When read by name in one vault
    bundle = secrets.get_secret_bundle_by_name("fusion-client", VAULT).data
    # Then that vault's secret comes back
    assert content(bundle) == b"first vault"


def test_put_secret_again_adds_version_and_keeps_previous(emu, secrets):
    # Given a secret rotated once
    secret_id = emu.put_secret("pw", b"old")
    assert emu.put_secret("pw", b"new") == secret_id
    # When current, previous and a numbered version are read
    current = secrets.get_secret_bundle(secret_id).data
    previous = secrets.get_secret_bundle(secret_id, stage="PREVIOUS").data
    first = secrets.get_secret_bundle(secret_id, version_number=1).data
    # Then each is the right version
    assert (content(current), current.version_number) == (b"new", 2)
    assert (content(previous), previous.stages) == (b"old", ["PREVIOUS"])
    assert content(first) == b"old"


def test_get_secret_bundle_unknown_secret_name_or_vault_is_404(emu, secrets):
    # Given one secret
    emu.put_secret("pw", b"x")
    # When unknown ids, names and vaults are asked for
    errors = [
        not_found(secrets.get_secret_bundle, "ocid1.vaultsecret.oc1..missing"),
        not_found(secrets.get_secret_bundle_by_name, "other", VAULT),
        not_found(secrets.get_secret_bundle_by_name, "pw", "ocid1.vault.oc1..missing"),
    ]
    # Then each is 404 with a message naming what was missing
    assert all(error.message for error in errors)


def test_get_secret_bundle_stage_without_version_is_404(emu, secrets):
    # Given a secret with a single version
    secret_id = emu.put_secret("pw", b"x")
    # When a stage it has no version in is asked for
    error = not_found(secrets.get_secret_bundle, secret_id, stage="PREVIOUS")
    # Then the version is not found
    assert "no such version" in error.message


def test_put_secret_larger_than_bundle_limit_is_refused(emu):
    # When a secret over OCI's 25 KB bundle limit is stored
    with pytest.raises(ValueError, match="25600"):
        emu.put_secret("huge", b"x" * 25_601)
