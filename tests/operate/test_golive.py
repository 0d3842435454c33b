"""`fusion-extract doctor --cloud` against the emulators: each function's preflight of its grants, under
the real fdk runtime, and what the operator's side can see; a grant the OCI emulator withholds is named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulators.chain import IMAGE, function_ocid
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
    for name in (
        "function submit",
        "subscription rerun",
        "subscription alerts",
        "schedule Sales",
        "schedule sweep",
    ):
        assert checks[name]["status"] == "pass", name
    assert {"alarms", "secret", "lifecycle"} <= checks.keys()
    assert len(golive.chain.fusion.jobs) == jobs


def test_doctor_cloud_when_a_function_may_not_read_the_secret_names_the_statement(golive: Operated) -> None:
    # Given a policy without the secret-bundles statement for the poll function
    golive.chain.oci.withhold("GetSecretBundle", principal=function_ocid("poll"))

    # When the go-live check runs
    code, checks = _doctor(golive)

    # Then exactly poll's secret read fails, and its fix is the statement that grants it
    assert list(_failed(checks)) == ["poll: secret read"] and code == 3
    failed = checks["poll: secret read"]
    assert "not found or not readable" in failed["detail"]
    secret_id = golive.doc["config"]["CREDENTIALS_SECRET_ID"]
    assert f"{FUNCTION_POLICY} read secret-bundles" in failed["fix"] and secret_id in failed["fix"]


def test_doctor_cloud_when_a_function_may_not_write_objects_names_the_statement(golive: Operated) -> None:
    # Given a policy that lets the transfer function write no object
    golive.chain.oci.withhold("PutObject", principal=function_ocid("transfer"))

    # When the go-live check runs
    code, checks = _doctor(golive)

    # Then transfer's state object check fails with OCI's answer, and the fix is the objects statement
    assert list(_failed(checks)) == ["transfer: state object"] and code == 3
    failed = checks["transfer: state object"]
    assert "404 BucketNotFound" in failed["detail"]
    assert (
        f"{FUNCTION_POLICY} manage objects in compartment <c> where target.bucket.name = 'fusion-landing'"
        in (failed["fix"])
    )


def test_doctor_cloud_when_a_function_may_not_publish_to_a_topic_names_the_statement(
    golive: Operated,
) -> None:
    # Given a policy that lets no one publish to the transfer topic
    transfer_topic = golive.chain.topics["transfer"]
    golive.chain.oci.withhold("PublishMessage", resource=transfer_topic)

    # When the go-live check runs
    code, checks = _doctor(golive)

    # Then both functions that publish to it fail that check, naming the topic's statement; others pass
    assert sorted(_failed(checks)) == ["poll: publish transfer", "transfer: publish transfer"] and code == 3
    for name in ("poll: publish transfer", "transfer: publish transfer"):
        assert "404 NotAuthorizedOrNotFound" in checks[name]["detail"]
        assert (
            f"use ons-topics in compartment <c> where target.topic.id = '{transfer_topic}'"
            in checks[name]["fix"]
        )
    assert checks["poll: publish poll"]["status"] == "pass"


def test_doctor_cloud_when_a_schedule_may_not_invoke_names_the_scheduler_statement(golive: Operated) -> None:
    # Given a scheduler policy without the sweep schedule's statements, and the sweep's run since then
    golive.chain.oci.withhold("InvokeFunction", principal=schedule_ocid("sweep"))
    invocations = len(golive.chain.functions.invocations)
    golive.chain.sweep()

    # When the go-live check runs
    code, checks = _doctor(golive)

    # Then the sweep's schedule fails: its last run FAILED, and the fix names its principal in the policy
    assert list(_failed(checks)) == ["schedule sweep"] and code == 3
    failed = checks["schedule sweep"]
    assert "last run FAILED" in failed["detail"]
    assert "terraform/iam.tf, the scheduler policy" in failed["fix"]
    assert f"request.principal.id = '{schedule_ocid('sweep')}'" in failed["fix"]
    # (the refused firing started nothing)
    assert not any(i.body == b'{"kind": "sweep"}' for i in golive.chain.functions.invocations[invocations:])

    # And once the statement is back, the next run of the schedule clears the check
    golive.chain.oci.grants.restore()
    golive.chain.sweep()
    golive.chain.settle()
    assert _doctor(golive)[1]["schedule sweep"]["status"] == "pass"


def test_doctor_cloud_preflights_start_no_chain_and_tell_people_it_was_a_test(golive: Operated) -> None:
    # Given the chain at rest
    golive.chain.settle()
    runs = len(golive.chain.runs())
    invocations = len(golive.chain.functions.invocations)
    alerts = len(golive.chain.alerts)

    # When the go-live check runs and what it published is delivered
    code, _ = _doctor(golive)
    golive.chain.settle()

    # Then every probe delivered to a function was answered "ignored", and nothing else ran
    inbox = function_ocid("alerts")
    delivered = [i for i in golive.chain.functions.invocations[invocations:] if i.function_id != inbox]
    probes = [i for i in delivered if json.loads(i.body).get("kind") == "probe"]
    assert sorted(json.loads(i.body)["source"] for i in probes) == [
        "poll",
        "poll",
        "poll",
        "submit",
        "transfer",
    ]
    assert {json.loads(i.response)["outcome"] for i in probes} == {"ignored"}
    assert len(delivered) == len(probes) + 3  # and the three preflights themselves
    assert len(golive.chain.runs()) == runs and code == 0
    # And the alerts topic got one go-live message per function
    events = golive.chain.alerts[alerts:]
    assert sorted(a["function"] for a in events) == ["poll", "submit", "transfer"]
    assert {a["event"] for a in events} == {"go_live_check"}


def test_doctor_cloud_human_output_has_one_line_per_check_and_the_fix_under_a_failure(
    golive: Operated,
) -> None:
    # Given the secret withheld from the submit function
    golive.chain.oci.withhold("GetSecretBundle", principal=function_ocid("submit"))

    # When the go-live check prints for people
    result = golive.cli("doctor", "--cloud")

    # Then each check is one line, the failed one marked and followed by its fix
    lines = result.output.splitlines()
    failed = [i for i, line in enumerate(lines) if line.startswith("FAIL")]
    assert len(failed) == 1 and "submit: secret read" in lines[failed[0]]
    assert "fix: terraform/iam.tf" in lines[failed[0] + 1]
    assert sum(line.startswith("pass") for line in lines) > 30 and result.exit_code == 3


def test_doctor_cloud_when_an_extract_has_no_dead_man_alarm_names_it(golive: Operated) -> None:
    # Given the alarms without Sales' dead-man alarm
    alarms = golive.chain.oci.monitoring.alarms
    kept = list(alarms)
    alarms[:] = [alarm for alarm in alarms if 'extract = "Sales"' not in alarm["query"]]
    try:
        # When the go-live check runs
        code, checks = _doctor(golive)
    finally:
        alarms[:] = kept

    # Then the alarms check fails naming what is missing, with the Terraform fix
    assert list(_failed(checks)) == ["alarms"] and code == 3
    assert "the dead-man alarm of Sales" in checks["alarms"]["detail"]
    assert "alarms_enabled = true" in checks["alarms"]["fix"]


def test_doctor_cloud_when_the_ledger_has_no_expiry_rule_names_it(golive: Operated) -> None:
    # Given the landing bucket's lifecycle rules without the one under STATE_PREFIX
    objects = golive.chain.oci.objectstorage
    kept = objects.lifecycle_rules("fusion-landing")
    objects.set_lifecycle("fusion-landing", [rule for rule in kept if rule["name"] != "expire-run-ledger"])
    try:
        code, checks = _doctor(golive)
    finally:
        objects.set_lifecycle("fusion-landing", kept)

    # Then the lifecycle check fails naming the rule
    assert list(_failed(checks)) == ["lifecycle"] and code == 3
    assert "expire _state/" in checks["lifecycle"]["detail"]


def test_doctor_cloud_when_a_topic_invokes_no_function_of_ours_says_which(
    golive: Operated, tmp_path: Any
) -> None:
    # Given an operator's configuration whose RERUN_TOPIC_ID names the alerts topic (no function behind it)
    alerts_topic = golive.doc["config"]["ALERTS_TOPIC_ID"]
    endpoints = golive.broken(tmp_path, lambda doc: doc["config"].update(RERUN_TOPIC_ID=alerts_topic))

    # When the go-live check runs with it
    result = golive.cli("--json", "doctor", "--cloud", endpoints=endpoints)
    checks = {check["check"]: check for check in json.loads(result.output)["checks"]}

    # Then the rerun subscription check fails: that topic does not invoke submit
    assert checks["subscription rerun"]["status"] == "fail" and result.exit_code == 3
    assert "does not invoke the submit function" in checks["subscription rerun"]["detail"]
    # And each function's check says its configuration is not the one checked here
    for step in ("submit", "poll", "transfer"):
        assert checks[f"function {step}"]["detail"].endswith(
            "differs from the one checked here on RERUN_TOPIC_ID"
        )


def test_doctor_cloud_when_a_function_configuration_is_incomplete_names_the_key(golive: Operated) -> None:
    # Given the transfer function redeployed without BUCKET_NAME in its configuration
    chain = golive.chain
    runtime = chain.runtimes["transfer"]
    config = {key: value for key, value in chain.env.items() if key != "BUCKET_NAME"}
    chain.functions.register(function_ocid("transfer"), runtime, config=config)
    try:
        code, checks = _doctor(golive)
    finally:
        chain.functions.register(function_ocid("transfer"), runtime, config=chain.env, image=IMAGE)

    # Then the transfer function's check fails naming the key
    assert checks["function transfer"]["status"] == "fail" and code == 3
    assert "BUCKET_NAME is missing" in checks["function transfer"]["detail"]
    assert checks["function submit"]["status"] == "pass"


def test_doctor_cloud_when_the_operator_may_not_read_the_secret_fails_that_check(golive: Operated) -> None:
    # Given an operator without `read secrets` (GetSecret withheld from everyone)
    golive.chain.oci.withhold("GetSecret")

    # When the go-live check runs, Then the secret check fails with OCI's 404 and the fix
    code, checks = _doctor(golive)
    assert list(_failed(checks)) == ["secret"] and code == 3
    assert "404 NotAuthorizedOrNotFound" in checks["secret"]["detail"]
    assert "CREDENTIALS_SECRET_ID" in checks["secret"]["fix"]


def test_doctor_cloud_when_the_secret_is_being_deleted_says_so(golive: Operated) -> None:
    # Given the credentials secret scheduled for deletion (a `terraform destroy` of another stack, say)
    vault = golive.chain.oci.vault
    secret_id = golive.doc["config"]["CREDENTIALS_SECRET_ID"]
    vault.schedule_deletion(secret_id)
    try:
        code, checks = _doctor(golive)
    finally:
        vault.cancel_deletion(secret_id)

    # Then the secret check fails naming its state
    assert checks["secret"]["status"] == "fail" and code == 3
    assert checks["secret"]["detail"] == "secret fusion-extract-credentials is PENDING_DELETION"


def test_doctor_cloud_when_a_function_cannot_answer_a_preflight_says_to_redeploy(
    golive: Operated, tmp_path: Any
) -> None:
    # Given an operator's function map whose "poll" is a function that knows no preflight (an old image)
    endpoints = golive.broken(tmp_path, lambda doc: doc["functions"].update(poll=function_ocid("alerts")))

    # When the go-live check runs with it
    result = golive.cli("--json", "doctor", "--cloud", endpoints=endpoints)
    checks = {check["check"]: check for check in json.loads(result.output)["checks"]}

    # Then poll's preflight is one failed line that says so; submit's and transfer's ran as before
    assert checks["preflight poll"]["status"] == "fail" and result.exit_code == 3
    assert "redeployed" in checks["preflight poll"]["fix"]
    assert not any(name.startswith("poll: ") for name in checks)
    assert checks["submit: secret read"]["status"] == "pass"
