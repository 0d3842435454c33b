"""A local OCI for tests and the demo: the real `oci` SDK talks to it over HTTP on 127.0.0.1, unpatched.

    from tests.emulators.oci import OciEmulator

    with OciEmulator(root=tmp_path / "oci", namespace="emuns") as emu:   # or emu.start() ... emu.stop()
        emu.create_bucket("landing")
        client = oci.object_storage.ObjectStorageClient(emu.api_key_config(), service_endpoint=emu.endpoint)
        client.put_object("emuns", "landing", "a/b.csv", b"x")
        emu.object_path("landing", "a/b.csv").read_bytes()              # objects are real files

One server, one `emu.endpoint` ("http://127.0.0.1:<port>") for every service; each SDK client appends
its own base path. What it serves:

- Object Storage (`emu.objectstorage`): namespace, put/get/head/delete object (etag, opc-content-md5,
  opc-meta-*, if-match / if-none-match, Content-MD5, Range), list objects, multipart uploads, rename.
  Objects live under `root/<bucket>/<name>`; their metadata under `root/.meta`, parts under `root/.uploads`.
- Vault secret bundles (`emu.vault`): `emu.put_secret(name, content, vault_id=...) -> secret OCID`, then
  `SecretsClient.get_secret_bundle(id)` / `get_secret_bundle_by_name(name, vault_id)`.
- Monitoring (`emu.monitoring`): `MonitoringClient.post_metric_data(...)`; accepted data in `emu.metrics`.
- Other services: `emu.add_service(service)` serves `service.routes` (a list of http.Route), before or
  after start.

Authentication: every request must carry a valid OCI signature (`emu.reject_unsigned = True`, the
default), else 401 NotAuthenticated. Identities the emulator trusts:

- `emu.api_key_config()`: a config dict (user, tenancy, fingerprint, key_content, region) for clients;
  `emu.write_config_file(path, profile="DEFAULT")` writes the same as a config file plus `<path>.pem`.
- `emu.resource_principal_env(dir)`: env vars (OCI_RESOURCE_PRINCIPAL_VERSION=2.2, _RPST, _PRIVATE_PEM,
  _REGION, as file paths) so that `oci.auth.signers.get_resource_principals_signer()` works, e.g. inside
  a function process. The RPST is a JWT the emulator signed, carrying the session public key (`jwk`).

Errors are OCI's JSON `{"code", "message"}`; an operation the emulator does not serve gets 501
NotImplemented. `emu.served` lists every request as (method, raw path, status).
`emu.withhold("PutObject", principal=..., resource=...)` refuses an operation as a missing IAM grant would:
404 NotAuthorizedOrNotFound (grants.py).
`emu.inject_fault("GET", r"/n/.*/o/x[.]json", 503, "ServiceUnavailable", times=1)` answers the next
matching (signed) requests with that error.

Determinism: pass `clock=` (a fusion_extract.clock.Clock, e.g. tests.clocks.ManualClock) and `new_etag=`.
Start a manual clock at the real time (`ManualClock(datetime.now(UTC))`): the SDK dates requests by the
wall clock and the emulator refuses a date more than 5 minutes from its own clock.
"""

from tests.emulators.oci.emulator import COMPARTMENT, FUNCTION, TENANCY, USER, OciEmulator, Service
from tests.emulators.oci.http import OciHttpServer, Request, Response, Route, ServiceError

__all__ = [
    "COMPARTMENT",
    "FUNCTION",
    "TENANCY",
    "USER",
    "OciEmulator",
    "OciHttpServer",
    "Request",
    "Response",
    "Route",
    "Service",
    "ServiceError",
]
