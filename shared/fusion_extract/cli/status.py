"""`fusion-extract status`: each catalog extract against its service level (docs/operating.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import click
from rich.table import Table

from fusion_extract.cli.chart import duration
from fusion_extract.cli.service import App, ExtractStatus, statuses

VERDICT_STYLE = {"LATE": "bold red", "on time": "green", "waiting": "yellow"}


def status(app: App) -> None:
    """Each extract: its last landing, that landing's age against the expectation, and its next run."""
    now = datetime.now(UTC)
    runtime = app.ops.runtime
    rows = statuses(runtime.catalog, runtime.ledger, now)
    if app.json:
        app.emit([row.to_json() for row in rows])
        return
    if not rows:
        click.echo("no extracts: the catalog (EXTRACT_CATALOG_OBJECT) declares none")
        return
    table = Table("extract", "last landed", "age", "expected", "service level", "next run")
    for row in rows:
        table.add_row(
            row.entry.name,
            _when(row.standing.landed, row),
            "-" if row.age_hours is None else duration(row.age_hours * 3600),
            _expected(row),
            _styled(row, now),
            _when(row.standing.next_run, row),
        )
    app.console.print(table)


def _when(moment: datetime | None, row: ExtractStatus) -> str:
    """In the extract's own time zone, as its schedule reads."""
    zone = row.entry.time_zone
    return "-" if moment is None else f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


def _expected(row: ExtractStatus) -> str:
    within = row.entry.expected_within_hours
    return "-" if within is None else f"within {within:g} h of each start"


def _styled(row: ExtractStatus, now: datetime) -> str:
    text = row.verdict
    if text == "LATE":
        text = f"LATE by {duration(row.standing.hours_late(now) * 3600)}"
    style = VERDICT_STYLE.get(row.verdict)
    return f"[{style}]{text}[/]" if style else text
