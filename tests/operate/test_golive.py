"""`fusion-extract doctor --cloud` against the emulators: each function's preflight of its grants, under
the real fdk runtime, and what the operator's side can see; a grant the OCI emulator withholds is named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulators.chain import function_ocid
from tests.emulators.oci.scheduler import schedule_ocid
from tests.operate.conftest import Operated

FUNCTION_POLICY = "Allow dynamic-group <name_prefix>-functions to"


@pytest.fixture
def golive(operated: Operated) -> Iterator[Operated]:
    """The shared chain; every grant given back after the test."""
    yield operated
    operated.chain.oci.grants.restore()


def _doctor(operated: Operated) -> tuple[int, dict[str, dict[str, str]]]:
    result = operated.cli("--json", "doctor", "--cloud")
    report: dict[str, Any] = json.loads(result.output)
    checks = {check["check"]: check for check in report["checks"]}
    assert len(checks) == len(report["checks"]), "every check has its own name"
    return result.exit_code, checks


def _failed(checks: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {name: check for name, check in checks.items() if check["status"] == "fail"}


def test_doctor_cloud_when_every_grant_is_given_passes_every_check(golive: Operated) -> None:
    # Given the local chain, wired as Terraform wires it, every grant given
    jobs = len(golive.chain.fusion.jobs)

    # When the go-live check runs
    code, checks = _doctor(golive)

    # Then every check passes, each function's grants among them, and no Fusion job was submitted
    assert _failed(checks) == {} and code == 0
    for step, topics in (("submit", ["poll", "alerts"]), ("poll", ["poll", "transfer", "rerun", "alerts"])):
        for check in ["secret read", "state object", "multipart upload", *[f"publish {t}" for t in topics]]:
            assert checks[f"{step}: {check}"]["status"] == "pass", (step, check)
    assert checks["transfer: publish transfer"]["status"] == "pass"
    assert checks["transfer: metric post"]["status"] == "pass"
    for name in ("function submit", "subscription rerun", "subscription alerts", "schedule Sales", "schedule sweep"):
        assert checks[name]["status"] == "pass", name
    assert {"alarms", "secret", "lifecycle"} <= checks.keys()
    assert len(golive.chain.fusion.jobs) == jobs


def test_doctor_cloud_when_a_function_may_not_read_the_secret_names_the_statement(golive: Operated) -> None:
    # Given a policy without the secret-bundles statement for the poll function
    golive.chain.oci.withhold("GetSecretBundle", principal=function_ocid("poll"))

    # When the go-live check runs
    code, checks = _doctor(golive)

    # Then exactly poll's secret read fails, and its fix is the statement that grants it
    assert list(_failed(checks)) == ["poll: secret read"] and code == 1
    failed = checks["poll: secret read"]
    assert "not found or not readable" in failed["detail"]
    secret_id = golive.doc["config"]["CREDENTIALS_SECRET_ID"]
    assert f"{FUNCTION_POLICY} read secret-bundles" in failed["fix"] and secret_id in failed["fix"]
