"""The sweep's service-level check: HoursLate for Monitoring, and one `late` alert per expected landing."""

from __future__ import annotations

from fusion_extract.chain.alerts import read_alert
from tests.emulators.oci import OciEmulator
from tests.emulators.oci.emulator import COMPARTMENT
from tests.steps.conftest import EXTRACT, MakeSteps, Steps, catalog_config

# Sales starts at 10:00 UTC daily and is expected to land by 12:00; the chain's clock starts 1 March, 08:00.
CATALOG = (
    '{"Sales": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=10;BYMINUTE=0", "expected_within_hours": 2}}'
)
HOUR = 3600.0


def _steps(make_steps: MakeSteps, oci: OciEmulator) -> Steps:
    return make_steps(
        **catalog_config(oci, CATALOG),
        METRICS_COMPARTMENT_ID=COMPARTMENT,
        OCI_MONITORING_ENDPOINT=oci.endpoint,
    )


def _hours_late(steps: Steps) -> float:
    steps.deps.metrics.flush()
    figures = [m for m in steps.oci.metrics if m["name"] == "HoursLate"]
    assert figures[-1]["dimensions"]["extract"] == EXTRACT
    return float(figures[-1]["datapoints"][0]["value"])


def test_sweep_alerts_late_once_per_expected_landing_and_again_for_the_next_one(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given Sales first watched by the sweep at 08:00, and nothing landing
    steps = _steps(make_steps, oci)
    steps.sweep()

    # When the sweep runs at 11:59, before today's 10:00 run is expected
    steps.clock.advance(4 * HOUR - 60)
    early = steps.sweep()

    # Then nothing is late (yesterday's start was before Sales was watched)
    assert "late" not in early and steps.alerts() == [] and _hours_late(steps) == 0

    # When it runs at 12:01, and again an hour later
    steps.clock.advance(120)
    first = steps.sweep()
    steps.clock.advance(HOUR)
    steps.sweep()

    # Then Sales is late: one alert naming the start and the expected landing, HoursLate past an hour
    assert first["late"] == [EXTRACT] and first["redriven"] == {}  # the answer tells both, as always
    assert steps.alerts() == ["late"]
    alert = steps.published("alerts")[0]
    assert (alert["extract"], alert["scheduled"][:16], alert["expected_by"][:16]) == (
        EXTRACT,
        "2026-03-01T10:00",
        "2026-03-01T12:00",
    )
    assert "never landed" in alert["reason"]
    assert 1.0 < _hours_late(steps) < 1.1
    # And the alert reads as its title says
    body = next(m.body for m in steps.ons.published if m.topic_id == steps.topics["alerts"])
    assert body.startswith(f"LATE {EXTRACT}\n") and read_alert(body) == alert

    # When the next day's run slips too, Then that expected landing is alerted anew
    steps.clock.advance(24 * HOUR)
    steps.sweep()
    assert steps.alerts() == ["late", "late"]
    assert steps.published("alerts")[1]["scheduled"].startswith("2026-03-02T10:00")


def test_sweep_finds_no_lateness_once_a_run_landed_after_the_scheduled_start(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given Sales watched from 08:00 and a run of it that lands after the 10:00 start
    steps = _steps(make_steps, oci)
    steps.sweep()
    steps.clock.advance(2.5 * HOUR)
    steps.until_transferring()
    steps.deliver("transfer")

    # When the sweep runs at 12:30
    steps.clock.advance(HOUR)
    swept = steps.sweep()

    # Then Sales is on time
    assert "late" not in swept and "late" not in steps.alerts() and _hours_late(steps) == 0


def test_sweep_holds_a_landing_before_the_scheduled_start_late_for_that_start(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given a run of Sales that landed at 08:00, before the 10:00 start that then never lands
    steps = _steps(make_steps, oci)
    steps.until_transferring()
    steps.deliver("transfer")

    # When the sweep runs at 12:30
    steps.clock.advance(4.5 * HOUR)
    swept = steps.sweep()

    # Then Sales is late for its 10:00 start, and the alert says when it last landed
    assert swept["late"] == [EXTRACT]
    assert "its last landing was 2026-03-01 08:0" in steps.published("alerts")[-1]["reason"]


def _hours_since_landed(steps: Steps) -> float:
    steps.deps.metrics.flush()
    figures = [m for m in steps.oci.metrics if m["name"] == "HoursSinceLanded"]
    return float(figures[-1]["datapoints"][0]["value"])


def test_an_unreadable_watch_note_is_replaced_so_an_extract_that_never_lands_still_grows_overdue(
    make_steps: MakeSteps, oci: OciEmulator
) -> None:
    # Given Sales first watched by the sweep at 08:00, its watch note since damaged, and nothing landing
    steps = _steps(make_steps, oci)
    steps.sweep()
    steps.deps.store.put_bytes(f"_state/watched/{EXTRACT}.json", b'{"v": 1, "since": "half a da')

    # When the sweep runs at 09:00, and again at 11:00
    steps.clock.advance(HOUR)
    steps.sweep()
    steps.clock.advance(2 * HOUR)
    steps.sweep()

    # Then the 09:00 sweep noted the watch anew, and HoursSinceLanded counts from there: 2 hours at 11:00
    assert _hours_since_landed(steps) == 2.0
