"""Every alarm in terraform/monitoring.tf, its query read from the .tf file, evaluated as Monitoring's
documented semantics would (tests/terraform/mql.py) on the metric series a deployment posts: the sweep's
HoursSinceLanded and HoursLate every five minutes per catalog extract (chain/steps/late.py), 0 and
RunsLanded at each landing,
RunsFailed and RunsTimedOut when a run ends so. Each scenario says when each alarm must fire, and that it
fires only then."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.terraform import tfcheck
from tests.terraform.mql import Alarm, Point, periods

DEPLOYMENT = {"deployment": "fusion-extract"}
DEPLOYED = datetime(2026, 12, 1, 0, 0)
SWEEP_EVERY = timedelta(minutes=5)
EXPECTED = 4  # hours: each day's 02:00 run lands by 06:00
SCHEDULED = timedelta(hours=2)  # every extract here starts daily at 02:00 (FREQ=DAILY;BYHOUR=2)


def at(day: int, hours: float = 0) -> datetime:
    return DEPLOYED + timedelta(days=day, hours=hours)


@dataclass
class Deployment:
    """What the functions post: a model of the sweep and of a run's ending (chain/runs/)."""

    catalog: dict[str, float]  # extract -> expected_within_hours
    landings: dict[str, list[datetime]] = field(default_factory=dict)
    endings: list[tuple[str, str, datetime]] = field(default_factory=list)  # (metric, extract, when)
    sweep_stops: datetime | None = None

    def points(self, until: datetime) -> list[Point]:
        points = []
        for extract, moments in self.landings.items():
            for moment in moments:
                dims = {**DEPLOYMENT, "extract": extract}
                points += [Point("RunsLanded", moment, 1, {**dims, "mode": "full"})]
                points += [Point("HoursSinceLanded", moment, 0, dims)]
        points += [
            Point(m, when, 1, {**DEPLOYMENT, "extract": e, "mode": "full"}) for m, e, when in self.endings
        ]
        sweep = DEPLOYED
        while sweep <= until and (self.sweep_stops is None or sweep < self.sweep_stops):
            for extract in self.catalog:
                landed = [m for m in self.landings.get(extract, []) if m <= sweep]
                since = max(landed) if landed else DEPLOYED  # else: since the sweep first watched it
                hours = (sweep - since).total_seconds() / 3600
                points.append(Point("HoursSinceLanded", sweep, hours, {**DEPLOYMENT, "extract": extract}))
                late = self.hours_late(extract, sweep)
                points.append(Point("HoursLate", sweep, late, {**DEPLOYMENT, "extract": extract}))
            sweep += SWEEP_EVERY
        return points

    def hours_late(self, extract: str, now: datetime) -> float:
        """The service level (service_level.py) for a daily 02:00 start: the latest start whose expected
        landing passed, if it came after the deployment and nothing landed since, is late by now - due."""
        within = timedelta(hours=self.catalog[extract])
        start = datetime.combine((now - within - SCHEDULED).date(), datetime.min.time()) + SCHEDULED
        landed = [m for m in self.landings.get(extract, []) if start <= m <= now]
        if start < DEPLOYED or landed:
            return 0.0
        return (now - (start + within)).total_seconds() / 3600


# -- the alarms as Terraform declares them ---------------------------------------------------------------


def _render(template: str, key: str, value: Any) -> str:
    """Terraform's interpolation of each.key / each.value[.field] in one alarm instance; nothing else."""
    text = template.replace("${each.key}", key)
    if isinstance(value, dict):
        text = re.sub(r"\$\{each\.value\.([a-z_]+)\}", lambda m: str(value[m[1]]), text)
    else:
        text = text.replace("${each.value}", str(value))
    if "${" in text:
        raise AssertionError(f"the test cannot evaluate this query: {text!r}")
    return text


