"""The preflight: each function exercises, with harmless calls, every grant it needs, and reports each
check with its fix; a probe it publishes is ignored by whoever receives it."""

from __future__ import annotations

import pytest

from fusion_extract.chain.messages import PreflightRequest, Probe, parse_check
from fusion_extract.chain.steps.preflight import ignore, preflight
from tests.emulators.oci import OciEmulator
from tests.emulators.oci.emulator import COMPARTMENT
from tests.steps.conftest import BUCKET, MakeSteps, Steps


@pytest.fixture
def measured(make_steps: MakeSteps, oci: OciEmulator) -> Steps:
    """Steps whose functions post metrics to the emulator's Monitoring."""
    return make_steps(METRICS_COMPARTMENT_ID=COMPARTMENT, OCI_MONITORING_ENDPOINT=oci.endpoint)


def _statuses(answer: dict[str, object]) -> dict[str, str]:
    checks = answer["checks"]
    assert isinstance(checks, list)
    return {check["check"]: check["status"] for check in checks}


def test_preflight_of_poll_when_every_grant_is_given_passes_each_check_and_leaves_nothing(
    measured: Steps, oci: OciEmulator
) -> None:
    # Given the poll function's configuration, every grant given

    # When it answers a preflight
    answer = preflight("poll", measured.deps).to_json()

    # Then each of its grants was exercised and passed, in order
    assert answer["outcome"] == "preflight" and answer["ok"] is True
    assert _statuses(answer) == {
        "secret read": "pass",
        "state object": "pass",
        "multipart upload": "pass",
        "publish poll": "pass",
        "publish transfer": "pass",
        "publish rerun": "pass",
        "publish alerts": "pass",
        "metric post": "pass",
    }
    # And it left no object and no upload behind, and never called Fusion
    assert measured.objects("_state/") == []
    assert oci.objectstorage.uploads.in_bucket(BUCKET) == []
    assert measured.fusion_calls(".") == 0
    # And what it published is a probe on each topic it feeds, and a go-live message for people
    for topic in ("poll", "transfer", "rerun"):
        assert measured.published(topic) == [{"v": 1, "kind": "probe", "source": "poll"}]
    assert measured.published("alerts") == [
        {"v": 1, "kind": "alert", "event": "go_live_check", "function": "poll"}
    ]
    alert = next(m for m in measured.ons.published if m.topic_id == measured.topics["alerts"])
    assert (
        alert.title is not None
        and alert.title.startswith("GO-LIVE CHECK")
        and "not an incident" in alert.title
    )
    # And one datapoint of a metric no alarm watches
    assert [(m["name"], m["dimensions"]["function"]) for m in oci.metrics] == [("PreflightChecks", "poll")]


def test_preflight_of_each_function_publishes_only_to_the_topics_it_feeds(steps: Steps) -> None:
    # Given the three functions, When each answers a preflight
    checks = {
        function: _statuses(preflight(function, steps.deps).to_json()) for function in ("submit", "transfer")
    }

    # Then submit publishes to poll and alerts, transfer to transfer and alerts; nobody to rerun
    assert [c for c in checks["submit"] if c.startswith("publish")] == ["publish poll", "publish alerts"]
    assert [c for c in checks["transfer"] if c.startswith("publish")] == [
        "publish transfer",
        "publish alerts",
    ]
    assert steps.published("rerun") == []


def test_preflight_without_a_metrics_compartment_skips_the_metric_and_passes(steps: Steps) -> None:
    # Given no METRICS_COMPARTMENT_ID, When the submit function answers a preflight
    answer = preflight("submit", steps.deps).to_json()

    # Then the metric check is skipped, saying why, and the preflight passes
    metric = next(c for c in answer["checks"] if c["check"] == "metric post")
    assert metric["status"] == "skipped" and "METRICS_COMPARTMENT_ID" in metric["detail"]
    assert answer["ok"] is True


@pytest.mark.parametrize(
    ("operation", "checks", "statement"),
    [
        ("GetSecretBundle", ["secret read"], "read secret-bundles in compartment <c> where target.secret.id"),
        (
            "PutObject",
            ["state object"],
            f"manage objects in compartment <c> where target.bucket.name = '{BUCKET}'",
        ),
        ("CreateMultipartUpload", ["multipart upload"], "manage objects in compartment <c>"),
        (
            "PublishMessage",
            ["publish poll", "publish alerts"],
            "use ons-topics in compartment <c> where target.topic.id",
        ),
        ("PostMetricData", ["metric post"], "use metrics in compartment <c> where target.metrics.namespace"),
    ],
)
def test_preflight_when_a_grant_is_withheld_fails_that_check_with_its_statement_and_runs_the_rest(
    measured: Steps, oci: OciEmulator, operation: str, checks: list[str], statement: str
) -> None:
    # Given a tenancy that withholds one grant (publishing: on every topic)
    oci.withhold(operation)

    # When the submit function answers a preflight
    answer = preflight("submit", measured.deps).to_json()

    # Then the checks of it fail with OCI's 404 and the fix names the statement; every other check still ran
    failed = [c for c in answer["checks"] if c["status"] == "fail"]
    assert [c["check"] for c in failed] == checks and answer["ok"] is False
    policy = "terraform/iam.tf, the functions' policy: Allow dynamic-group <name_prefix>-functions to"
    for check in failed:
        assert "404" in check["detail"] or "not found or not readable" in check["detail"]
        assert f"{policy} {statement}" in check["fix"]
    assert len(answer["checks"]) == 6


def test_check_messages_are_read_apart_from_each_function_own() -> None:
    # Given the messages every function accepts beside its own, When they are read
    # Then a preflight and a probe are recognised, any other kind is left to the function's parser
    assert parse_check(b'{"kind": "preflight"}') == PreflightRequest()
    assert parse_check(b'{"v": 1, "kind": "probe", "source": "poll"}') == Probe("poll")
    assert parse_check(b'{"kind": "sweep"}') is None
    assert parse_check(b'{"extract": "Sales", "mode": "full"}') is None
    # And a probe is answered without anything done
    assert ignore(Probe("poll")).to_json() == {"outcome": "ignored", "source": "poll"}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"kind": "preflight", "run_id": "x"}', "unknown field"),
        (b'{"kind": "probe"}', "source is missing"),
        (b'{"kind": "probe", "source": "../x"}', "source must be the name of the function"),
        (b"not json", "message is not JSON"),
    ],
)
def test_check_messages_when_malformed_name_the_problem(body: bytes, problem: str) -> None:
    from fusion_extract.errors import MessageError

    with pytest.raises(MessageError, match=problem):
        parse_check(body)
