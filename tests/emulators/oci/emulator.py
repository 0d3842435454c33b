"""OciEmulator: one loopback HTTP server that plays Object Storage, Vault, Monitoring and whatever
services are plugged in, behind OCI request-signature checks, for the real `oci` SDK."""

from __future__ import annotations

import configparser
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from fusion_extract.clock import Clock, IdFactory, SystemClock
from tests.emulators.oci.auth import KEYS, RequestVerifier, private_pem
from tests.emulators.oci.buckets import Conditions
from tests.emulators.oci.grants import Grants
from tests.emulators.oci.http import Intercept, OciHttpServer, Request, Response, Route
from tests.emulators.oci.monitoring import Monitoring
from tests.emulators.oci.objectstorage import ObjectStorage
from tests.emulators.oci.vault import DEFAULT_VAULT_ID, Vault

TENANCY = "ocid1.tenancy.oc1..emutenancy"
USER = "ocid1.user.oc1..emuuser"
COMPARTMENT = "ocid1.compartment.oc1..emucompartment"
FUNCTION = "ocid1.fnfunc.oc1..emufunction"


class Service(Protocol):
    @property
    def routes(self) -> list[Route]: ...


def _uuid() -> str:
    return str(uuid.uuid4())


class OciEmulator:
    """A small OCI on 127.0.0.1. Start it, point clients at `endpoint`, stop it (or use `with`)."""

    def __init__(
        self,
        root: Path,
        namespace: str = "emuns",
        *,
        region: str = "eu-frankfurt-1",
        clock: Clock | None = None,
        new_etag: IdFactory = _uuid,
    ) -> None:
        self.region = region
        self._keys: dict[str, rsa.RSAPrivateKey] = {}  # borrowed from KEYS, given back by stop()
        self._keys_lock = threading.Lock()
        self._routes: list[Route] = []
        self.grants = Grants()  # one for the emulator's life: in-process services hold it (scheduler.py)
        self._server = OciHttpServer(self._routes, authenticate=self._authenticate, authorize=self._authorize)
        self.reset(root, namespace, clock=clock, new_etag=new_etag)

    def reset(
        self,
        root: Path,
        namespace: str = "emuns",
        *,
        clock: Clock | None = None,
        new_etag: IdFactory = _uuid,
    ) -> OciEmulator:
        """Start afresh on the running server (same endpoint, same keys), as a new emulator would: Object
        Storage empty under `root`, no secret, no metric, no other service plugged in, no fault, nothing
        served, signatures checked, every grant given, no API key trusted yet, on `clock` (real time by
        default). The keys stay the emulator's, so a resource-principal token it issued before still
        verifies until it expires."""
        self.root = Path(root)
        self.namespace = namespace
        self.clock = clock or SystemClock()
        self.reject_unsigned = True
        self.verifier = RequestVerifier(self.clock, issuer_key=lambda: self._key("issuer"))
        self.objectstorage = ObjectStorage(self.root, self.namespace, self.clock, new_etag)
        self.vault = Vault(self.clock, COMPARTMENT)
        self.monitoring = Monitoring(COMPARTMENT)
        self._api_key: dict[str, str] | None = None
        self.grants.restore()
        self._routes.clear()
        self._server.reset()
        for service in (self.objectstorage, self.vault, self.monitoring):
            self.add_service(service)
        return self

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self._server.endpoint

    def start(self) -> OciEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        with self._keys_lock:
            keys, self._keys = list(self._keys.values()), {}
        KEYS.give_back(keys)

    def __enter__(self) -> OciEmulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def add_service(self, service: Service) -> None:
        """Serve another service's routes too (before or after start)."""
        self._routes.extend(service.routes)

    def inject_fault(
        self, method: str, path: str, status: int, code: str, times: int = 1, *, after_handling: bool = False
    ) -> None:
        """Answer the next `times` signed requests matching method and raw-path regex with an error;
        `after_handling`: apply each request first, then answer the error (a write that took effect)."""
        self._server.inject_fault(method, path, status, code, times, after_handling=after_handling)

    def withhold(self, operation: str, *, principal: str | None = None, resource: str | None = None) -> None:
        """Refuse an operation as OCI does when no policy grants it (grants.py), until reset."""
        self.grants.withhold(operation, principal=principal, resource=resource)

    def intercept(self, method: str | None, path: str, hook: Intercept) -> None:
        """Call `hook(request, serve)` for every signed request matching method (None: any) and raw-path
        regex, until reset: it may answer an error instead, serve then answer an error, or run a callback
        (kill a process) before answering."""
        self._server.intercept(method, path, hook)

    def restart_objectstorage(self) -> None:
        """Object Storage as after a restart of the emulator's process: what is on disk (objects, their
        metadata) stays, what was only in memory (open multipart uploads' bookkeeping) is gone."""
        old = self.objectstorage
        self.objectstorage = ObjectStorage(self.root, self.namespace, self.clock, old.store.new_etag)
        self._routes[:] = [route for route in self._routes if route not in old.routes]
        self.add_service(self.objectstorage)

    @property
    def served(self) -> list[tuple[str, str, int]]:
        """Every request served so far: (method, raw path, status)."""
        return self._server.served

    @property
    def connections(self) -> int:
        """Connections accepted since the emulator started (not forgotten by `reset`)."""
        return self._server.connections

    # -- Object Storage, Vault, Monitoring state ---------------------------------------------------

    def create_bucket(self, name: str) -> None:
        self.objectstorage.create_bucket(name)

    def put_object(self, bucket: str, name: str, data: bytes) -> None:
        """Write an object as a deployment tool would (Terraform's oci_objectstorage_object: PutObject)."""
        store = self.objectstorage.store
        received = store.receive([data])
        store.commit(bucket, name, received, Conditions(), md5=received.md5_base64)

    def object_path(self, bucket: str, name: str) -> Path:
        """Where a person finds the object's bytes on disk."""
        return self.objectstorage.object_path(bucket, name)

    def put_secret(self, name: str, content: bytes, vault_id: str = DEFAULT_VAULT_ID) -> str:
        """Store a secret (a new version if the name exists); returns its OCID."""
        return self.vault.put_secret(name, content, vault_id)

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """Every accepted MetricDataDetails, as posted (camelCase JSON)."""
        return self.monitoring.metrics

    # -- credentials -------------------------------------------------------------------------------

    def api_key_config(self) -> dict[str, str]:
        """An OCI config dict (API key) whose key the emulator trusts."""
        if self._api_key is None:
            key = self._key("api")
            fingerprint = self.verifier.trust_api_key(TENANCY, USER, key.public_key())
            self._api_key = {
                "user": USER,
                "tenancy": TENANCY,
                "fingerprint": fingerprint,
                "key_content": private_pem(key),
                "region": self.region,
            }
        return dict(self._api_key)

    def write_config_file(self, path: Path, profile: str = "DEFAULT") -> Path:
        """Write (or add a profile to) an OCI config file, with the key beside it as `<name>.pem`."""
        config = self.api_key_config()
        key_file = path.with_name(path.name + ".pem")
        key_file.write_text(config.pop("key_content"))
        key_file.chmod(0o600)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path)
        parser[profile] = {**config, "key_file": str(key_file)}
        with path.open("w") as out:
            parser.write(out)
        return path

    def resource_principal_env(
        self,
        directory: Path,
        *,
        compartment: str = COMPARTMENT,
        resource_id: str = FUNCTION,
        lifetime: timedelta = timedelta(hours=1),
    ) -> dict[str, str]:
        """Env vars for `oci.auth.signers.get_resource_principals_signer()` (version 2.2, file mode)
        holding a session key and an RPST this emulator issued and trusts until it expires."""
        directory.mkdir(parents=True, exist_ok=True)
        session_key = self._key("session")
        rpst = self.verifier.issue_rpst(
            session_key.public_key(),
            tenancy=TENANCY,
            compartment=compartment,
            resource_id=resource_id,
            lifetime=lifetime,
        )
        rpst_file, pem_file = directory / "rpst", directory / "private.pem"
        rpst_file.write_text(rpst)
        pem_file.write_text(private_pem(session_key))
        pem_file.chmod(0o600)
        return {
            "OCI_RESOURCE_PRINCIPAL_VERSION": "2.2",
            "OCI_RESOURCE_PRINCIPAL_RPST": str(rpst_file),
            "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM": str(pem_file),
            "OCI_RESOURCE_PRINCIPAL_REGION": self.region,
        }

    def _key(self, purpose: str) -> rsa.RSAPrivateKey:
        """This emulator's key for a purpose: the API key, the RPST issuer's, the session key."""
        with self._keys_lock:
            if purpose not in self._keys:
                self._keys[purpose] = KEYS.borrow()
            return self._keys[purpose]

    def _authenticate(self, request: Request) -> str | None:
        return self.verifier.verify(request) if self.reject_unsigned else None

    def _authorize(self, request: Request) -> Response | None:
        principal = self.verifier.principal(request) if self.reject_unsigned else None
        return self.grants.refusal(request, principal)
