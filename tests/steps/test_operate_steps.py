"""Operating the chain: the catalog refuses unknown names, alerts are titled for people, metrics posted."""

from __future__ import annotations

import json

import pytest

from fusion_extract.chain.alerts import read_alert
from fusion_extract.chain.ledger.records import FileState, RunState
from fusion_extract.errors import ConfigError, MessageError
from fusion_extract.models import Mode
from tests.emulators.oci import OciEmulator
from tests.emulators.oci.emulator import COMPARTMENT
from tests.steps.conftest import EXTRACT, MakeSteps, Steps, catalog_config

CATALOG = '{"Sales": {"mode": "full", "landing_template": "{prefix}/own/{extract}/{job_id}"}}'


def test_submit_when_extract_not_in_catalog_refuses_and_submits_nothing(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given a catalog that declares Sales only
    steps = make_steps(**catalog_config(oci, CATALOG))

    # When a run of a mistyped extract is asked for
    with pytest.raises(MessageError, match=r"'Salse' is not in the catalog .*known extracts are Sales"):
        steps.submit(extract="Salse", mode="full")

    # Then no job, no run, no lease, no message
    assert steps.fusion is not None and steps.fusion.jobs == []
    assert steps.runs() == [] and steps.deps.ledger.lease_holder("Salse") is None
    assert steps.published("poll") == []


def test_submit_reland_when_extract_not_in_catalog_refuses_before_asking_fusion(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given a catalog of Sales
    steps = make_steps(**catalog_config(oci, CATALOG))

    # When a re-land names another extract, Then it is refused and Fusion was not asked
    with pytest.raises(MessageError, match="not in the catalog"):
        steps.submit(kind="reland", extract="Orders", job_id="44046", mode="full")
    assert steps.fusion_calls(r"/api/saas-batch/.*") == 0


def test_submit_when_catalog_empty_takes_any_extract(steps: Steps) -> None:
    # Given the default (empty) catalog, When any extract is asked for, Then it is submitted as before
    assert steps.submit(extract=EXTRACT, mode="full")["outcome"] == "submitted"


def test_transfer_when_catalog_gives_a_landing_template_lands_under_it(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given Sales with its own landing template in the catalog
    steps = make_steps(**catalog_config(oci, CATALOG))

    # When a run of it lands
    run = steps.until_transferring()
    steps.deliver("transfer")

    # Then its folder follows the extract's template, not LANDING_TEMPLATE
    landed = steps.run(run.run_id)
    assert steps.deps.layout.run_folder(landed) == f"landing/own/Sales/{landed.job_id}"
    assert "_SUCCESS" in steps.landed(landed)


def test_submit_when_the_catalog_object_is_missing_refuses_naming_it(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given a configuration naming a catalog object nobody wrote
    steps = make_steps(EXTRACT_CATALOG_OBJECT="_catalog/extracts-gone.json")

    # When a run is asked for, Then it is refused naming the object and the fix, before Fusion is asked
    with pytest.raises(ConfigError, match=r"names landing/_catalog/extracts-gone.json, which does not exist"):
        steps.submit(extract=EXTRACT, mode="full")
    assert steps.fusion is not None and steps.fusion.jobs == [] and steps.runs() == []


def test_submit_when_the_catalog_object_is_malformed_refuses_naming_it_and_the_field(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given a catalog object whose Sales has no mode
    steps = make_steps(**catalog_config(oci, '{"Sales": {}}'))

    # When a run is asked for, Then the error names the object, the extract and the field
    expected = r"catalog landing/_catalog/extracts.json \(EXTRACT_CATALOG_OBJECT\) extract 'Sales': mode must"
    with pytest.raises(ConfigError, match=expected):
        steps.submit(extract=EXTRACT, mode="full")
    assert steps.fusion is not None and steps.fusion.jobs == []


def test_sweep_when_the_catalog_object_is_missing_still_sweeps_and_posts_no_figure(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given a run in flight, then its catalog object gone
    steps = make_steps(
        **catalog_config(oci, CATALOG),
        METRICS_COMPARTMENT_ID=COMPARTMENT,
        OCI_MONITORING_ENDPOINT=oci.endpoint,
    )
    steps.start()
    steps.env["EXTRACT_CATALOG_OBJECT"] = "_catalog/extracts-gone.json"
    steps.deps = steps.container()

    # When the sweep runs
    outcome = steps.sweep()
    steps.deps.metrics.flush()

    # Then it swept, and posted no HoursSinceLanded (the sweep-silent alarm then tells a person)
    assert outcome["outcome"] == "swept"
    assert [m for m in steps.oci.metrics if m["name"] == "HoursSinceLanded"] == []


def test_transfer_when_the_catalog_object_is_missing_waits_rather_than_failing_the_run(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given a run ready to transfer, then its catalog object gone (an apply half done, say)
    steps = make_steps(**catalog_config(oci, CATALOG))
    run = steps.until_transferring()
    steps.env["EXTRACT_CATALOG_OBJECT"] = "_catalog/extracts-gone.json"
    steps.deps = steps.container()

    # When its transfers are delivered
    outcomes = steps.deliver("transfer")

    # Then they wait for the sweep as after an outage (a fetch put off, a promotion put off), no file
    # failed, the run still in flight, nothing landed
    assert outcomes and {o["outcome"] for o in outcomes} <= {"deferred", "retry_scheduled"}
    assert all("which does not exist" in str(o) for o in outcomes), outcomes
    records = [v.value for v in steps.deps.ledger.files(run.run_id)]
    assert records and all(r.state is not FileState.FAILED for r in records)
    waiting = [r for r in records if r.state is FileState.PENDING]
    assert waiting and all(r.attempts == 0 and r.retries == 1 for r in waiting)  # an outage, not the file
    assert steps.run(run.run_id).state is RunState.TRANSFERRING
    assert steps.objects("landing/") == []


def test_alert_when_run_fails_is_titled_with_event_extract_and_run(steps: Steps) -> None:
    # Given a running run
    run = steps.start()

    # When an operator cancels it
    steps.submit(kind="cancel", run_id=run.run_id)

    # Then the alert's title names the event, extract and run, and its body ends in the alert's JSON
    message = next(m for m in steps.ons.published if m.topic_id == steps.topics["alerts"])
    assert message.title == f"CANCELLED {EXTRACT} {run.run_id}"
    assert message.body.startswith(f"CANCELLED {EXTRACT} {run.run_id}\nAn operator cancelled the run")
    alert = read_alert(message.body)
    assert (alert["event"], alert["run_id"], alert["extract"]) == ("cancelled", run.run_id, EXTRACT)
    # And it names the job and the mode, for the person who reads it to find the run in Fusion
    assert (alert["job_id"], alert["mode"]) == (run.job_id, run.mode)


def test_metrics_when_run_lands_are_posted_to_monitoring_once_flushed(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given metrics enabled for the compartment, Monitoring at the emulator
    steps = make_steps(METRICS_COMPARTMENT_ID=COMPARTMENT, OCI_MONITORING_ENDPOINT=oci.endpoint)

    # When a run starts and lands, and the step's metrics are flushed (function.serve does it)
    run = steps.until_transferring()
    steps.clock.advance(90)
    steps.deliver("transfer")
    steps.deps.metrics.flush()

    # Then Monitoring recorded the start, the landing and its totals, per extract
    posted = {m["name"]: m for m in steps.oci.metrics}
    assert {
        "RunsStarted",
        "RunsLanded",
        "BytesLanded",
        "FilesLanded",
        "RowsLanded",
        "RunDurationSeconds",
    } <= set(posted)
    assert posted["RunsLanded"]["dimensions"] == {
        "deployment": "fusion-extract",
        "extract": EXTRACT,
        "mode": "full",
    }
    assert posted["RunsLanded"]["namespace"] == "fusion_extract"
    assert posted["FilesLanded"]["datapoints"][0]["value"] == len(steps.deps.ledger.files(run.run_id))
    # And each figure of the landing is its own, counted once, per extract (and mode, where Monitoring
    # tells them apart)
    landed = steps.run(run.run_id)
    totals = json.loads(steps.read(steps.deps.layout.manifest(landed)))["totals"]
    took = (steps.clock.now() - run.created_at).total_seconds()
    assert took >= 90
    figures = {name: (m["datapoints"][0]["value"], m["dimensions"]) for name, m in posted.items()}
    per_extract = {"deployment": "fusion-extract", "extract": EXTRACT}
    per_mode = {**per_extract, "mode": "full"}
    assert figures["RunsLanded"] == (1, per_mode)
    assert figures["BytesLanded"] == (totals["bytes"], per_extract)
    assert figures["FilesLanded"] == (totals["files"], per_extract)
    assert figures["RowsLanded"] == (totals["rows"], per_extract)
    assert figures["RunDurationSeconds"] == (took, per_mode)
    assert figures["HoursSinceLanded"] == (0, per_extract)
    assert figures["RunsStarted"] == (1, per_mode)


def test_metrics_when_monitoring_fails_never_fail_the_step(make_steps: MakeSteps) -> None:
    # Given Monitoring nowhere to be reached
    steps = make_steps(METRICS_COMPARTMENT_ID=COMPARTMENT, OCI_MONITORING_ENDPOINT="http://127.0.0.1:9")

    # When a run starts and its metrics are flushed against an endpoint nobody answers
    outcome = steps.submit(extract=EXTRACT, mode=Mode.FULL.value)
    steps.deps.metrics.flush()

    # Then the step succeeded and nothing was recorded
    assert outcome["outcome"] == "submitted"
    assert steps.oci.metrics == []


def test_sweep_reports_hours_since_the_last_landing_of_each_catalog_extract(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given Sales in the catalog, a run of it landed, and an hour gone by
    steps = make_steps(
        **catalog_config(oci, CATALOG),
        METRICS_COMPARTMENT_ID=COMPARTMENT,
        OCI_MONITORING_ENDPOINT=oci.endpoint,
    )
    steps.until_transferring()
    steps.deliver("transfer")
    steps.deps.metrics.flush()
    steps.clock.advance(3600)

    # When the sweep runs
    steps.sweep()
    steps.deps.metrics.flush()

    # Then HoursSinceLanded for Sales is about one
    hours = [m for m in steps.oci.metrics if m["name"] == "HoursSinceLanded"]
    assert hours[-1]["dimensions"]["extract"] == EXTRACT
    assert 0.99 < hours[-1]["datapoints"][0]["value"] < 1.1


def test_sweep_reports_hours_since_first_watched_for_an_extract_that_never_landed(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given Sales in the catalog, never landed, first watched by a sweep
    steps = make_steps(
        **catalog_config(oci, CATALOG),
        METRICS_COMPARTMENT_ID=COMPARTMENT,
        OCI_MONITORING_ENDPOINT=oci.endpoint,
    )
    steps.sweep()
    steps.clock.advance(5 * 3600)

    # When the sweep runs five hours later
    steps.sweep()
    steps.deps.metrics.flush()

    # Then HoursSinceLanded for Sales counts from the first sweep that watched it: 0, then 5
    hours = [m["datapoints"][0]["value"] for m in steps.oci.metrics if m["name"] == "HoursSinceLanded"]
    assert hours == [0.0, 5.0]
