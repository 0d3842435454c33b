"""The `fusion-extract` command (README: CLI reference).

Exit codes: 0 done; 1 a check failed, a watched run did not land, or a function answered an error;
2 usage; 3 the target or its configuration is not usable; 4 no such run.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from fusion_extract.chain.records import RunState
from fusion_extract.cli import target as targets
from fusion_extract.cli.cloud import GoLive
from fusion_extract.cli.doctor import FAIL, PASS, SKIP, Doctor, Result
from fusion_extract.cli.history import history
from fusion_extract.cli.ops import Answer, Ops, run_document, timeline
from fusion_extract.cli.status import status
from fusion_extract.clock import isoformat
from fusion_extract.errors import ConfigError, FusionExtractError, NotFoundError

OK, FAILED, USAGE, UNUSABLE, NO_RUN = 0, 1, 2, 3, 4
LOCAL_ENDPOINTS = Path(".local") / "endpoints.json"
STATES = [state.value for state in RunState]
T = TypeVar("T")


class Cli:
    """What every command shares: the target, the output form, the console."""

    def __init__(self, target: targets.Target, as_json: bool) -> None:
        self.ops = Ops(target)
        self.json = as_json
        # Piped or captured output gets whole rows rather than the 80 columns of no terminal.
        self.console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)

    def emit(self, doc: Any) -> None:
        click.echo(json.dumps(doc, indent=2, default=str))

    def guarded(self, action: Callable[[], T]) -> T:
        """Run an action; a configuration or missing-run error becomes its exit code and message."""
        try:
            return action()
        except NotFoundError as exc:
            self.fail(NO_RUN, str(exc))
        except ConfigError as exc:
            self.fail(UNUSABLE, str(exc))
        except FusionExtractError as exc:
            self.fail(FAILED, str(exc))

    def fail(self, code: int, message: str) -> NoReturn:
        if self.json:
            self.emit({"error": message, "exit": code})
        else:
            click.echo(f"error: {message}", err=True)
        sys.exit(code)


pass_cli = click.make_pass_decorator(Cli)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--local", is_flag=True, help=f"Talk to the emulators of `make emulator` ({LOCAL_ENDPOINTS}).")
@click.option(
    "--endpoints",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Talk to the emulators this endpoints file describes (make demo: .local/demo/endpoints.json).",
)
@click.option("--profile", help="OCI config file profile (API key) for the cloud; else OCI_AUTH and friends.")
@click.option("--compartment", help="Compartment of the schedules (doctor); default METRICS_COMPARTMENT_ID.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables.")
@click.version_option(package_name="fusion-extract", prog_name="fusion-extract")
@click.pass_context
def cli(
    ctx: click.Context,
    local: bool,
    endpoints: Path | None,
    profile: str | None,
    compartment: str | None,
    as_json: bool,
) -> None:
    """Operate fusion-extract: check a deployment, follow its runs, start, rerun, re-land and cancel them.

    In the cloud the configuration is the functions' own keys, from the environment (README:
    Configuration), with FUSION_EXTRACT_FUNCTIONS = `terraform output -json function_ids`.
    """
    try:
        if endpoints is not None or local:
            target = targets.from_endpoints(endpoints or LOCAL_ENDPOINTS)
        else:
            target = targets.from_environment(profile)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(UNUSABLE)
    if compartment:
        target = targets.Target(
            target.env, target.functions, compartment, target.control_endpoint, target.origin
        )
    ctx.obj = Cli(target, as_json)


# -- preflight --------------------------------------------------------------------------------------------


@cli.command()
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
        configured = results[0].status == PASS
        results += (
            GoLive(app.ops).run() if configured else [Result("cloud", SKIP, "needs config to pass first")]
        )
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
    sys.exit(FAILED if failed else OK)


# -- reading runs -----------------------------------------------------------------------------------------


@cli.command()
@click.option("--extract", help="Only this extract's runs.")
@click.option("--state", type=click.Choice(STATES, case_sensitive=False), help="Only runs in this state.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@pass_cli
def runs(app: Cli, extract: str | None, state: str | None, limit: int) -> None:
    """Recent runs, newest first."""
    found = app.guarded(lambda: app.ops.summaries(extract, state.upper() if state else None, limit))
    now = datetime.now(UTC)
    if app.json:
        app.emit([summary.to_json(now) for summary in found])
        return
    table = Table("run", "extract", "mode", "state", "job", "files", "bytes", "rows", "started", "took")
    for summary in found:
        run = summary.run
        table.add_row(
            run.run_id,
            run.extract,
            run.mode,
            _state(run.state),
            run.job_id or "-",
            f"{summary.landed_files}/{len(run.files)}",
            f"{summary.bytes:,}",
            f"{summary.rows:,}",
            run.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            _duration(summary.took(now)),
        )
    app.console.print(table)


@cli.command()
@click.argument("run_id")
@pass_cli
def show(app: Cli, run_id: str) -> None:
    """One run: its whole record, each file's state, and a timeline."""
    summary = app.guarded(lambda: app.ops.load(run_id))
    run = summary.run
    events = timeline(run, summary.files)
    if app.json:
        app.emit(
            {
                "run": run_document(run),
                "files": [_file_json(f) for f in summary.files],
                "timeline": [{"at": isoformat(at), "event": text} for at, text in events],
            }
        )
        return
    app.console.print(f"[bold]{run.run_id}[/]  {run.extract} ({run.mode})  {_state(run.state)}")
    for key, value in run_document(run).items():
        if key not in ("files", "v") and value not in (None, [], 0, False):
            app.console.print(f"  {key:<16} {value}", markup=False)
    files = Table("file", "state", "progress", "attempts", "size", "members", "rows", "reason", title="files")
    for record in summary.files:
        files.add_row(
            record.name,
            record.state.value,
            _progress(record),
            str(record.attempts),
            f"{record.size or 0:,}",
            str(len(record.members)),
            f"{sum(m.rows or 0 for m in record.members):,}",
            record.reason or "",
        )
    app.console.print(files)
    app.console.print("[bold]timeline[/]")
    for at, text in events:
        app.console.print(f"  {at:%Y-%m-%d %H:%M:%S}  {text}", markup=False)


