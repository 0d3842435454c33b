"""Monitoring's alarm semantics for the subset of MQL our alarms use, evaluated on synthetic metric series.

    alarm = Alarm.parse('HoursSinceLanded[1h]{extract = "Sales"}.groupBy(extract).max() > 26', "PT5M")
    alarm.firing(points, start, end)      # {minute: groups firing}

What is implemented, and the Oracle document each rule comes from (docs.oracle.com/iaas/Content/Monitoring/):
- Query shape `metric[interval]{dim = "v", ...}.groupBy(dims).statistic() <op> threshold`, or
  `.absent(period)` as the trigger rule: Reference/mql.htm (MQL Reference; an alarm query needs metric,
  interval, statistic and a trigger rule, a threshold or absence).
- Interval: the aggregated point stamped t covers raw points in (t - interval, t]; "the timestamp of
  the aggregated data point corresponds to the end of the time window":
  Tasks/create-edit-alarm-query-interval.htm.
- Statistics: count, max, mean (sum / count), min, sum of the window's raw points:
  Tasks/query-metric-statistic.htm.
- Dimension filters keep the streams whose dimension equals the value; groupBy aggregates the kept streams per
  value of the named dimensions, and each group is one time series the alarm reads: Reference/mql.htm.
- absent(): 1 when a stream has no point in the whole interval, 0 when it has; after continuous 1 values for
  the absence detection period (default 2 h, 1m to 72h) it stops returning values:
  Tasks/create-alarm-absence.htm, Tasks/create-edit-alarm-query-absence-detection-period.htm. A group with
  no point in the interval plus the period is therefore no series at all.
- Each series is read as a boolean (non-zero: the trigger rule is met); pendingDuration is how long the
  condition must persist before OK -> FIRING, with PT1M the first breaching evaluation fires, and the alarm
  is OK again once the condition is clear for the most recent minute: the Alarm API reference (Alarm,
  AlarmOverride: query, pendingDuration).
- Assumed, not quoted: Monitoring evaluates an alarm once a minute (the pending duration's granularity), and
  a minute with no value for a series does not breach.
"""

from __future__ import annotations

import bisect
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

MINUTE = timedelta(minutes=1)
QUERY = re.compile(
    r"^(?P<metric>[A-Za-z][A-Za-z0-9_]*)\[(?P<interval>\d+[mhd])\]"
    r"\{(?P<filters>[^}]*)\}"
    r"\.groupBy\((?P<group>[A-Za-z0-9_, ]+)\)"
    r"\.(?P<statistic>[a-z]+)\((?P<argument>[0-9mhd]*)\)"
    r"(?:\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<threshold>-?[0-9.]+))?$"
)
FILTER = re.compile(r'\s*([A-Za-z0-9_]+)\s*=\s*"([^"]*)"\s*(?:,|$)')
STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "count": lambda values: float(len(values)),
    "max": max,
    "mean": lambda values: sum(values) / len(values),
    "min": min,
    "sum": sum,
}
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Point:
    """One raw data point as a function posts it (PostMetricData)."""

    metric: str
    at: datetime
    value: float
    dimensions: Mapping[str, str]


def duration(text: str) -> timedelta:
    """`5m`, `1h`, `3d` (MQL) or `PT5M`, `PT1H` (ISO 8601, pendingDuration)."""
    iso = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?", text)
    if iso and any(iso.groups()):
        return timedelta(hours=int(iso[1] or 0), minutes=int(iso[2] or 0))
    mql = re.fullmatch(r"(\d+)([mhd])", text)
    if not mql:
        raise ValueError(f"not a duration this evaluator reads: {text!r}")
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[mql[2]]: int(mql[1])})


