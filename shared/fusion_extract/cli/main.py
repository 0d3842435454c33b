"""The `fusion-extract` command (docs/cli.md).

Exit codes: one table for every command (cli/exits.py, docs/cli.md). The target and output options
(`--local`, `--endpoints`, `--profile`, `--compartment`, `--json`) go before or after the subcommand.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn
from rich.table import Table

from fusion_extract.chain.ledger.records import Run, RunState, What
from fusion_extract.cli import answers
from fusion_extract.cli import target as targets
from fusion_extract.cli.cloud import GoLive
from fusion_extract.cli.configure import configure, load_profile_path
from fusion_extract.cli.doctor import FAIL, PASS, SKIP, Doctor, Result
from fusion_extract.cli.exits import Exit, Stop
from fusion_extract.cli.history import history as show_history
from fusion_extract.cli.logs import run_lines as run_logs
from fusion_extract.cli.logs import text as log_text
from fusion_extract.cli.ops import Answer, Listing, Ops, run_document
from fusion_extract.cli.options import LOCAL_ENDPOINTS, Options, common, when
from fusion_extract.cli.progress import RunProgress
from fusion_extract.cli.status import status as show_status
from fusion_extract.cli.timeline import entry_text, timeline
from fusion_extract.errors import ConfigError, FusionExtractError

STATES = [state.value for state in RunState]


class Cli:
    """What every command shares: the target, the output form, the console."""

    def __init__(self, target: targets.Target, as_json: bool) -> None:
        self.ops = Ops(target)
        self.json = as_json
        # Piped or captured output gets whole rows rather than the 80 columns of no terminal.
        self.console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)

    @classmethod
    def aimed(cls, options: Options) -> Cli:
        try:
            if options.endpoints is not None or options.local:
                target = targets.from_endpoints(options.endpoints or LOCAL_ENDPOINTS)
            elif options.profile:
                made = targets.from_endpoints(load_profile_path(options.profile))
                target = targets.with_oci_profile(made, options.oci_profile)
            else:
                target = targets.from_environment(options.oci_profile)
        except ConfigError as exc:
            _fail(options.as_json, Exit.UNUSABLE, str(exc))
        if options.compartment:
            target = dataclasses.replace(target, compartment=options.compartment)
        return cls(target, options.as_json)

    def emit(self, doc: Any) -> None:
        click.echo(json.dumps(doc, indent=2, default=str))

    def fail(self, code: Exit, message: str) -> NoReturn:
        _fail(self.json, code, message)


def _fail(as_json: bool, code: Exit, message: str) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"error": message, "exit": int(code)}, indent=2))
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(code)


def pass_cli(command: Callable[..., None]) -> Callable[..., None]:
    """Give the command its Cli, aimed at the target the options name; a Stop, a configuration the
    target refuses, or a target that cannot be read ends the command with its code from the table."""

    @click.pass_context
    def run(ctx: click.Context, *args: Any, **kwargs: Any) -> None:
        app = Cli.aimed(ctx.ensure_object(Options))
        try:
            command(app, *args, **kwargs)
        except Stop as stop:
            app.fail(stop.code, stop.message)
        except FusionExtractError as exc:
            app.fail(Exit.UNUSABLE, str(exc))

    return functools.update_wrapper(run, command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, params=common())
@click.version_option(package_name="fusion-extract", prog_name="fusion-extract")
def cli() -> None:
    """Operate fusion-extract: check a deployment, follow its runs, start, rerun, re-land and cancel them.

    In the cloud: `fusion-extract configure NAME --from -` makes a profile from `terraform output -json`,
    then `--profile NAME`; or the functions' own keys from the environment (docs/configuration.md), with
    FUSION_EXTRACT_FUNCTIONS = `terraform output -json function_ids`.
    """


def command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """A subcommand of `cli` that also takes the target and output options."""

    def register(function: Callable[..., Any]) -> click.Command:
        made: click.Command = cli.command(*args, **kwargs)(function)
        made.params.extend(common())  # after the command's own, in its help too
        return made

    return register


# -- preflight --------------------------------------------------------------------------------------------


@command()
@click.option(
    "--cloud",
    is_flag=True,
    help="Also the go-live check: each function's preflight of its grants, and what Terraform built.",
)
@pass_cli
def doctor(app: Cli, cloud: bool) -> None:
    """Check the deployment in order: config, Vault, IDCS token, Batch API, bucket, topics, schedules.

    With --cloud, the go-live check too (docs/deploy.md): each function's preflight of its own grants,
    then the functions, subscriptions, schedules, alarms, secret and lifecycle rules Terraform built.
    """
    results = Doctor(app.ops).run()
    if cloud:
        usable = results[0].status == PASS and not any(result.unusable for result in results)
        results += GoLive(app.ops).run() if usable else [Result("cloud", SKIP, "needs a usable target first")]
    failed = any(result.status == FAIL for result in results)
    if app.json:
        app.emit({"ok": not failed, "checks": [result.to_json() for result in results]})
    else:
        marks = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "skipped": "[yellow]skip[/]"}
        width = max(len(result.check) for result in results)
        for result in results:
            app.console.print(f"{marks[result.status]}  {result.check:<{width}} ", markup=True, end="")
            app.console.print(result.detail, markup=False)
            if result.fix:
                app.console.print(f"      {'':<{width}} fix: {result.fix}", markup=False)
    sys.exit(Exit.UNUSABLE if failed else Exit.OK)


# -- reading runs -----------------------------------------------------------------------------------------


@command()
@click.option("--extract", help="Only this extract's runs.")
@click.option(
    "--state",
    "states",
    type=click.Choice(STATES, case_sensitive=False),
    multiple=True,
    help="Only runs in this state (repeat for several).",
)
@click.option(
    "--since", metavar="WHEN", help="Only runs started at or after: 2026-12-01, an ISO time, or 36h / 7d ago."
)
@click.option("--until", metavar="WHEN", help="Only runs started at or before (same forms as --since).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@pass_cli
def runs(
    app: Cli, extract: str | None, states: tuple[str, ...], since: str | None, until: str | None, limit: int
) -> None:
    """Recent runs, newest first, from the ledger's index (it reads only the runs it shows)."""
    now = datetime.now(UTC)  # any extract: one that left the catalog keeps its history
    listing = app.ops.listing(
        extract=extract,
        states={RunState(state.upper()) for state in states},
        since=when(since, now, "--since"),
        until=when(until, now, "--until"),
        limit=limit,
    )
    if app.json:
        app.emit(
            {
                "runs": [summary.to_json(now) for summary in listing.runs],
                "summary": _summary(listing, extract, states, since, until),
                "unreadable": listing.unreadable,
            }
        )
        return
    if listing.runs:
        table = Table(
            "run",
            "extract",
            "mode",
            "state",
            "job",
            "files",
            "bytes",
            "rows",
            "started",
            "took",
            "reason",
            "rerun of",
        )
        for summary in listing.runs:
            run = summary.run
            table.add_row(
                run.run_id,
                run.extract,
                run.mode,
                _state(run.state),
                run.job_id or "-",
                f"{summary.landed_files}/{run.file_count}",
                f"{summary.bytes:,}",
                f"{summary.rows:,}",
                run.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                _duration(summary.took(now)),
                _short(run.reason),
                run.rerun_of or "",
            )
        app.console.print(table)
    app.console.print(_summary(listing, extract, states, since, until), markup=False)
    for note in listing.unreadable:
        click.echo(f"warning: {note}", err=True)


