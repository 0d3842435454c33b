"""What the CLI does, apart from how it shows it: read the ledger, invoke the functions, summarise runs."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import oci

from fusion_extract.chain.ledger.codec import run_to_doc
from fusion_extract.chain.ledger.quarantine import set_aside
from fusion_extract.chain.ledger.records import FileRecord, FileState, Run, RunState, new_run_id
from fusion_extract.chain.ledger.store import Unreadable
from fusion_extract.cli.exits import Exit, Stop
from fusion_extract.cli.target import Target
from fusion_extract.clock import isoformat, new_id
from fusion_extract.config import Settings
from fusion_extract.errors import IntegrityError, NotFoundError
from fusion_extract.models import OutputFile
from fusion_extract.oci.clients import signer_and_config
from fusion_extract.oci.invoke import OciInvoker
from fusion_extract.runtime import Runtime

SYNC_READ_TIMEOUT = 330.0  # a sync invocation may take the function's whole 300 s


@dataclass(frozen=True)
class Answer:
    """A function's answer: 200/202 with its body, or the error it (or the platform) gave."""

    ok: bool
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Summary:
    """One run as `runs` lists it."""

    run: Run
    files: list[FileRecord]
    plan: list[OutputFile] = field(default_factory=list)  # read for one run shown (`show`, `watch`)

    @property
    def landed_files(self) -> int:
        return sum(1 for f in self.files if f.state is FileState.LANDED)

    @property
    def bytes(self) -> int:
        return sum(m.size for f in self.files for m in f.members)

    @property
    def rows(self) -> int:
        return sum(m.rows or 0 for f in self.files for m in f.members)

    def took(self, now: datetime) -> float:
        end = self.run.updated_at if self.run.state.final else now
        return max((end - self.run.created_at).total_seconds(), 0.0)

    def to_json(self, now: datetime) -> dict[str, Any]:
        run = self.run
        return {
            "run_id": run.run_id,
            "extract": run.extract,
            "mode": run.mode,
            "state": run.state.value,
            "job_id": run.job_id,
            "files": run.file_count,
            "files_landed": self.landed_files,
            "bytes": self.bytes,
            "rows": self.rows,
            "started": isoformat(run.created_at),
            "took_seconds": round(self.took(now), 3),
            "reason": run.reason,
            "rerun_of": run.rerun_of,
        }


@dataclass(frozen=True)
class Listing:
    """What `runs` found: the runs, newest first; the unreadable documents met (a run's are set aside
    and alerted, as the sweep does); whether the limit cut the listing short."""

    runs: list[Summary]
    unreadable: list[str]
    limited: bool


def run_document(run: Run) -> dict[str, Any]:
    return run_to_doc(run)


