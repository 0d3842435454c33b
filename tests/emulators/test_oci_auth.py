"""Request signatures in the OCI emulator: what the real SDK signs is accepted, anything else is 401."""

from __future__ import annotations

import json
from datetime import timedelta

import jwt
import oci
import pytest
import requests

from tests.emulators.oci import TENANCY
from tests.emulators.oci.auth import new_private_key, private_pem

ObjectStorageClient = oci.object_storage.ObjectStorageClient


def signer_for(config: dict[str, str]) -> oci.signer.Signer:
    return oci.signer.Signer(
        config["tenancy"],
        config["user"],
        config["fingerprint"],
        None,
        private_key_content=config["key_content"],
    )


def refusal(call, *args, **kwargs) -> oci.exceptions.ServiceError:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        call(*args, **kwargs)
    assert (caught.value.status, caught.value.code) == (401, "NotAuthenticated")
    return caught.value


def test_api_key_config_client_is_accepted(emu):
    # Given a client built from the emulator's API key config
    client = ObjectStorageClient(emu.api_key_config(), service_endpoint=emu.endpoint)
    # When it calls the service
    namespace = client.get_namespace().data
    # Then the signed request is served
    assert namespace == "emuns"


def test_client_with_different_private_key_is_refused(emu):
    # Given a config naming the trusted user and fingerprint but holding another private key
    forged = {**emu.api_key_config(), "key_content": private_pem(new_private_key())}
    client = ObjectStorageClient(forged, service_endpoint=emu.endpoint)
    # When it calls the service
    error = refusal(client.get_namespace)
    # Then the signature does not verify
    assert "does not verify" in error.message


def test_unknown_key_id_is_refused(emu):
    # Given a config whose fingerprint the emulator never registered
    config = {**emu.api_key_config(), "fingerprint": "00:" * 15 + "00"}
    # When it calls the service
    error = refusal(ObjectStorageClient(config, service_endpoint=emu.endpoint).get_namespace)
    # Then the keyId is unknown
    assert "unknown keyId" in error.message


def test_unsigned_request_is_refused_unless_checks_are_off(emu):
    # When an unsigned request arrives, with checks on and then off
    refused = requests.get(f"{emu.endpoint}/n", timeout=5)
    emu.reject_unsigned = False
    allowed = requests.get(f"{emu.endpoint}/n", timeout=5)
    # Then the first is 401 NotAuthenticated and the second is served
    assert (refused.status_code, refused.json()["code"]) == (401, "NotAuthenticated")
    assert (allowed.status_code, allowed.json()) == (200, "emuns")


def test_body_changed_after_signing_is_refused(emu):
    # Given a metrics POST signed by the trusted key, whose body is swapped after signing
    body: dict[str, list[object]] = {"metricData": []}
    prepared = requests.Request(
        "POST", f"{emu.endpoint}/20180401/metrics", json=body, auth=signer_for(emu.api_key_config())
    ).prepare()
    prepared.body = json.dumps({"metricData": [{"tampered": True}]}).encode()
    # When it is sent
    with requests.Session() as session:
        answer = session.send(prepared, timeout=5)
    # Then the body digest does not match
    assert answer.status_code == 401
    assert "x-content-sha256" in answer.json()["message"]


def test_post_without_signed_body_headers_is_refused(emu):
    # Given a POST signed over the base headers only (as if the body did not matter)
    signer = signer_for(emu.api_key_config())
    prepared = requests.Request("POST", f"{emu.endpoint}/20180401/metrics", json={"metricData": []}).prepare()
    signer.do_request_sign(prepared, enforce_content_headers=False)
    # When it is sent
    with requests.Session() as session:
        answer = session.send(prepared, timeout=5)
    # Then the missing body headers are named
    assert answer.status_code == 401
    assert "x-content-sha256" in answer.json()["message"]


def test_request_dated_beyond_five_minutes_is_refused(emu, clock):
    # Given the emulator's clock six minutes ahead of the client's
    client = ObjectStorageClient(emu.api_key_config(), service_endpoint=emu.endpoint)
    clock.advance(6 * 60)
    # When the client calls
    error = refusal(client.get_namespace)
    # Then the date is out of range
    assert "date header" in error.message


def test_config_file_profile_is_accepted(emu, tmp_path):
    # Given an OCI config file written by the emulator, with a second profile
    path = emu.write_config_file(tmp_path / "config")
    emu.write_config_file(path, profile="EMU")
    # When the SDK loads a profile from it and calls the service
    config = oci.config.from_file(str(path), "EMU")
    namespace = ObjectStorageClient(config, service_endpoint=emu.endpoint).get_namespace().data
    # Then it is accepted, with the key read from the key file
    assert namespace == "emuns"
    assert "key_file" in config


def test_resource_principal_signer_is_accepted(emu, tmp_path, monkeypatch):
    # Given a function-like environment from the emulator
    for name, value in emu.resource_principal_env(tmp_path / "rp").items():
        monkeypatch.setenv(name, value)
    # When the production code path builds a resource principal signer and calls the service
    signer = oci.auth.signers.get_resource_principals_signer()
    namespace = ObjectStorageClient({}, signer=signer, service_endpoint=emu.endpoint).get_namespace().data
    # Then the ST$ token signature is accepted, for the emulator's tenancy and region
    assert namespace == "emuns"
    assert signer.region == emu.region
    assert signer.get_claim("res_tenant") == TENANCY


def test_expired_resource_principal_token_is_refused(emu, clock, tmp_path, monkeypatch):
    # Given a resource principal whose token lives two minutes, and an emulator clock three minutes on
    for name, value in emu.resource_principal_env(tmp_path / "rp", lifetime=timedelta(minutes=2)).items():
        monkeypatch.setenv(name, value)
    signer = oci.auth.signers.get_resource_principals_signer()
    clock.advance(3 * 60)  # still within the 5-minute date tolerance
    # When it calls the service
    error = refusal(ObjectStorageClient({}, signer=signer, service_endpoint=emu.endpoint).get_namespace)
    # Then the token is expired
    assert "expired" in error.message


def test_security_token_not_issued_by_emulator_is_refused(emu, tmp_path):
    # Given a session token minted with someone else's key
    session_key = new_private_key()
    token = jwt.encode(
        {"res_tenant": TENANCY, "res_compartment": "c", "iat": 0, "exp": 2**31, "jwk": "{}"},
        private_pem(new_private_key()),
        algorithm="RS256",
    )
    signer = oci.auth.signers.SecurityTokenSigner(token, session_key)
    # When a client signs with it
    error = refusal(ObjectStorageClient({}, signer=signer, service_endpoint=emu.endpoint).get_namespace)
    # Then the token is not trusted
    assert "not issued by this emulator" in error.message


def test_unknown_operation_is_501_naming_it_in_oci_error_shape(emu):
    # Given a correctly signed request to a path no service serves
    signer = signer_for(emu.api_key_config())
    # When it is sent
    answer = requests.get(f"{emu.endpoint}/20990101/nothing", auth=signer, timeout=5)
    # Then 501 NotImplemented naming the operation (a 404 would read like an authorization failure)
    assert answer.status_code == 501
    assert answer.json() == {
        "code": "NotImplemented",
        "message": "the OCI emulator does not implement GET /20990101/nothing",
    }