@command()
@click.argument("run_id")
@pass_cli
def show(app: Cli, run_id: str) -> None:
    """One run: its whole record, each file's progress, and its timeline."""
    summary = app.ops.load(run_id)
    run = summary.run
    events = timeline(run, summary.files)
    progress = RunProgress.of(run, summary.plan, summary.files, datetime.now(UTC))
    if app.json:
        app.emit(
            {
                "run": run_document(run),
                "files": [_file_json(f) for f in summary.files],
                "progress": progress.to_json(),
                "timeline": [event.to_json() for event in events],
            }
        )
        return
    app.console.print(f"[bold]{run.run_id}[/]  {run.extract} ({run.mode})  {_state(run.state)}")
    for key, value in run_document(run).items():
        if key not in ("files", "plan", "v", "history", "history_dropped") and value not in (
            None,
            [],
            0,
            False,
        ):
            app.console.print(f"  {key:<16} {value}", markup=False)
    app.console.print(f"  {'progress':<16} {progress.line()}", markup=False)
    records = {record.name: record for record in summary.files}
    files = Table(
        "file", "state", "fetched", "size", "unpacked", "units", "attempts", "members", "rows", "reason",
        title="files",
    )  # fmt: skip
    for each in progress.files:
        record = records.get(each.name)
        members = record.members if record is not None else ()
        files.add_row(
            each.name,
            each.state,
            f"{each.fetched:,}",
            f"{each.size:,}",
            f"{each.unpacked:,}",
            f"{each.units_done}/{each.units}",
            str(record.attempts if record is not None else 0),
            str(len(members)),
            f"{sum(m.rows or 0 for m in members):,}",
            (record.reason if record is not None else None) or "",
        )
    app.console.print(files)
    app.console.print("[bold]timeline[/]")
    for event in events:
        app.console.print(f"  {event.at:%Y-%m-%d %H:%M:%S}  {event.text}", markup=False)