def alarms(config: tfcheck.Config, catalog: dict[str, float]) -> dict[str, Alarm]:
    """Every alarm instance Terraform would create for this catalog, by `<resource>[<key>]`."""
    local = config.locals()
    instances: dict[str, Alarm] = {}
    for _, kind, name, body in config.blocks("resource"):
        if kind != "oci_monitoring_alarm":
            continue
        if body.get("for_each") == "${var.alarms_enabled ? local.failure_alarms : {}}":
            each: dict[str, Any] = dict(local["failure_alarms"])
        elif body.get("for_each") == "${var.alarms_enabled ? local.watched_extracts : {}}":
            each = {extract: {"expected_within_hours": hours} for extract, hours in catalog.items()}
        elif body.get("count") == "${var.alarms_enabled && length(local.watched_extracts) > 0 ? 1 : 0}":
            each = {"0": None}
        else:
            raise AssertionError(f"oci_monitoring_alarm.{name}: a for_each/count this test does not know")
        for key, value in each.items():
            query = _render(body["query"], key, value)
            instances[f"{name}[{key}]"] = Alarm.parse(query, body.get("pending_duration", "PT1M"))
    return instances


def fired(alarm: Alarm, deployment: Deployment, until: datetime) -> list[tuple[datetime, datetime]]:
    return periods(alarm.firing(deployment.points(until), DEPLOYED, until))


@pytest.fixture(scope="module")
def sales(config: tfcheck.Config) -> dict[str, Alarm]:
    return alarms(config, {"Sales": EXPECTED})


def test_every_alarm_in_monitoring_tf_is_one_these_scenarios_evaluate(sales):
    # Given the alarms Terraform declares for a one-extract catalog
    # Then they are the failure alarms, the extract's late alarm and the sweep's absence alarm
    assert set(sales) == {"runs[failed]", "runs[timed_out]", "late[Sales]", "sweep_silent[0]"}


def test_day_with_a_landing_fires_nothing(sales):
    # Given Sales landing every day at 02:30, the sweep running throughout
    deployment = Deployment({"Sales": EXPECTED}, {"Sales": [at(day, 2.5) for day in range(4)]})

    # When four days are evaluated minute by minute
    # Then no alarm fires: not after a landing (the bug of an absence alarm on RunsLanded), not in between
    for name, alarm in sales.items():
        assert fired(alarm, deployment, at(4)) == [], name


def test_missed_day_fires_late_once_the_expected_landing_passes_and_clears_after_the_next_landing(sales):
    # Given Sales landing on day 0 at 02:30, day 1's run slipping to 09:00, day 2 at 02:30
    deployment = Deployment({"Sales": EXPECTED}, {"Sales": [at(0, 2.5), at(1, 9), at(2, 2.5)]})

    # When three days are evaluated
    spans = fired(sales["late[Sales]"], deployment, at(3))

    # Then late fires once: from the first sweep past 06:00 on day 1 (plus the pending 5 minutes), not
    # before, and clears within the hour after the late landing
    due = at(1, 2) + timedelta(hours=EXPECTED)
    assert len(spans) == 1
    start, end = spans[0]
    assert due < start <= due + SWEEP_EVERY + timedelta(minutes=5)
    assert at(1, 9) <= end <= at(1, 10)
    # And no other alarm fires
    for name in ("runs[failed]", "runs[timed_out]", "sweep_silent[0]"):
        assert fired(sales[name], deployment, at(3)) == [], name


def test_landing_within_its_expected_hours_but_late_in_the_day_fires_nothing(config):
    # Given Sales expected within 8 hours, landing each day at 09:30, seven and a half hours after 02:00
    alarm = alarms(config, {"Sales": 8})["late[Sales]"]
    deployment = Deployment({"Sales": 8}, {"Sales": [at(day, 9.5) for day in range(4)]})

    # When four days are evaluated, Then its late alarm never fires; held to 4 hours it fires every day
    assert fired(alarm, deployment, at(4)) == []
    strict = Deployment({"Sales": EXPECTED}, {"Sales": [at(day, 9.5) for day in range(4)]})
    assert len(fired(alarms(config, {"Sales": EXPECTED})["late[Sales]"], strict, at(4))) == 4


