"""OciClients: both auth paths reach the emulator, which checks every request's signature."""

import pytest

from fusion_extract.config import Settings
from fusion_extract.errors import ConfigError, UpstreamError
from fusion_extract.oci.clients import OciClients
from fusion_extract.runtime import runtime_for
from tests.clocks import ManualClock
from tests.emulators.oci import OciEmulator
from tests.integration.oci_support import NAMESPACE, clients_for, emulator_env

RP_VARIABLES = (
    "OCI_RESOURCE_PRINCIPAL_VERSION",
    "OCI_RESOURCE_PRINCIPAL_RPST",
    "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM",
    "OCI_RESOURCE_PRINCIPAL_REGION",
)


def test_config_file_auth_signs_requests_the_emulator_accepts(emu, tmp_path):
    clients = clients_for(emu, tmp_path)

    assert clients.namespace == NAMESPACE
    assert emu.served == [("GET", "/n", 200)]


def test_namespace_from_config_is_used_without_a_lookup(emu, tmp_path):
    clients = clients_for(emu, tmp_path, BUCKET_NAMESPACE="configured")

    assert clients.namespace == "configured"
    assert emu.served == []


def test_resource_principal_auth_signs_requests_the_emulator_accepts(emu, tmp_path, monkeypatch):
    # Given the environment a function container gets
    for name, value in emu.resource_principal_env(tmp_path / "rp").items():
        monkeypatch.setenv(name, value)
    env = emulator_env(emu, tmp_path, OCI_AUTH="resource_principal")

    # When the clients call Object Storage
    namespace = OciClients(Settings.from_mapping(env), ManualClock()).namespace

    # Then the request was signed with the resource principal session and accepted
    assert namespace == NAMESPACE
    assert emu.served == [("GET", "/n", 200)]


def test_resource_principal_auth_outside_a_function_raises_config_error(emu, tmp_path, monkeypatch):
    for name in RP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    clients = clients_for(emu, tmp_path, OCI_AUTH="resource_principal")

    with pytest.raises(ConfigError, match="no resource principal is usable"):
        clients.object_storage  # noqa: B018 (building the client is the point)


def test_config_file_auth_with_a_missing_profile_raises_config_error_naming_it(emu, tmp_path):
    clients = clients_for(emu, tmp_path, OCI_CONFIG_PROFILE="NOPE")

    with pytest.raises(ConfigError, match="profile NOPE is not usable"):
        clients.secrets  # noqa: B018


def test_requests_signed_by_an_unknown_key_are_refused(emu, tmp_path):
    # Given an API key that another emulator trusts, not this one
    (tmp_path / "other").mkdir()
    stranger = OciEmulator(root=tmp_path / "other" / "oci")
    env = emulator_env(stranger, tmp_path / "other", OCI_OBJECTSTORAGE_ENDPOINT=emu.endpoint)
    clients = OciClients(Settings.from_mapping(env), ManualClock())

    with pytest.raises(UpstreamError, match="401 NotAuthenticated"):
        clients.namespace  # noqa: B018

    assert emu.served == [("GET", "/n", 401)]


def test_functions_client_without_an_invoke_endpoint_raises_config_error(emu, tmp_path):
    clients = clients_for(emu, tmp_path, OCI_FUNCTIONS_ENDPOINT="")

    with pytest.raises(ConfigError, match="OCI_FUNCTIONS_ENDPOINT"):
        clients.functions_invoke  # noqa: B018


def test_a_warm_containers_invocations_share_one_signer_and_reuse_its_connections(emu, tmp_path):
    # Given a function container's configuration (fdk hands every invocation the same environment)
    env = emulator_env(emu, tmp_path, BUCKET_NAMESPACE=NAMESPACE)
    accepted, signers = emu.connections, set()

    # When three invocations each write small objects and one in parallel parts
    for invocation in range(3):
        runtime = runtime_for(env)
        for n in range(5):
            runtime.store.put_bytes(f"_staging/{invocation}/{n}", b"row\n")
        part = runtime.settings.upload_part_mb * 2**20
        runtime.store.upload_stream(f"_staging/{invocation}/big", [bytes(4 * part)])
        signers.add(id(runtime.oci.object_storage.base_client.signer))

    # Then the key was loaded into one signer, and the 33 requests went over no more connections than
    # the parallel uploads need (a new client per invocation would open them again each time)
    assert len(signers) == 1
    assert len(emu.served) == 33  # 5 puts, and a multipart upload of 4 parts, each time
    assert emu.connections - accepted <= runtime.settings.upload_parallelism