@command()
@click.argument("run_id")
@pass_cli
def logs(app: Cli, run_id: str) -> None:
    """The functions' log lines about RUN_ID, oldest first: from the emulators' log files, or in the cloud
    from the functions' invoke log in OCI Logging (a profile made by `configure`)."""
    run = app.ops.run(run_id)
    target = app.ops.target
    found = run_logs(target.logs, run, app.ops.settings, target.compartment, target.control_endpoint)
    if app.json:
        app.emit({"run_id": run.run_id, "extract": run.extract, "lines": found})
        return
    app.console.print(f"{run.run_id}  {run.extract}: {len(found)} log lines", markup=False)
    for line in found:
        app.console.print(log_text(line), markup=False)


@command()
@click.argument("run_id")
@click.option(
    "--interval", type=click.FloatRange(0.05), default=2.0, show_default=True, help="Seconds between looks."
)
@click.option("--timeout", type=click.FloatRange(0), default=None, help="Give up after this many seconds.")
@pass_cli
def watch(app: Cli, run_id: str, interval: float, timeout: float | None) -> None:
    """Follow a run until it is final: bytes fetched and unpacked, units, rate, ETA and each state change.

    In a terminal, a live display; piped, a plain line per change; with --json, one JSON document per
    change (a line each). Exit 0 only if it LANDED.
    """
    give_up = None if timeout is None else time.monotonic() + timeout
    live = sys.stdout.isatty() and not app.json
    with _Display(app, live) as display:
        while True:
            summary = app.ops.load(run_id)
            progress = RunProgress.of(summary.run, summary.plan, summary.files, datetime.now(UTC))
            display.show(progress)
            if summary.run.state.final or (give_up is not None and time.monotonic() >= give_up):
                break
            time.sleep(interval)
    final = summary.run
    if not final.state.final:
        raise Stop(
            Exit.TIMED_OUT,
            f"watch timed out after {timeout:g} s: run {run_id} is {final.state.value} and goes on; "
            f"follow it again with `fusion-extract watch {run_id}`",
        )
    if not app.json:
        app.console.print(
            f"{final.run_id} {_state(final.state)}" + (f": {final.reason}" if final.reason else "")
        )
    sys.exit(Exit.OK if final.state is RunState.LANDED else Exit.RUN_FAILED)


# -- service levels (docs/operating.md) ---------------------------------------------------------------


@command()
@pass_cli
def status(app: Cli) -> None:
    """Each extract: its last landing, that landing's age against the expectation, and its next run."""
    show_status(app)


@command()
@click.argument("extract")
@click.option(
    "--limit", type=click.IntRange(1, 10_000), default=30, show_default=True, help="The latest runs."
)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Also draw the chart as a PNG.")
@click.option(
    "--html", type=click.Path(dir_okay=False, path_type=Path), help="Also write chart and table as HTML."
)
@pass_cli
def history(app: Cli, extract: str, limit: int, plot: Path | None, html: Path | None) -> None:
    """EXTRACT's runs, oldest first: queue, job and transfer time, data landed, outcome."""
    show_history(app, extract, limit, plot, html)


