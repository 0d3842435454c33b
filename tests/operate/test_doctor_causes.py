"""`doctor` against a target it cannot use: each cause told apart, found fast, with the fix for that cause.

Real servers on loopback stand in for each: a port nothing listens on (a stopped target), a name that does
not resolve (`.invalid` never does), a TLS server whose certificate nobody here trusts (Fusion's emulator,
reached as if it were an OCI endpoint), and a server that answers every call 401, 403 or 404 the way OCI
does. OCI_*_ENDPOINT and the control plane are all aimed at it, as a wrong region or port would aim them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.loopback import LoopbackServer, Request, Response
from tests.operate.conftest import Operated

OCI_KEYS = ("OCI_OBJECTSTORAGE_ENDPOINT", "OCI_SECRETS_ENDPOINT", "OCI_NOTIFICATIONS_ENDPOINT")
OCI_CHECKS = ("vault", "bucket", "topics", "schedules")
CODES = {401: "NotAuthenticated", 403: "NotAuthorized", 404: "NotAuthorizedOrNotFound"}


def aimed_at(operated: Operated, tmp_path: Path, url: str) -> Path:
    """The chain's endpoints file with every OCI endpoint the doctor calls aimed at `url`."""

    def change(doc: dict[str, Any]) -> None:
        doc["config"].update({key: url for key in OCI_KEYS})
        doc["oci"]["endpoint"] = url

    return operated.broken(tmp_path, change)


def doctor(operated: Operated, endpoints: Path) -> tuple[int, dict[str, dict[str, Any]], float]:
    started = time.monotonic()
    result = operated.cli("--json", "doctor", endpoints=endpoints)
    took = time.monotonic() - started
    return result.exit_code, {c["check"]: c for c in json.loads(result.output)["checks"]}, took


@pytest.fixture
def stopped() -> str:
    """The URL of a target that was stopped: its port is free, nothing listens on it."""
    server = LoopbackServer("stopped", lambda request: Response(200)).start()
    url = server.url
    server.stop()
    return url


@pytest.fixture(params=sorted(CODES))
def refusing(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    """A server answering every call with one status and OCI's error body for it."""
    status: int = request.param

    def serve(_: Request) -> Response:
        body = {"code": CODES[status], "message": f"answered {status} on purpose"}
        return Response.json(status, body, {"opc-request-id": "doctor-test"})

    server = LoopbackServer(f"answers-{status}", serve).start()
    yield status, server.url
    server.stop()


def test_doctor_against_a_stopped_target_says_refused_within_seconds_and_exits_3(
    operated: Operated, tmp_path: Path, stopped: str
) -> None:
    # Given every OCI endpoint aimed at a stopped target
    code, checks, took = doctor(operated, aimed_at(operated, tmp_path, stopped))

    # Then it ends within 15 s, the target unusable (exit 3)
    assert took < 15 and code == 3
    # And each OCI check says the connection was refused, and prescribes the port and the service, not IAM
    for name in OCI_CHECKS:
        assert checks[name]["cause"] == "refused", checks[name]
        assert "refused the connection" in checks[name]["detail"]
        assert "make emulator" in checks[name]["fix"] and "dynamic group" not in checks[name]["fix"]
    assert checks["config"]["status"] == "pass"


def test_doctor_against_a_stopped_target_prints_no_retry_lines(
    operated: Operated, tmp_path: Path, stopped: str
) -> None:
    # Given a stopped target, When doctor prints for a person
    result = operated.cli("doctor", endpoints=aimed_at(operated, tmp_path, stopped))

    # Then it is one line and a fix per check, no "transient failure" noise
    assert result.exit_code == 3 and "transient failure" not in result.output
    assert result.output.count("refused the connection") == len(OCI_CHECKS)


def test_doctor_when_a_name_does_not_resolve_says_dns_and_names_the_key(
    operated: Operated, tmp_path: Path
) -> None:
    # Given the endpoints aimed at a host name that cannot resolve
    code, checks, took = doctor(operated, aimed_at(operated, tmp_path, "https://doctor-probe.invalid"))

    # Then the cause is DNS, the fix names the key to correct, and the target is unusable
    assert code == 3 and took < 15
    assert (
        checks["bucket"]["cause"] == "dns"
        and "doctor-probe.invalid does not resolve" in checks["bucket"]["detail"]
    )
    assert "OCI_OBJECTSTORAGE_ENDPOINT" in checks["bucket"]["fix"]
    assert "OCI_SECRETS_ENDPOINT" in checks["vault"]["fix"]


def test_doctor_when_the_certificate_is_not_trusted_says_tls(operated: Operated, tmp_path: Path) -> None:
    # Given the OCI endpoints aimed at a TLS server whose CA is not trusted here (the Fusion emulator's)
    code, checks, _ = doctor(operated, aimed_at(operated, tmp_path, operated.chain.fusion.base_url))

    # Then the cause is TLS: the certificate is not trusted, and the fix is about trust and the host name
    assert code == 3
    assert checks["topics"]["cause"] == "tls" and "not trusted" in checks["topics"]["detail"]
    assert "OCI_NOTIFICATIONS_ENDPOINT" in checks["topics"]["fix"]


def test_doctor_when_the_service_answers_401_403_or_404_tells_them_apart(
    operated: Operated, tmp_path: Path, refusing: tuple[int, str]
) -> None:
    # Given every OCI endpoint answering one status, as OCI does
    status, url = refusing
    code, checks, took = doctor(operated, aimed_at(operated, tmp_path, url))

    # Then each OCI check names that status as its cause, with its own fix
    assert took < 15
    for name in ("vault", "bucket"):
        assert checks[name]["cause"] == str(status), checks[name]
    fix = checks["bucket"]["fix"]
    if status == 401:  # the operator's own credentials: nothing of the target can be used
        assert code == 3 and "OCI config profile" in fix
    elif status == 403:  # signed in, not allowed: a policy
        assert code == 3 and "policy" in fix and "OCI config profile" not in fix
    else:  # missing, or hidden: the names first
        assert code == 3 and "BUCKET_NAME" in fix and "may not see it" in fix
