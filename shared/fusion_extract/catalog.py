"""The extract catalog: the one declaration of the extracts this deployment runs.

Held as JSON in an object of the landing bucket, which Terraform writes from the same `extracts` map that
builds the schedules, so the functions, the CLI and the schedules read one list. Function configuration
(4 KB in all) names the object, `EXTRACT_CATALOG_OBJECT`; the object's name carries a hash of its content,
so a new catalog comes with new configuration, and a warm container reads its catalog once:

    {"Sales": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=0", "expected_within_hours": 4},
     "Orders": {"mode": "incremental", "schedule": "0 * * * *", "recurrence_type": "CRON",
                "landing_template": "{prefix}/orders/{date}/{job_id}", "enabled": false}}

Only `mode` is required. `expected_within_hours` is the extract's service level: each scheduled run lands
within that many hours of its scheduled start (service_level.py). No catalog (the key unset) or an empty
one (`{}`) declares nothing and refuses nothing: submit then takes any extract name. A key naming an object
that is absent or does not parse is a ConfigError naming the object (and the extract and field): a
deployment that names a catalog never runs without it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fusion_extract.errors import CatalogMissingError, ConfigError, NotFoundError
from fusion_extract.models import Mode
from fusion_extract.ports import ObjectStore
from fusion_extract.schedule import Schedule

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")  # the same rule as a message's extract name
RECURRENCE_TYPES = ("ICAL", "CRON")
_FIELDS = {
    "mode", "schedule", "recurrence_type", "time_zone", "landing_template", "enabled", "expected_within_hours"
}  # fmt: skip
MAX_EXPECTED_HOURS = 744  # a month: Monitoring's alarm and the ledger's memory reach no further
_PLACEHOLDERS = {"prefix": "p", "extract": "e", "mode": "full", "date": "d", "job_id": "1"}


@dataclass(frozen=True)
class Entry:
    name: str
    mode: Mode
    schedule: str | None = None  # an RFC 5545 RRULE, or a cron expression with recurrence_type CRON
    recurrence_type: str = "ICAL"
    time_zone: str = "UTC"
    landing_template: str | None = None  # this extract's own LANDING_TEMPLATE
    enabled: bool = True
    expected_within_hours: float | None = None  # each scheduled run lands within this of its start

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"mode": self.mode.value}
        if self.schedule is not None:
            doc["schedule"] = self.schedule
        if self.recurrence_type != "ICAL":
            doc["recurrence_type"] = self.recurrence_type
        if self.time_zone != "UTC":
            doc["time_zone"] = self.time_zone
        if self.landing_template is not None:
            doc["landing_template"] = self.landing_template
        if not self.enabled:
            doc["enabled"] = False
        if self.expected_within_hours is not None:
            doc["expected_within_hours"] = self.expected_within_hours
        return doc


@dataclass(frozen=True)
class Catalog:
    entries: tuple[Entry, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __contains__(self, name: object) -> bool:
        return any(entry.name == name for entry in self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, name: str) -> Entry | None:
        return next((entry for entry in self.entries if entry.name == name), None)

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def templates(self) -> dict[str, str]:
        """Each extract's own landing template, where it has one."""
        return {e.name: e.landing_template for e in self.entries if e.landing_template is not None}

    def refusal(self, extract: str) -> str | None:
        """Why a run of `extract` must not be submitted, or None (an empty catalog refuses nothing)."""
        if not self.entries or extract in self:
            return None
        return (
            f"extract {extract!r} is not in the catalog (EXTRACT_CATALOG_OBJECT): "
            f"known extracts are {', '.join(sorted(self.names))}; nothing was submitted"
        )

    def to_json(self) -> str:
        return json.dumps({e.name: e.to_json() for e in self.entries}, separators=(",", ":"), sort_keys=True)


def read_catalog(store: ObjectStore, name: str | None, bucket: str) -> Catalog:
    """The catalog in the object `name` of the bucket (EXTRACT_CATALOG_OBJECT); no name: the empty catalog.
    ConfigError naming the object when it is absent or malformed."""
    if name is None:
        return Catalog()
    where = f"{bucket}/{name}"
    try:
        data, _ = store.get_bytes(name)
    except NotFoundError:
        raise CatalogMissingError(
            f"EXTRACT_CATALOG_OBJECT names {where}, which does not exist: terraform apply writes it "
            "(or unset the key to run without a catalog)"
        ) from None
    try:
        return parse_catalog(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError included
        raise ConfigError(f"the extract catalog {where} (EXTRACT_CATALOG_OBJECT) {exc}") from None


def parse_catalog(text: str) -> Catalog:
    """The catalog from its JSON text; ValueError naming the extract and the field that is wrong."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"must be a JSON object of extracts ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError("must be a JSON object of extracts, keyed by name")
    return Catalog(tuple(_entry(name, value) for name, value in sorted(doc.items())))


def _entry(name: str, value: Any) -> Entry:
    where = f"extract {name[:60]!r}"
    if not NAME.match(name):
        raise ValueError(f"{where}: a name holds letters, digits, space, _ . - (up to 100)")
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be an object with at least a mode")
    if unknown := sorted(set(value) - _FIELDS):
        raise ValueError(f"{where} has unknown field(s) {', '.join(k[:40] for k in unknown)}")
    mode = value.get("mode")
    if mode not in (Mode.FULL.value, Mode.INCREMENTAL.value):
        raise ValueError(f"{where}: mode must be full or incremental")
    recurrence_type = value.get("recurrence_type", "ICAL")
    if recurrence_type not in RECURRENCE_TYPES:
        raise ValueError(f"{where}: recurrence_type must be ICAL or CRON")
    for text_field in ("schedule", "time_zone", "landing_template"):
        if value.get(text_field) is not None and not isinstance(value[text_field], str):
            raise ValueError(f"{where}: {text_field} must be text")
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError(f"{where}: enabled must be true or false")
    template = value.get("landing_template")
    if template is not None:
        _check_template(where, template)
    schedule, time_zone = value.get("schedule"), value.get("time_zone") or "UTC"
    within = _service_level(where, schedule, recurrence_type, time_zone, value.get("expected_within_hours"))
    return Entry(
        name=name,
        mode=Mode(mode),
        schedule=schedule,
        recurrence_type=recurrence_type,
        time_zone=time_zone,
        landing_template=template,
        enabled=enabled,
        expected_within_hours=within,
    )


def _service_level(
    where: str, schedule: str | None, recurrence_type: str, time_zone: str, within: Any
) -> float | None:
    """The schedule checked (Resource Scheduler's reading of it) and the expected hours it is held to."""
    if schedule is not None:
        try:
            Schedule.parse(schedule, recurrence_type, time_zone)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    if within is None:
        return None
    if (
        isinstance(within, bool)
        or not isinstance(within, int | float)
        or not 0 < within <= MAX_EXPECTED_HOURS
    ):
        raise ValueError(f"{where}: expected_within_hours must be a number of hours above 0, up to 744")
    return float(within)


def _check_template(where: str, template: str) -> None:
    if "{job_id}" not in template:
        raise ValueError(
            f"{where}: landing_template must contain {{job_id}} so that runs never share a folder"
        )
    try:
        template.format(**_PLACEHOLDERS)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"{where}: landing_template has an unknown placeholder ({exc})") from None