class _Display:
    """What `watch` shows of each look: only what changed, as the output form wants it."""

    def __init__(self, app: Cli, live: bool) -> None:
        self.app = app
        self.last: dict[str, Any] | None = None
        self.changes_shown = 0
        columns = (
            TextColumn("{task.description:<28}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[note]}"),
        )
        self.bar = Progress(*columns, console=app.console, disable=not live, transient=False)
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _Display:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def show(self, progress: RunProgress) -> None:
        doc = progress.to_json()
        moved = {
            k: v
            for k, v in doc.items()
            if k not in ("at", "elapsed_seconds", "rate_bytes_per_second", "eta_seconds")
        }
        changed = moved != self.last
        self.last = moved
        if self.app.json:
            if changed:
                click.echo(json.dumps(doc, separators=(",", ":")))
            return
        history = progress.run.history
        for change in history.since(self.changes_shown):
            if change.what is What.CHANGED:
                self.bar.console.print(f"{change.at:%H:%M:%S} {entry_text(change)}", markup=False)
        self.changes_shown = history.noted
        if self.bar.disable:
            if changed:
                self.bar.console.print(f"{progress.now:%H:%M:%S} {progress.line()}", markup=False)
            return
        rows = [("total", progress.fetched, progress.size, progress.line())]
        rows += [
            (
                f.name,
                f.fetched,
                f.size,
                f"unpacked {f.unpacked:,} B, units {f.units_done}/{f.units}, {f.state}",
            )
            for f in progress.files
        ]
        for name, fetched, size, note in rows:
            if name not in self.tasks:
                self.tasks[name] = self.bar.add_task(name[-28:], total=size or None, note=note)
            self.bar.update(self.tasks[name], completed=fetched, total=size or None, note=note)


# -- acting -----------------------------------------------------------------------------------------------

detached_option = click.option(
    "--detached",
    is_flag=True,
    help="Return once the function accepted the request (202), without its answer.",
)


@command()
@click.argument("extract")
@click.option("--mode", type=click.Choice(["full", "incremental"]), required=True)
@detached_option
@pass_cli
def submit(app: Cli, extract: str, mode: str, detached: bool) -> None:
    """Start a run of EXTRACT now (as its schedule would); prints its run id."""
    app.ops.known_extract(extract)
    # A detached answer has no body, so the run id is chosen here and the chain takes it (Ways in: run).
    run_id = app.ops.new_run_id()
    _act(app, "submit", {"extract": extract, "mode": mode, "run_id": run_id}, detached, started=run_id)


@command()
@click.argument("run_id")
@detached_option
@pass_cli
def rerun(app: Cli, run_id: str, detached: bool) -> None:
    """Rerun a FAILED or TIMED_OUT run: a new run, linked by rerun_of."""
    run = app.ops.run(run_id)
    _act(app, "submit", {"kind": "rerun", "run_id": run_id}, detached, run)


@command()
@click.argument("job_id")
@click.option("--extract", required=True)
@click.option("--mode", type=click.Choice(["full", "incremental"]), required=True)
@detached_option
@pass_cli
def reland(app: Cli, job_id: str, extract: str, mode: str, detached: bool) -> None:
    """Land a succeeded Fusion job again (no new job)."""
    app.ops.known_extract(extract)
    _act(app, "submit", {"kind": "reland", "extract": extract, "job_id": job_id, "mode": mode}, detached)


@command()
@click.argument("run_id", required=False)
@click.option("--extract", help="Cancel this extract's active run instead.")
@detached_option
@pass_cli
def cancel(app: Cli, run_id: str | None, extract: str | None, detached: bool) -> None:
    """End a run (RUN_ID, or --extract's active run) CANCELLED; its lease is freed."""
    if (run_id is None) == (extract is None):
        raise click.UsageError("give either RUN_ID or --extract, not both")
    if extract is not None:
        app.ops.known_extract(extract)
        holder = app.ops.active_run(extract)
        if holder is None:
            raise Stop(
                Exit.REFUSED,
                f"{extract} has no active run: nothing to cancel (`fusion-extract runs --extract "
                f"{answers.quoted(extract)}` lists its runs)",
            )
        run_id = holder
    run = app.ops.run(str(run_id))
    _act(app, "submit", {"kind": "cancel", "run_id": run.run_id}, detached, run)


@command()
@click.argument("step", type=click.Choice(list(targets.STEPS)))
@click.argument("payload")
@detached_option
@pass_cli
def invoke(app: Cli, step: str, payload: str, detached: bool) -> None:
    """Invoke a deployed function with a JSON PAYLOAD ('-' reads stdin), as `fn invoke` does; any answer
    of the step is done (0), whatever its outcome."""
    text = sys.stdin.read() if payload == "-" else payload
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="PAYLOAD") from None
    if not isinstance(document, dict):
        raise click.BadParameter("must be a JSON object", param_hint="PAYLOAD")
    answer = _answered(app, step, document, detached)
    _print(app, answer, Exit.OK, _details(answer.body))
    sys.exit(Exit.OK)


