"""The whole product on this machine: both emulators, and the three functions under the real fdk runtime,
wired to topics and schedules the way Terraform wires them in the cloud. Same code; only endpoints differ.

    catalog = {"Sales": {"mode": "full"}}  # written into the bucket, as Terraform writes it
    with LocalChain(workdir, config={"POLL_BUDGET_SECONDS": "1"}, catalog=catalog) as chain:
        chain.fusion.define_extract("Sales", ExtractScenario(chunks=3))
        chain.schedule("Sales", "full", "FREQ=DAILY;BYHOUR=2;BYMINUTE=0")
        chain.fire("Sales")                      # what Resource Scheduler does when the schedule comes due
        run = chain.wait_for_final_run("Sales")  # follows the ledger in the bucket
        chain.alerts                             # what people were told (the alerts topic's messages)

Used by the end-to-end tests and by `make demo`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from fusion_extract.catalog import parse_catalog
from fusion_extract.chain.alerts import read_alert
from fusion_extract.chain.ledger.codec import run_from_doc
from fusion_extract.chain.ledger.records import Run
from fusion_extract.errors import MessageError
from tests.clocks import ShiftedClock
from tests.emulators.fdk_runtime import FDK_SCRIPT, Container, FdkFunction
from tests.emulators.fusion import FusionEmulator
from tests.emulators.oci import COMPARTMENT, OciEmulator
from tests.emulators.oci.functions import FunctionsService, RecordingFunction, wait_settled
from tests.emulators.oci.logsearch import InvokeLog, Line, LogSearch, function_log_lines
from tests.emulators.oci.management import APPLICATION, APPLICATION_NAME, Management
from tests.emulators.oci.notifications import NotificationsService
from tests.emulators.oci.scheduler import SchedulerService

REPO = Path(__file__).resolve().parents[2]
BUCKET = "fusion-landing"
NAMESPACE = "emuns"
CLIENT_ID, CLIENT_SECRET = "fusion-extract-client", "emulated-client-secret"
FUNCTIONS = ("submit", "poll", "transfer")
SWEEP = "sweep"
IMAGE = "emu.ocir.io/emuns/fusion-extract:local"
LOG_GROUP = "ocid1.loggroup.oc1.emu.fusionextract"  # terraform/logging.tf's log group and invoke log
INVOKE_LOG = "ocid1.log.oc1.emu.invoke"


def function_ocid(name: str) -> str:
    return f"ocid1.fnfunc.oc1.emu.{name}"


def catalog_object_name(text: str) -> str:
    """Where Terraform writes a catalog (terraform/locals.tf): named by a hash of its content."""
    return f"_catalog/extracts-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"


class LocalChain:
    def __init__(
        self,
        workdir: Path,
        *,
        bucket_root: Path | None = None,
        config: Mapping[str, str] | None = None,
        catalog: Mapping[str, Any] | None = None,
        retry_unit_seconds: float = 0.05,
        functions_root: Path = REPO / "functions",
        fdk_script: Path = FDK_SCRIPT,
        first_job_id: int = 44046,
        container: Container | None = None,
    ) -> None:
        self.workdir = workdir
        self.functions_root = functions_root  # or folders staged by `make stage`
        self.fdk_script = fdk_script  # or the fdk of a clean environment built for the staged folders
        self.container = container  # or the function image's way of starting them (another user...)
        self.bucket_root = bucket_root or workdir / "bucket"
        self.overrides = dict(config or {})
        self.catalog = dict(catalog) if catalog is not None else None  # None: EXTRACT_CATALOG_OBJECT unset
        self.fusion_clock = ShiftedClock()  # real time, unless a test moves Fusion's jobs on
        self.fusion = FusionEmulator(
            clock=self.fusion_clock, workdir=workdir / "fusion", first_job_id=first_job_id
        )
        self.oci = OciEmulator(root=self.bucket_root, namespace=NAMESPACE)
        self.functions = FunctionsService()
        self.ons = NotificationsService(self.functions, retry_unit_seconds=retry_unit_seconds)
        self.scheduler = SchedulerService(self.functions, grants=self.oci.grants)
        # What operators' tools read first: GetFunction (oci fn function invoke), GetTopic, ListSchedules.
        self.management = Management(self.functions, self.ons, self.scheduler, compartment=COMPARTMENT)
        self.inbox = RecordingFunction("alerts-inbox")  # subscribed to the alerts topic like an e-mail
        # The application's invoke log: what the functions write, searchable as in OCI Logging.
        invoke_log = InvokeLog(COMPARTMENT, LOG_GROUP, INVOKE_LOG, APPLICATION, APPLICATION_NAME)
        self.logsearch = LogSearch(invoke_log, self.log_lines)
        self.topics: dict[str, str] = {}
        self.runtimes: dict[str, FdkFunction] = {}
        self.env: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> LocalChain:
        """Start everything; on failure, stop what was started and raise."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalChain:
        self.fusion.start()
        self.fusion.add_client(CLIENT_ID, CLIENT_SECRET)
        self.oci.start()
        self.oci.add_service(self.functions)
        self.oci.add_service(self.ons)
        self.oci.add_service(self.management)
        self.oci.add_service(self.logsearch)
        self.oci.create_bucket(BUCKET)
        if self.catalog is not None:
            self.overrides.setdefault("EXTRACT_CATALOG_OBJECT", self.write_catalog(self.catalog))
        secret = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}).encode()
        secret_id = self.oci.put_secret("fusion-extract-credentials", secret)
        self.topics = {
            name: self.ons.create_topic(f"fusion-extract-{name}")
            for name in ("poll", "transfer", "rerun", "alerts")
        }
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.env = self.config(secret_id)
        for name in FUNCTIONS:
            principal = self.oci.resource_principal_env(
                self.workdir / "principals" / name, resource_id=function_ocid(name)
            )
            self.runtimes[name] = FdkFunction(
                self.functions_root / name,
                {**self.env, **principal},
                name=f"fusion-extract-{name}",
                log_path=self.workdir / "logs" / f"{name}.log",
                fn_id=function_ocid(name),
                fdk_script=self.fdk_script,
                container=self.container,
            )
        _all_at_once(FdkFunction.start, self.runtimes.values())  # three processes, each its own start-up
        for name, runtime in self.runtimes.items():
            self.functions.register(function_ocid(name), runtime, config=self.env, image=IMAGE)
        self.functions.register(function_ocid("alerts"), self.inbox)
        self.ons.subscribe(self.topics["poll"], function_ocid("poll"))
        self.ons.subscribe(self.topics["transfer"], function_ocid("transfer"))
        self.ons.subscribe(self.topics["rerun"], function_ocid("submit"))
        self.ons.subscribe(self.topics["alerts"], function_ocid("alerts"))
        self.scheduler.add_schedule(
            SWEEP, function_ocid("poll"), "CRON", "*/5 * * * *", json.dumps({"kind": "sweep"})
        )
        self._alarms_and_lifecycle()
        return self

    def _alarms_and_lifecycle(self) -> None:
        """The alarms of terraform/monitoring.tf and the lifecycle rules of terraform/storage.tf."""
        alerts = [self.topics["alerts"]]
        for key, metric in (("failed", "RunsFailed"), ("timed-out", "RunsTimedOut")):
            query = f'{metric}[5m]{{deployment = "fusion-extract"}}.groupBy(extract).sum() > 0'
            self.oci.monitoring.add_alarm(f"fusion-extract-run-{key}", query, alerts)
        watched = 'HoursSinceLanded[1h]{deployment = "fusion-extract"}.groupBy(deployment).absent(72h)'
        self.oci.monitoring.add_alarm("fusion-extract-sweep-silent", watched, alerts)
        for entry in parse_catalog(json.dumps(self.catalog or {})):
            if entry.enabled:
                dimensions = f'deployment = "fusion-extract", extract = "{entry.name}"'
                query = f"HoursLate[1h]{{{dimensions}}}.groupBy(extract).max() > 0"
                self.oci.monitoring.add_alarm(f"fusion-extract-late-{entry.name.lower()}", query, alerts)
        state, staging = self.env.get("STATE_PREFIX", "_state"), self.env.get("STAGING_PREFIX", "_staging")
        self.oci.objectstorage.set_lifecycle(BUCKET, lifecycle_rules(state, staging))

    def stop(self) -> None:
        self.scheduler.stop()
        self.ons.close()
        _all_at_once(FdkFunction.stop, self.runtimes.values())
        self.oci.stop()
        self.fusion.stop()

    def __enter__(self) -> LocalChain:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def config(self, secret_id: str) -> dict[str, str]:
        """The function configuration, as Terraform would set it, pointed at the emulators."""
        endpoint = self.oci.endpoint
        return {
            "FUSION_BASE_URL": self.fusion.base_url,
            "IDCS_URL": self.fusion.idcs_url,
            "FUSION_SCOPE": self.fusion.scope,
            "CA_BUNDLE": str(self.fusion.ca_path),
            "CREDENTIALS_SECRET_ID": secret_id,
            "OCI_AUTH": "resource_principal",
            "OCI_OBJECTSTORAGE_ENDPOINT": endpoint,
            "OCI_SECRETS_ENDPOINT": endpoint,
            "OCI_NOTIFICATIONS_ENDPOINT": endpoint,
            "OCI_FUNCTIONS_ENDPOINT": endpoint,
            "OCI_MONITORING_ENDPOINT": endpoint,
            "METRICS_COMPARTMENT_ID": COMPARTMENT,
            "BUCKET_NAME": BUCKET,
            "BUCKET_NAMESPACE": NAMESPACE,
            "POLL_TOPIC_ID": self.topics["poll"],
            "TRANSFER_TOPIC_ID": self.topics["transfer"],
            "RERUN_TOPIC_ID": self.topics["rerun"],
            "ALERTS_TOPIC_ID": self.topics["alerts"],
            "POLL_BUDGET_SECONDS": "1",
            "POLL_MIN_INTERVAL": "0.2",
            "POLL_MAX_INTERVAL": "0.5",
            "RERUN_BACKOFF_SECONDS": "0",
            "FILE_RETRY_SECONDS": "0",
            "UPLOAD_PART_MB": "1",
            "HTTP_MAX_RETRY_SECONDS": "10",
            "LOG_LEVEL": "INFO",
            **self.overrides,
        }

    def write_catalog(self, catalog: Mapping[str, Any]) -> str:
        """What Terraform does with `extracts`: the catalog object in the bucket; its name, for
        EXTRACT_CATALOG_OBJECT."""
        text = json.dumps(catalog, sort_keys=True)
        name = catalog_object_name(text)
        self.oci.put_object(BUCKET, name, text.encode())
        return name

    def write_endpoints(self, path: Path) -> dict[str, Any]:
        """Every endpoint and OCID, and `config`: the product's configuration for a shell (API-key auth)."""
        (self.workdir / "oci").mkdir(parents=True, exist_ok=True)
        config_file = self.oci.write_config_file(self.workdir / "oci" / "config")
        shell = {**self.env, "OCI_AUTH": "config_file", "OCI_CONFIG_FILE": str(config_file)}
        endpoints = {
            "oci": {"endpoint": self.oci.endpoint, "namespace": NAMESPACE},
            "fusion": {
                "base_url": self.fusion.base_url,
                "idcs_url": self.fusion.idcs_url,
                "ca_path": str(self.fusion.ca_path),
                "scope": self.fusion.scope,
            },
            "bucket": {"name": BUCKET, "folder": str(self.bucket_root / BUCKET)},
            "topics": self.topics,
            "functions": {name: function_ocid(name) for name in FUNCTIONS},
            "application": {"id": APPLICATION, "name": APPLICATION_NAME},
            "compartment": COMPARTMENT,
            "logs": str(self.workdir / "logs"),
            "logging": {"log_group_id": LOG_GROUP, "log_id": INVOKE_LOG},
            "config": shell,
        }
        path.write_text(json.dumps(endpoints, indent=2) + "\n")
        return endpoints

    def log_lines(self) -> list[Line]:
        """Every line the three functions wrote so far (their invoke log's content)."""
        return [
            line
            for name in FUNCTIONS
            for line in function_log_lines(
                self.workdir / "logs" / f"{name}.log", function_ocid(name), f"fusion-extract-{name}"
            )
        ]

    # -- ways in ---------------------------------------------------------------------------------------

    def schedule(
        self,
        extract: str,
        mode: str,
        ical: str = "FREQ=DAILY;BYHOUR=2;BYMINUTE=0",
        recurrence_type: str = "ICAL",
    ) -> None:
        """One Resource Scheduler schedule per extract, invoking submit with the extract as BODY."""
        body = json.dumps({"extract": extract, "mode": mode})
        self.scheduler.add_schedule(
            f"extract-{extract}", function_ocid("submit"), recurrence_type, ical, body
        )

    def schedule_catalog(self) -> None:
        """A schedule per enabled extract of the catalog, as Terraform builds them from `extracts`."""
        for entry in parse_catalog(json.dumps(self.catalog or {})):
            if entry.enabled:
                rule = entry.schedule or "FREQ=DAILY;BYHOUR=2;BYMINUTE=0"
                self.schedule(entry.name, entry.mode.value, rule, entry.recurrence_type)

    def fire(self, extract: str) -> None:
        self.scheduler.fire_now(f"extract-{extract}")

    def sweep(self) -> None:
        self.scheduler.fire_now(SWEEP)

    def invoke(self, function: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """`fn invoke fusion-extract <function>`: synchronous; raises MessageError with the error body."""
        result = self.functions.invoke(function_ocid(function), json.dumps(payload).encode())
        if result.status != 200:
            raise MessageError(f"{function} answered {result.status}: {result.body.decode(errors='replace')}")
        answer: dict[str, Any] = json.loads(result.body)
        return answer

    # -- what happened ---------------------------------------------------------------------------------

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [read_alert(body.decode()) for body, _ in self.inbox.calls]

    def runs(self, extract: str | None = None) -> list[Run]:
        folder = self.oci.object_path(BUCKET, "_state/runs")
        found = (
            [run_from_doc(json.loads(p.read_bytes())) for p in sorted(folder.glob("*.json"))]
            if folder.is_dir()
            else []
        )
        return [run for run in found if extract is None or run.extract == extract]

    def landed_path(self, name: str) -> Path:
        return self.oci.object_path(BUCKET, name)

    def settle(self, timeout: float = 60) -> None:
        """Wait until nothing is queued or running anywhere (bounded)."""
        if not wait_settled([self.ons, self.functions], timeout):
            raise TimeoutError(f"the chain did not settle within {timeout} s")

    def wait_for_final_run(self, extract: str, timeout: float = 90, count: int = 1) -> Run:
        """Wait (bounded) until `count` runs of the extract reached a final state; the latest one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            finals = [run for run in self.runs(extract) if run.state.final]
            if len(finals) >= count:
                self.settle(max(deadline - time.monotonic(), 1))
                return sorted(self.runs(extract), key=lambda r: r.created_at)[-1]
            self.functions.wait_idle(0.2)
        states = {run.run_id: run.state.value for run in self.runs(extract)}
        raise TimeoutError(
            f"no final run of {extract} within {timeout} s; runs: {states}; logs in {self.workdir}"
        )


def lifecycle_rules(state_prefix: str, staging_prefix: str) -> list[dict[str, Any]]:
    """The landing bucket's rules as terraform/storage.tf writes them (ObjectLifecycleRule JSON)."""

    def rule(name: str, target: str, action: str, days: int, prefix: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] = {
            "name": name, "target": target, "action": action, "timeAmount": days, "timeUnit": "DAYS",
            "isEnabled": True,
        }  # fmt: skip
        if prefix is not None:
            found["objectNameFilter"] = {"inclusionPrefixes": [f"{prefix}/"]}
        return found

    return [
        rule("abort-incomplete-multipart-uploads", "multipart-uploads", "ABORT", 7),
        rule("expire-run-ledger", "objects", "DELETE", 90, state_prefix),
        rule("expire-abandoned-staging", "objects", "DELETE", 7, staging_prefix),
        rule("expire-previous-versions", "previous-object-versions", "DELETE", 30),
    ]


def _all_at_once(action: Callable[[FdkFunction], object], runtimes: Iterable[FdkFunction]) -> None:
    """Run `action` on every runtime in parallel threads; raise the first failure once all ended."""
    with ThreadPoolExecutor(max_workers=len(FUNCTIONS)) as pool:
        futures = [pool.submit(action, runtime) for runtime in runtimes]
    for future in futures:
        future.result()