class Ops:
    def __init__(self, target: Target) -> None:
        self.target = target

    @cached_property
    def settings(self) -> Settings:
        return Settings.from_mapping(self.target.env)

    @cached_property
    def runtime(self) -> Runtime:
        return Runtime(self.settings)

    # -- the ledger ---------------------------------------------------------------------------------------

    def listing(
        self,
        *,
        extract: str | None = None,
        states: Collection[RunState] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int,
    ) -> Listing:
        """The newest `limit` runs that match, from the ledger's index: reads what it shows, and sets
        aside (quarantine, alert) any unreadable run document it meets instead of failing."""
        ledger = self.runtime.ledger
        shown: list[Summary] = []
        moved: list[str] = []
        found = ledger.recent_runs(extract=extract, states=states, since=since, until=until)
        for current in found:
            if isinstance(current, Unreadable):
                moved.append(self._set_aside(current))
                continue
            if len(shown) == limit:
                return Listing(shown, moved, limited=True)
            try:
                shown.append(self.summary(current.value))
            except IntegrityError as exc:  # a file record: the run is listed all the same, without files
                shown.append(Summary(current.value, []))
                moved.append(f"{exc}; the run is listed without its files")
        return Listing(shown, moved, limited=False)

    def summary(self, run: Run) -> Summary:
        return Summary(run, [v.value for v in self.runtime.ledger.files(run.run_id)])

    def run(self, run_id: str) -> Run:
        """The run; Stop(NOT_FOUND) naming it when the ledger has none of that id, or when its document
        cannot be read (then it is set aside and alerted, as the sweep would)."""
        ledger = self.runtime.ledger
        try:
            return ledger.load_run(run_id).value
        except NotFoundError:
            raise Stop(
                Exit.NOT_FOUND, f"no run {run_id!r} in the ledger ({self.settings.state_prefix}/runs/)"
            ) from None
        except IntegrityError as exc:
            unreadable = Unreadable(f"{self.settings.state_prefix}/runs/{run_id}.json", str(exc), run_id)
            raise Stop(Exit.NOT_FOUND, self._set_aside(unreadable)) from None

    def load(self, run_id: str) -> Summary:
        """One run with its files' records and its plan."""
        summary = self.summary(self.run(run_id))
        return replace(summary, plan=self.runtime.ledger.planned_files(summary.run))

    def known_extract(self, extract: str) -> None:
        """Stop(NOT_FOUND) for an extract the catalog does not declare (a typo costs nothing)."""
        refusal = self.runtime.catalog.refusal(extract)
        if refusal is not None:
            raise Stop(Exit.NOT_FOUND, refusal)

    def active_run(self, extract: str) -> str | None:
        """The run holding the extract's lease, if any."""
        return self.runtime.ledger.lease_holder(extract)

    def new_run_id(self) -> str:
        """A run id as the chain makes them, for a run the CLI starts (so that it knows the id at once)."""
        return new_run_id(datetime.now(UTC), new_id)

    def _set_aside(self, found: Unreadable) -> str:
        s = self.settings
        done = set_aside(self.runtime.ledger, self.runtime.alerter.notify, found, s.bucket, s.namespace)
        if done == "quarantined":
            return f"{found.problem}; moved to {self.settings.state_prefix}/quarantine/ and alerted"
        return f"{found.problem}; it could not be moved aside: {done}"

    # -- the functions ---------------------------------------------------------------------------------

    def invoke(self, step: str, payload: dict[str, Any], *, detached: bool = False) -> Answer:
        """Invoke a deployed function through the Functions API, as `fn invoke` does."""
        function_id = self.target.function_id(step)
        invoker = OciInvoker(self._invoke_client(function_id))
        try:
            if detached:
                request_id = invoker.invoke_detached(function_id, payload)
                return Answer(True, 202, {"accepted": True, "opc_request_id": request_id})
            body = invoker.invoke(function_id, payload)
        except Exception as exc:
            return _failure(exc)
        try:
            answer = json.loads(body) if body else {}
        except ValueError:
            answer = {"text": body.decode(errors="replace")}
        return Answer(True, 200, answer if isinstance(answer, dict) else {"answer": answer})

    def _invoke_client(self, function_id: str) -> Any:
        settings = self.settings
        config, signer = signer_and_config(settings)
        endpoint = settings.functions_endpoint
        if endpoint is None:  # the function's own invoke endpoint, as `oci fn function invoke` finds it
            management = oci.functions.FunctionsManagementClient(config, signer=signer)
            endpoint = management.get_function(function_id).data.invoke_endpoint
        return oci.functions.FunctionsInvokeClient(
            config,
            signer=signer,
            service_endpoint=endpoint,
            timeout=(settings.connect_timeout, SYNC_READ_TIMEOUT),
            retry_strategy=oci.retry.NoneRetryStrategy(),
            circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
        )


def _failure(exc: Exception) -> Answer:
    """The function's own error document when it answered one (502 with `{"error", "message"}`)."""
    cause = exc.__cause__ if isinstance(exc.__cause__, oci.exceptions.ServiceError) else exc
    if isinstance(cause, oci.exceptions.ServiceError):
        try:
            inner = json.loads(cause.message)
        except (TypeError, ValueError):
            inner = None
        if isinstance(inner, dict) and "message" in inner:
            return Answer(False, int(cause.status), inner)
        return Answer(False, int(cause.status), {"error": str(cause.code), "message": str(cause.message)})
    return Answer(False, 0, {"error": type(exc).__name__, "message": str(exc)})
