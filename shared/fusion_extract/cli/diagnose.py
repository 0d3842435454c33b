"""Why a target cannot be used, told apart: a name that does not resolve, a refused or silent connection, a
certificate not trusted, and the 401, 403 and 404 a service answers, each with the fix for that cause.

`doctor` reaches every endpoint its checks need once, all at once and within seconds, before it calls any
of them: a check whose endpoint cannot be reached fails at once with the cause, instead of retrying a
connection that cannot succeed.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urlsplit

from fusion_extract.errors import CatalogMissingError, ConfigError

REACH_SECONDS = 4.0  # each endpoint's DNS, connect and TLS handshake, all endpoints at once
_STATUS = re.compile(r"\b(401|403|404)\b")


@dataclass(frozen=True)
class Endpoint:
    """A URL a check calls, and the configuration key that sets it (or the default it falls back on)."""

    key: str
    url: str
    ca_bundle: str | None = None  # what the caller trusts (Fusion's CA_BUNDLE); None: the usual CAs

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class Diagnosis:
    cause: str  # dns, refused, timeout, unreachable, tls, 401, 403, 404, config
    detail: str
    fix: str
    unusable: bool = True  # nothing of the target can be used (the "target unusable" exit code)


def reach_all(endpoints: Iterable[Endpoint], seconds: float = REACH_SECONDS) -> dict[str, Diagnosis]:
    """Each endpoint that cannot be reached, by URL, with why; all reached in parallel, so the whole takes
    about `seconds` however many there are (a name lookup that hangs counts as a timeout)."""
    distinct = {endpoint.url: endpoint for endpoint in endpoints if endpoint.host}
    if not distinct:
        return {}
    pool = ThreadPoolExecutor(max_workers=len(distinct), thread_name_prefix="doctor-reach")
    futures = {url: pool.submit(reach, endpoint, seconds) for url, endpoint in distinct.items()}
    wait(futures.values(), timeout=seconds + 1)
    pool.shutdown(wait=False, cancel_futures=True)  # a lookup that hangs is left behind, not waited for
    found = {}
    for url, future in futures.items():
        diagnosis = future.result() if future.done() else _timed_out(distinct[url], seconds)
        if diagnosis is not None:
            found[url] = diagnosis
    return found


def reach(endpoint: Endpoint, seconds: float = REACH_SECONDS) -> Diagnosis | None:
    """None when the endpoint's name resolves, it accepts a connection and (https) its certificate is
    trusted; else the first of these that failed."""
    host, port, key = endpoint.host, endpoint.port, endpoint.key
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return Diagnosis(
            "dns",
            f"{host} does not resolve ({exc.strerror})",
            f"check the host name in {key} (spelling, region) and this machine's DNS or proxy",
        )
    try:
        connection = socket.create_connection((host, port), timeout=seconds)
    except ConnectionRefusedError:
        return Diagnosis(
            "refused",
            f"{host}:{port} refused the connection: nothing listens there",
            f"check the port in {key} and that the service runs (locally: `make emulator`, then --local)",
        )
    except TimeoutError:
        return _timed_out(endpoint, seconds)
    except OSError as exc:
        return Diagnosis(
            "unreachable",
            f"{host}:{port} cannot be reached ({exc.strerror or exc})",
            f"check {key} and this machine's network route (VPN, proxy)",
        )
    with connection:
        if urlsplit(endpoint.url).scheme != "https":
            return None
        return _handshake(endpoint, connection, seconds)


def _handshake(endpoint: Endpoint, connection: socket.socket, seconds: float) -> Diagnosis | None:
    host, key = endpoint.host, endpoint.key
    trust = (
        f"set CA_BUNDLE to the CA that signed {host}'s certificate"
        if endpoint.ca_bundle is not None or key in ("FUSION_BASE_URL", "IDCS_URL")
        else "a proxy that intercepts TLS must be trusted (REQUESTS_CA_BUNDLE)"
    )
    try:
        context = ssl.create_default_context(cafile=endpoint.ca_bundle)
        connection.settimeout(seconds)
        with context.wrap_socket(connection, server_hostname=host):
            return None
    except ssl.SSLCertVerificationError as exc:
        return Diagnosis(
            "tls",
            f"{host}'s certificate is not trusted: {exc.verify_message}",
            f"{trust}; or check that {key} names the host the certificate is for",
        )
    except (ssl.SSLError, OSError) as exc:
        return Diagnosis(
            "tls",
            f"the TLS handshake with {host} failed: {exc}",
            f"check that {key} is an https endpoint; {trust}",
        )


def _timed_out(endpoint: Endpoint, seconds: float) -> Diagnosis:
    return Diagnosis(
        "timeout",
        f"{endpoint.host}:{endpoint.port} did not answer within {seconds:g} s",
        f"a firewall, proxy or VPN drops the connection, or {endpoint.key} names the wrong port",
    )


def from_error(exc: BaseException, fix: str, *, oci_call: bool = True) -> Diagnosis | None:
    """The cause a failed call met, when it is one of the told-apart ones: the configuration cannot be
    used, or the service answered 401, 403 or 404 (read from the error, its causes, or its message).
    A 401 to an OCI call refuses the operator's own credentials, so nothing of the target can be used; a
    401 from Fusion or IDCS refuses the deployment's OAuth client (`fix` says what to check)."""
    if isinstance(exc, CatalogMissingError):
        return None  # a deployment not applied yet: the check's own finding
    if isinstance(exc, ConfigError):
        return Diagnosis("config", str(exc), fix)
    status = _status(exc)
    if status == 401 and oci_call:
        return Diagnosis(
            "401",
            f"not authenticated: {exc}",
            "the caller's credentials were refused: check the OCI config profile (user, fingerprint, "
            "key_file, tenancy; the public key uploaded to that user), or the resource principal",
        )
    if status == 401:
        return Diagnosis("401", f"not authenticated: {exc}", fix, unusable=False)
    if status == 403:
        return Diagnosis(
            "403",
            f"not allowed: {exc}",
            f"signed in, but a policy or role is missing for this call (terraform/iam.tf); {fix}",
            unusable=False,
        )
    if status == 404:
        return Diagnosis(
            "404",
            f"not found: {exc}",
            f"it does not exist, or the caller may not see it (OCI answers 404 for both): {fix}",
            unusable=False,
        )
    return None


def _status(exc: BaseException) -> int | None:
    seen: BaseException | None = exc
    while seen is not None:
        status = getattr(seen, "status", None)
        if isinstance(status, int) or (isinstance(status, str) and status.isdigit()):
            return int(status)
        found = _STATUS.search(str(seen))
        if found:
            return int(found.group(1))
        seen = seen.__cause__ or seen.__context__
    return None