@dataclass(frozen=True)
class Alarm:
    metric: str
    interval: timedelta
    filters: tuple[tuple[str, str], ...]
    group_by: tuple[str, ...]
    statistic: str
    absence_period: timedelta | None  # absent(period): an absence alarm
    comparison: tuple[str, float] | None  # a threshold alarm
    pending: timedelta

    @classmethod
    def parse(cls, query: str, pending_duration: str = "PT1M") -> Alarm:
        """The alarm a query and pendingDuration describe; ValueError for anything outside the subset."""
        parsed = QUERY.match(query.strip())
        if not parsed:
            raise ValueError(f"not a query this evaluator reads: {query!r}")
        filters = tuple(FILTER.findall(parsed["filters"]))
        if "".join(FILTER.sub("", parsed["filters"]).split()):
            raise ValueError(f"a dimension filter this evaluator does not read: {parsed['filters']!r}")
        statistic, argument = parsed["statistic"], parsed["argument"]
        absent = statistic == "absent"
        if absent == bool(parsed["op"]) or (not absent and statistic not in STATISTICS):
            raise ValueError(f"needs a statistic with a threshold, or absent(): {query!r}")
        return cls(
            metric=parsed["metric"],
            interval=duration(parsed["interval"]),
            filters=filters,
            group_by=tuple(name.strip() for name in parsed["group"].split(",")),
            statistic=statistic,
            absence_period=(duration(argument) if argument else timedelta(hours=2)) if absent else None,
            comparison=None if absent else (parsed["op"], float(parsed["threshold"])),
            pending=duration(pending_duration),
        )

    def values(self, points: Iterable[Point], at: datetime) -> dict[tuple[str, ...], float]:
        """Each group's value at one evaluation: the series the alarm reads (no value: no series)."""
        return self._values(self._streams(points), at)

    def breaching(self, points: Iterable[Point], at: datetime) -> set[tuple[str, ...]]:
        return self._breaching(self._values(self._streams(points), at))

    def firing(
        self, points: Iterable[Point], start: datetime, end: datetime
    ) -> dict[datetime, set[tuple[str, ...]]]:
        """The groups FIRING at each minute from start to end: breaching for pendingDuration in a row."""
        streams = self._streams(points)
        needed = max(1, int(self.pending / MINUTE))
        streak: dict[tuple[str, ...], int] = {}
        timeline: dict[datetime, set[tuple[str, ...]]] = {}
        at = start
        while at <= end:
            breaching = self._breaching(self._values(streams, at))
            streak = {key: streak.get(key, 0) + 1 for key in breaching}
            timeline[at] = {key for key, count in streak.items() if count >= needed}
            at += MINUTE
        return timeline

    def _streams(self, points: Iterable[Point]) -> dict[tuple[str, ...], list[Point]]:
        """The filtered raw points of each group, in time order."""
        streams: dict[tuple[str, ...], list[Point]] = {}
        for point in sorted(points, key=lambda p: p.at):
            if point.metric == self.metric and self._matches(point):
                key = tuple(point.dimensions.get(name, "") for name in self.group_by)
                streams.setdefault(key, []).append(point)
        return streams

    def _values(
        self, streams: Mapping[tuple[str, ...], list[Point]], at: datetime
    ) -> dict[tuple[str, ...], float]:
        found: dict[tuple[str, ...], float] = {}
        for key, stream in streams.items():
            upto = bisect.bisect_right(stream, at, key=lambda p: p.at)
            since = bisect.bisect_right(stream, at - self.interval, key=lambda p: p.at)
            window = [p.value for p in stream[since:upto]]
            if self.absence_period is None:
                if window:
                    found[key] = STATISTICS[self.statistic](window)
            elif window:
                found[key] = 0.0
            elif upto and stream[upto - 1].at > at - self.interval - self.absence_period:
                found[key] = 1.0  # absent for the whole interval, not yet for the detection period
        return found

    def _breaching(self, values: Mapping[tuple[str, ...], float]) -> set[tuple[str, ...]]:
        if self.comparison is None:
            return {key for key, value in values.items() if value != 0}
        op, threshold = self.comparison
        return {key for key, value in values.items() if COMPARISONS[op](value, threshold)}

    def _matches(self, point: Point) -> bool:
        return all(point.dimensions.get(name) == value for name, value in self.filters)


def periods(timeline: Mapping[datetime, set[tuple[str, ...]]]) -> list[tuple[datetime, datetime]]:
    """The spans (first, last minute) during which any group was FIRING."""
    spans: list[tuple[datetime, datetime]] = []
    previous: datetime | None = None
    for at in sorted(timeline):
        if timeline[at]:
            if previous is not None and at - previous == MINUTE:  # the minute before fired: one span
                spans[-1] = (spans[-1][0], at)
            else:
                spans.append((at, at))
            previous = at
    return spans