def _act(
    app: Cli,
    step: str,
    payload: dict[str, Any],
    detached: bool,
    run: Run | None = None,
    started: str | None = None,
) -> None:
    """Ask the submit function; say what it did, or what it refused and why, with the matching code.
    `run`: the run the request names; `started`: the id of the run it starts, when the CLI chose it."""
    answer = _answered(app, step, payload, detached)
    if detached:  # accepted, not done: the function's answer is not returned
        if started is not None:
            answer = Answer(True, answer.status, {**answer.body, "run_id": started})
            text = (
                f"accepted, not done yet: the run, if the chain starts it, is {started}; "
                f"`fusion-extract watch {started}` follows it (or says 'no run' if it was refused)"
            )
        else:
            request = answer.body.get("opc_request_id")
            text = f"accepted (request {request}); `fusion-extract runs` shows the result"
        _print(app, answer, Exit.OK, text)
        sys.exit(Exit.OK)
    asked = payload.get("kind", "submit")
    code, text = answers.outcome(str(asked), answer.body, run)
    _print(app, answer, code, text)
    sys.exit(code)


def _answered(app: Cli, step: str, payload: dict[str, Any], detached: bool) -> Answer:
    answer = app.ops.invoke(step, payload, detached=detached)
    if not answer.ok:
        raise answers.failure(step, answer.status, answer.body)
    return answer


def _print(app: Cli, answer: Answer, code: Exit, text: str) -> None:
    if app.json:
        app.emit({"status": answer.status, **answer.body, "exit": int(code), "message": text})
    elif code is Exit.OK:
        app.console.print(text, markup=False)
    else:
        click.echo(f"error: {text}", err=True)


def _details(body: dict[str, Any]) -> str:
    outcome = body.get("outcome", "done")
    return "  ".join([str(outcome), *(f"{k}={v}" for k, v in body.items() if k != "outcome")])


# -- rendering --------------------------------------------------------------------------------------------


def _state(state: RunState) -> str:
    colour = {"LANDED": "green", "FAILED": "red", "TIMED_OUT": "red", "CANCELLED": "yellow"}.get(state.value)
    return f"[{colour}]{state.value}[/]" if colour else state.value


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _short(reason: str | None, most: int = 60) -> str:
    if not reason:
        return ""
    return reason if len(reason) <= most else reason[: most - 1] + "…"


def _summary(
    listing: Listing, extract: str | None, states: tuple[str, ...], since: str | None, until: str | None
) -> str:
    """One line under the table: how many runs of what, or that there are none."""
    what = " or ".join(state.upper() for state in states)
    scope = "".join(
        part
        for part in (
            f" {what}" if what else "",
            f" of {extract}" if extract else "",
            f" since {since}" if since else "",
            f" until {until}" if until else "",
        )
    )
    if not listing.runs:
        return f"no runs{scope}"
    counts: dict[str, int] = {}
    for summary in listing.runs:
        counts[summary.run.state.value] = counts.get(summary.run.state.value, 0) + 1
    tally = ", ".join(f"{count} {state}" for state, count in counts.items())
    shown = len(listing.runs)
    more = "; more with --limit or --since" if listing.limited else ""
    return f"{shown} run{'s' if shown != 1 else ''}{scope}, newest first: {tally}{more}"


def _progress(record: Any) -> str:
    """How far a file in flight is: bytes fetched, or units of members unpacked."""
    if record.units:
        return f"units {sum(unit.state.value == 'DONE' for unit in record.units)}/{len(record.units)}"
    if record.fetch is not None and not record.fetch.done:
        return f"fetched {record.fetch.offset:,} B"
    return ""


def _file_json(record: Any) -> dict[str, Any]:
    return {
        "name": record.name,
        "state": record.state.value,
        "progress": _progress(record),
        "attempts": record.attempts,
        "size": record.size,
        "sha256": record.sha256,
        "members": len(record.members),
        "rows": sum(m.rows or 0 for m in record.members),
        "reason": record.reason,
    }


cli.add_command(configure)


def main() -> None:
    cli(prog_name="fusion-extract")