@pytest.mark.parametrize(
    ("metric", "alarm"), [("RunsFailed", "runs[failed]"), ("RunsTimedOut", "runs[timed_out]")]
)
def test_failing_run_fires_its_failure_alarm_at_once_and_for_minutes_only(sales, metric, alarm):
    # Given a daily Sales whose day-1 run ends failed (or timed out) at 03:00, then lands on day 2
    deployment = Deployment(
        {"Sales": EXPECTED},
        {"Sales": [at(0, 2.5), at(2, 2.5)]},
        endings=[(metric, "Sales", at(1, 3))],
    )

    # When two days and a half are evaluated
    spans = fired(sales[alarm], deployment, at(2, 12))

    # Then its alarm fires in the first minute after, and is clear again within the 5-minute window
    assert spans == [(at(1, 3) + timedelta(minutes=0), spans[0][1])]
    assert spans[0][1] < at(1, 3) + timedelta(minutes=5)
    # And the other failure alarm stays quiet
    other = "runs[timed_out]" if alarm == "runs[failed]" else "runs[failed]"
    assert fired(sales[other], deployment, at(2, 12)) == []


def test_extract_that_never_landed_fires_late_at_its_first_expected_landing_after_it_was_first_watched(
    config,
):
    # Given a new extract, Invoices, expected within 8 hours, that has never landed since the deployment
    alarm = alarms(config, {"Invoices": 8})["late[Invoices]"]
    deployment = Deployment({"Invoices": 8})

    # When a day and a half is evaluated
    spans = fired(alarm, deployment, at(1, 12))

    # Then it fires at 10:00 on day 0 (02:00 + 8 hours), and stays firing
    assert len(spans) == 1
    assert at(0, 10) < spans[0][0] <= at(0, 10) + SWEEP_EVERY + timedelta(minutes=5)
    assert spans[0][1] == at(1, 12)


def test_sweep_stopped_fires_the_absence_alarm_while_the_overdue_alarm_sees_nothing(sales):
    # Given Sales landing daily, and the sweep stopping for good on day 1 at 06:00
    stopped = at(1, 6)
    landings = [at(day, 2.5) for day in range(5)]
    deployment = Deployment({"Sales": EXPECTED}, {"Sales": landings}, sweep_stops=stopped)

    # When four days are evaluated
    timeline = sales["sweep_silent[0]"].firing(deployment.points(at(4)), DEPLOYED, at(4))
    silent = periods(timeline)

    # Then the absence alarm fires an hour after the sweep's last figure (plus the pending 5 minutes) ...
    last = stopped - SWEEP_EVERY
    assert last + timedelta(hours=1) < silent[0][0] <= last + timedelta(hours=1, minutes=6)
    # ... is quiet for the hour after each later landing (a landing posts its own 0), and fires again after
    for landing in landings[2:4]:
        assert not any(timeline[landing + timedelta(minutes=m)] for m in range(60))
        assert timeline[landing + timedelta(hours=1, minutes=6)]
    # And the late alarm, which reads figures, never fires: only the absence alarm tells
    assert fired(sales["late[Sales]"], deployment, at(4)) == []


def test_sweep_stopped_and_nothing_landing_fires_for_the_absence_detection_period_only(sales):
    # Given the sweep stopping on day 1 at 06:00 and no landing after it
    stopped = at(1, 6)
    deployment = Deployment({"Sales": EXPECTED}, {"Sales": [at(0, 2.5), at(1, 2.5)]}, sweep_stops=stopped)

    # When five days are evaluated
    silent = fired(sales["sweep_silent[0]"], deployment, at(6))

    # Then the absence alarm fires from an hour after the last figure for 72 hours (absent(72h)), the
    # documented limit of absence alarms (repeat_notification_duration re-notifies daily meanwhile)
    last = stopped - SWEEP_EVERY
    assert len(silent) == 1
    assert silent[0][0] <= last + timedelta(hours=1, minutes=6)
    assert silent[0][1] == last + timedelta(hours=73) - timedelta(minutes=1)
