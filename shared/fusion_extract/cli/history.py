"""`fusion-extract history EXTRACT`: the extract's runs over time, as a table, JSON, a PNG or a web page."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from fusion_extract.cli import chart
from fusion_extract.cli.exits import Exit, Stop
from fusion_extract.cli.service import App
from fusion_extract.cli.service import history as read_history
from fusion_extract.errors import NotFoundError

OUTCOME_STYLE = {"LANDED": "green", "FAILED": "red", "TIMED_OUT": "red", "CANCELLED": "yellow"}


def history(app: App, extract: str, limit: int, plot: Path | None, html: Path | None) -> None:
    """EXTRACT's runs, oldest first: queue, job and transfer time, data landed, outcome."""
    runtime = app.ops.runtime
    try:
        runs = read_history(runtime.catalog, runtime.ledger, extract, limit)
    except NotFoundError as exc:
        raise Stop(Exit.NOT_FOUND, str(exc)) from None
    if plot is not None and runs:
        chart.write_png(extract, runs, plot)
    if html is not None and runs:
        chart.write_html(extract, runs, html)
    if app.json:
        app.emit([run.to_json() for run in runs])
        return
    if not runs:
        click.echo(f"no runs of {extract} in the ledger yet: nothing to chart")
        return
    table = Table(*chart.HEADINGS, title=f"{extract}: {len(runs)} run(s)")
    for run in runs:
        cells = [escape(cell) for cell in chart.table_row(run)]
        style = OUTCOME_STYLE.get(run.state.value)
        table.add_row(*cells[:2], f"[{style}]{cells[2]}[/]" if style else cells[2], *cells[3:])
    app.console.print(table)
    for path in (plot, html):
        if path is not None:
            click.echo(f"wrote {path}")
