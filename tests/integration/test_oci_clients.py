"""OciClients: both auth paths reach the emulator, which checks every request's signature; the
environment's proxy and CA bundle settings are read once, when a client is built."""

from collections.abc import Iterator

import pytest

from fusion_extract.config import Settings
from fusion_extract.errors import ConfigError, UpstreamError
from fusion_extract.oci.clients import OciClients
from fusion_extract.runtime import runtime_for
from tests.clocks import ManualClock
from tests.emulators.forward_proxy import ForwardProxy
from tests.emulators.fusion.tls import write_tls_files
from tests.emulators.loopback import LoopbackServer, Response
from tests.emulators.oci import OciEmulator
from tests.integration.oci_support import BUCKET, NAMESPACE, clients_for, emulator_env, store_for

PROXY_VARIABLES = [f"{scheme}_proxy" for scheme in ("http", "https", "all", "no")]
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


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForwardProxy]:
    """A forward proxy on loopback, and an environment that names no proxy (the machine's cleared)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    with ForwardProxy() as started:
        yield started


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_a_proxy_the_environment_names_when_a_client_is_built_carries_its_requests(
    emu, tmp_path, proxy, monkeypatch, variable
):
    # Given the environment names a proxy for the endpoint's scheme, or for every scheme
    monkeypatch.setenv(variable, proxy.url)

    # When the clients look the namespace up and write an object
    store_for(clients_for(emu, tmp_path)).put_bytes("proxied", b"row\n")

    # Then both requests went through the proxy, and the service accepted them as signed
    objects = f"{emu.endpoint}/n/{NAMESPACE}/b/{BUCKET}/o"
    assert proxy.forwarded == [("GET", f"{emu.endpoint}/n"), ("PUT", f"{objects}/proxied")]
    assert [status for *_, status in emu.served] == [200, 200]


def test_no_proxy_naming_the_endpoints_host_bypasses_the_proxy(emu, tmp_path, proxy, monkeypatch):
    # Given a proxy for every http request, except to the hosts NO_PROXY names
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "objectstorage.example.com,127.0.0.1")

    # When the clients look the namespace up
    namespace = clients_for(emu, tmp_path).namespace

    # Then the request went straight to the service
    assert namespace == NAMESPACE
    assert proxy.forwarded == []
    assert emu.served == [("GET", "/n", 200)]


def test_the_environment_is_read_when_a_client_is_built_not_at_each_request(
    emu, tmp_path, proxy, monkeypatch
):
    # Given a store whose client was built while the environment named no proxy
    store = store_for(clients_for(emu, tmp_path, BUCKET_NAMESPACE=NAMESPACE))
    store.put_bytes("before", b"1")

    # When a proxy is named afterwards, and the store writes again
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    store.put_bytes("after", b"2")

    # Then the client did not look again (reading the environment per request cost CPU every time)
    assert proxy.forwarded == []
    assert [path for _, path, _ in emu.served] == [
        f"/n/{NAMESPACE}/b/{BUCKET}/o/{name}" for name in ("before", "after")
    ]


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_ca_bundle_the_environment_names_is_what_https_requests_trust(emu, tmp_path, monkeypatch, variable):
    # Given an HTTPS endpoint whose certificate a throwaway CA signed, and that CA the environment's bundle
    tls = write_tls_files(tmp_path / "tls")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tls.ca_path))
    server = LoopbackServer(
        "https-namespace", lambda _: Response.json(200, "tlsns"), tls=tls.server_context()
    )

    # When the clients look the namespace up there
    with_server = server.start()
    try:
        namespace = clients_for(emu, tmp_path, OCI_OBJECTSTORAGE_ENDPOINT=with_server.url).namespace
    finally:
        server.stop()

    # Then the certificate was verified against that bundle (the system's would refuse it)
    assert namespace == "tlsns"
