"""The one place that builds OCI SDK clients: auth, endpoints, timeouts, retry and circuit breaker.

Clients are built lazily, once per `OciClients` (one per function container), so a step pays only for
the services it uses. Auth is the function's resource principal in the cloud, or an API-key config file
(local runs, CI). Every endpoint can be overridden by config, which is how the emulator is reached.

Retry (see calls.py): Object Storage and Vault reads/writes get `BoundedRetry` bounded by
HTTP_MAX_ATTEMPTS / HTTP_MAX_RETRY_SECONDS; the adapters only ever hand bytes to these calls, never a
stream or generator, because a retried stream body would be resent half-read. Publishing and invoking are
not idempotent, so they get one retry only (a duplicate is deduped downstream; a lost message is not).
No circuit breaker: the SDK default is one process-wide breaker shared by every client (calls.py).

The environment's proxy and CA bundle settings are read once, when a client is built, for its one endpoint
(`settings_from_environment`): the SDK's HTTP session would otherwise read the whole environment for proxy
variables twice per request, a cost that grows with the function's configuration.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import oci
from oci._vendor.requests.utils import get_environ_proxies

from fusion_extract.clock import Clock, SystemClock
from fusion_extract.config import Settings
from fusion_extract.errors import ConfigError
from fusion_extract.oci.calls import BoundedRetry, translated
from fusion_extract.retry import RetryPolicy

# One retry for calls that must not be repeated blindly (see the module docstring).
SEND_ONCE_ATTEMPTS = 2


def signer_and_config(settings: Settings) -> tuple[dict[str, Any], Any]:
    """The SDK config dict and request signer for Settings.oci_auth; ConfigError names what is wrong."""
    if settings.oci_auth == "resource_principal":
        try:
            return {}, oci.auth.signers.get_resource_principals_signer()
        except (OSError, ValueError, oci.exceptions.ClientError) as exc:
            raise ConfigError(
                f"OCI_AUTH=resource_principal but no resource principal is usable: {exc}"
            ) from exc
    if settings.oci_auth == "instance_principal":
        try:
            return {}, oci.auth.signers.InstancePrincipalsSecurityTokenSigner()
        except Exception as exc:  # the metadata service is unreachable off an OCI instance
            raise ConfigError(
                f"OCI_AUTH=instance_principal but no instance principal is usable: {exc}"
            ) from exc
    path = str(Path(settings.oci_config_file).expanduser())
    try:
        config = oci.config.from_file(path, settings.oci_config_profile)
        signer = oci.signer.Signer.from_config(config)  # runs oci.config.validate_config first
    except (OSError, ValueError, oci.exceptions.ClientError) as exc:
        raise ConfigError(
            f"OCI_CONFIG_FILE {path} profile {settings.oci_config_profile} is not usable: {exc}"
        ) from exc
    return config, signer


def settings_from_environment(session: Any, endpoint: str) -> None:
    """What the SDK's session took from the environment on every request, taken once for `endpoint`.

    The proxy (HTTPS_PROXY or ALL_PROXY, unless NO_PROXY covers the endpoint) and the CA bundle
    (REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE) are set on the session, which then stops reading the
    environment. That was all it read: .netrc only ever supplies credentials to a request without any,
    and every SDK request is signed.
    """
    scheme = urlsplit(endpoint).scheme
    proxies = get_environ_proxies(endpoint)
    proxy = proxies.get(scheme) or proxies.get("all")
    if proxy:
        session.proxies[scheme] = proxy
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False


class OciClients:
    """Builds each SDK client on first use, with the product's auth, endpoints and retry choices."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()

    @cached_property
    def _auth(self) -> tuple[dict[str, Any], Any]:
        return signer_and_config(self.settings)

    def _client(self, cls: Any, endpoint: str | None, attempts: int) -> Any:
        config, signer = self._auth
        policy = RetryPolicy(
            self.clock, max_attempts=attempts, max_seconds=self.settings.http_max_retry_seconds
        )
        client = cls(
            config,
            signer=signer,
            service_endpoint=endpoint,
            timeout=(self.settings.connect_timeout, self.settings.read_timeout),
            retry_strategy=BoundedRetry(policy),
            circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
        )
        settings_from_environment(client.base_client.session, client.base_client.endpoint)
        return client

    @cached_property
    def object_storage(self) -> Any:
        return self._client(
            oci.object_storage.ObjectStorageClient,
            self.settings.objectstorage_endpoint,
            self.settings.http_max_attempts,
        )

    @cached_property
    def secrets(self) -> Any:
        return self._client(
            oci.secrets.SecretsClient, self.settings.secrets_endpoint, self.settings.http_max_attempts
        )

    @cached_property
    def notifications(self) -> Any:
        return self._client(
            oci.ons.NotificationDataPlaneClient, self.settings.notifications_endpoint, SEND_ONCE_ATTEMPTS
        )

    @cached_property
    def functions_invoke(self) -> Any:
        # Not a regional service: the SDK needs the function's invoke endpoint.
        if not self.settings.functions_endpoint:
            raise ConfigError("OCI_FUNCTIONS_ENDPOINT is missing (the invoke endpoint of the functions)")
        return self._client(
            oci.functions.FunctionsInvokeClient, self.settings.functions_endpoint, SEND_ONCE_ATTEMPTS
        )

    @cached_property
    def monitoring(self) -> Any:
        """PostMetricData goes to the telemetry-ingestion endpoint, not the SDK's default telemetry one."""
        endpoint = (
            self.settings.monitoring_endpoint or f"https://telemetry-ingestion.{self.region}.oraclecloud.com"
        )
        return self._client(oci.monitoring.MonitoringClient, endpoint, SEND_ONCE_ATTEMPTS)

    @cached_property
    def region(self) -> str:
        config, signer = self._auth
        region = config.get("region") or getattr(signer, "region", None)
        if not region:
            raise ConfigError(
                "the OCI region is unknown (neither the config file nor the principal names one)"
            )
        return str(region)

    @cached_property
    def namespace(self) -> str:
        """BUCKET_NAMESPACE, or the tenancy's namespace looked up once."""
        if self.settings.namespace:
            return self.settings.namespace
        with translated("get the Object Storage namespace"):
            return str(self.object_storage.get_namespace().data)