@cli.command()
@click.argument("run_id")
@click.option(
    "--interval", type=click.FloatRange(0.05), default=2.0, show_default=True, help="Seconds between looks."
)
@click.option("--timeout", type=click.FloatRange(0), default=None, help="Give up after this many seconds.")
@pass_cli
def watch(app: Cli, run_id: str, interval: float, timeout: float | None) -> None:
    """Follow a run live (files and bytes landed) until it is final; exit 0 only if it LANDED."""
    give_up = None if timeout is None else time.monotonic() + timeout
    summary = app.guarded(lambda: app.ops.load(run_id))
    columns = (TextColumn("{task.description:<6}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, DownloadColumn(), console=app.console, disable=app.json, transient=False) as bar:
        files = bar.add_task("files", total=None)
        data = bar.add_task("bytes", total=None)
        last = ""
        while True:
            run = summary.run
            landed, total = summary.archive_bytes
            bar.update(files, completed=summary.landed_files, total=len(run.files) or None)
            bar.update(data, completed=landed, total=total or None)
            if not app.json and run.state.value != last:
                bar.console.print(f"{datetime.now(UTC):%H:%M:%S} {run.state.value}", markup=False)
                last = run.state.value
            if run.state.final or (give_up is not None and time.monotonic() >= give_up):
                break
            time.sleep(interval)
            summary = app.guarded(lambda: app.ops.load(run_id))
    final = summary.run
    if app.json:
        app.emit(summary.to_json(datetime.now(UTC)))
    else:
        app.console.print(
            f"{final.run_id} {_state(final.state)}" + (f": {final.reason}" if final.reason else "")
        )
    sys.exit(OK if final.state is RunState.LANDED else FAILED)


# -- acting -----------------------------------------------------------------------------------------------

detached_option = click.option(
    "--detached",
    is_flag=True,
    help="Return once the function accepted the request (202), without its answer.",
)


@cli.command()
@click.argument("extract")
@click.option("--mode", type=click.Choice(["full", "incremental"]), required=True)
@detached_option
@pass_cli
def submit(app: Cli, extract: str, mode: str, detached: bool) -> None:
    """Start a run of EXTRACT now (as its schedule would)."""
    _act(app, "submit", {"extract": extract, "mode": mode}, detached)


@cli.command()
@click.argument("run_id")
@detached_option
@pass_cli
def rerun(app: Cli, run_id: str, detached: bool) -> None:
    """Rerun a FAILED or TIMED_OUT run: a new run, linked by rerun_of."""
    _act(app, "submit", {"kind": "rerun", "run_id": run_id}, detached)


@cli.command()
@click.argument("job_id")
@click.option("--extract", required=True)
@click.option("--mode", type=click.Choice(["full", "incremental"]), required=True)
@detached_option
@pass_cli
def reland(app: Cli, job_id: str, extract: str, mode: str, detached: bool) -> None:
    """Land a succeeded Fusion job again (no new job)."""
    _act(app, "submit", {"kind": "reland", "extract": extract, "job_id": job_id, "mode": mode}, detached)


@cli.command()
@click.argument("run_id", required=False)
@click.option("--extract", help="Cancel this extract's active run instead.")
@detached_option
@pass_cli
def cancel(app: Cli, run_id: str | None, extract: str | None, detached: bool) -> None:
    """End a run (RUN_ID, or --extract's active run) CANCELLED; its lease is freed."""
    if (run_id is None) == (extract is None):
        raise click.UsageError("give either RUN_ID or --extract, not both")
    payload = {"kind": "cancel", "run_id": run_id} if run_id else {"kind": "cancel", "extract": extract}
    _act(app, "submit", payload, detached)


@cli.command()
@click.argument("step", type=click.Choice(list(targets.STEPS)))
@click.argument("payload")
@detached_option
@pass_cli
def invoke(app: Cli, step: str, payload: str, detached: bool) -> None:
    """Invoke a deployed function with a JSON PAYLOAD ('-' reads stdin), as `fn invoke` does."""
    text = sys.stdin.read() if payload == "-" else payload
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="PAYLOAD") from None
    if not isinstance(document, dict):
        raise click.BadParameter("must be a JSON object", param_hint="PAYLOAD")
    _act(app, step, document, detached)


def _act(app: Cli, step: str, payload: dict[str, Any], detached: bool) -> None:
    answer: Answer = app.guarded(lambda: app.ops.invoke(step, payload, detached=detached))
    if app.json:
        app.emit({"status": answer.status, **answer.body})
    elif answer.ok:
        outcome = answer.body.get("outcome", "accepted" if detached else "done")
        rest = {k: v for k, v in answer.body.items() if k != "outcome"}
        details = "  ".join(f"{k}={v}" for k, v in rest.items())
        app.console.print(f"[bold]{outcome}[/]  {details}".rstrip())
    else:
        click.echo(
            f"error: {step} answered {answer.status}: {answer.body.get('message', answer.body)}", err=True
        )
    sys.exit(OK if answer.ok else FAILED)


# -- rendering --------------------------------------------------------------------------------------------


def _state(state: RunState) -> str:
    colour = {"LANDED": "green", "FAILED": "red", "TIMED_OUT": "red", "CANCELLED": "yellow"}.get(state.value)
    return f"[{colour}]{state.value}[/]" if colour else state.value


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


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


cli.add_command(status)  # service levels (README: Service levels)
cli.add_command(history)


def main() -> None:
    cli(prog_name="fusion-extract")
