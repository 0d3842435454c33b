"""`make emulator` (`python -m tests.emulators`): the Fusion and OCI emulators in the foreground until Ctrl-C.

What it sets up, all on 127.0.0.1:
- OCI (one endpoint): Object Storage with the bucket `landing` as the folder .local/bucket/landing
  (emulator root .local/bucket), Vault holding the Fusion client credentials, Notifications with the
  poll, transfer, rerun and alerts topics, Functions invoke, Resource Scheduler (ticking each second),
  Monitoring. An API-key profile for the SDK/CLI is written to .local/oci/config.
- Fusion (Batch Processing API + IDCS token endpoint over HTTPS, CA in its workdir), with one OAuth
  client and the extract `Sales` defined.
- If functions/<step>/func.py exist: submit, poll and transfer under the real fdk runtime (logs in
  .local/logs/), subscribed the way Terraform subscribes them (rerun -> submit, poll -> poll,
  transfer -> transfer), a sweep of poll every 5 minutes and a nightly run of `Sales`.

.local/endpoints.json then holds every endpoint, OCID and path, plus `config`: the environment
(fusion_extract.config keys) that points the product at these emulators from a shell (API key), and
`function_config`: the same as the functions get it (resource principal).
"""

from __future__ import annotations

import argparse
import importlib
import json
import secrets
import signal
import threading
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any, Protocol

from fusion_extract.config import KEYS
from tests.emulators.fdk_runtime import FdkFunction
from tests.emulators.oci import OciEmulator
from tests.emulators.oci.functions import FunctionsService
from tests.emulators.oci.notifications import NotificationsService
from tests.emulators.oci.scheduler import SchedulerService

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "functions"
NAMESPACE = "emuns"
BUCKET = "landing"
EXTRACT = "Sales"
TOPICS = ("poll", "transfer", "rerun", "alerts")
INVOKED_BY = {"submit": "rerun", "poll": "poll", "transfer": "transfer"}  # function -> its topic


class FusionSide(Protocol):
    """The planned API of tests/emulators/fusion that this entry point relies on."""

    base_url: str
    idcs_url: str
    ca_path: Path
    scope: str

    def start(self) -> Any: ...

    def stop(self) -> None: ...

    def add_client(self, client_id: str, client_secret: str) -> None: ...

    def define_extract(self, name: str) -> None: ...


def start_fusion(workdir: Path, stack: ExitStack) -> tuple[FusionSide, dict[str, str]] | None:
    """INTEGRATION POINT (lead): tests/emulators/fusion has no FusionEmulator yet. When it lands,
    import it directly and check the calls below against its real signatures."""
    emulator_class = getattr(importlib.import_module("tests.emulators.fusion"), "FusionEmulator", None)
    if emulator_class is None:
        return None
    fusion: FusionSide = emulator_class(workdir=workdir)
    fusion.start()
    stack.callback(fusion.stop)
    credentials = {"client_id": "fusion-extract-demo", "client_secret": secrets.token_urlsafe(24)}
    fusion.add_client(credentials["client_id"], credentials["client_secret"])
    fusion.define_extract(EXTRACT)
    return fusion, credentials


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators", description=__doc__.split("\n")[0])
    parser.add_argument("--local", type=Path, default=ROOT / ".local", help="state folder (default .local)")
    local = parser.parse_args().local.resolve()
    for folder in ("bucket", "oci", "logs", "fusion", "principals"):
        (local / folder).mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        emulator = OciEmulator(root=local / "bucket", namespace=NAMESPACE)
        functions = FunctionsService()
        ons = NotificationsService(functions)
        scheduler = SchedulerService(functions)
        for service in (functions, ons, scheduler):
            emulator.add_service(service)
        emulator.start()
        stack.callback(emulator.stop)
        stack.callback(ons.close)
        stack.callback(scheduler.stop)

        emulator.create_bucket(BUCKET)
        topics = {name: ons.create_topic(f"fusion-extract-{name}") for name in TOPICS}
        config_file = emulator.write_config_file(local / "oci" / "config")
        config = {
            "OCI_AUTH": "config_file",
            "OCI_CONFIG_FILE": str(config_file),
            "OCI_CONFIG_PROFILE": "DEFAULT",
            "BUCKET_NAME": BUCKET,
            "BUCKET_NAMESPACE": NAMESPACE,
            **{f"{name.upper()}_TOPIC_ID": topic_id for name, topic_id in topics.items()},
            **{
                f"OCI_{service}_ENDPOINT": emulator.endpoint
                for service in ("OBJECTSTORAGE", "SECRETS", "NOTIFICATIONS", "FUNCTIONS", "MONITORING")
            },
        }
        fusion_facts: dict[str, str] | None = None
        started = start_fusion(local / "fusion", stack)
        if started is not None:
            fusion, credentials = started
            secret_id = emulator.put_secret("fusion-extract-credentials", json.dumps(credentials).encode())
            fusion_facts = {
                "base_url": fusion.base_url,
                "idcs_url": fusion.idcs_url,
                "ca_path": str(fusion.ca_path),
                "scope": fusion.scope,
            }
            config |= {
                "FUSION_BASE_URL": fusion.base_url,
                "IDCS_URL": fusion.idcs_url,
                "FUSION_SCOPE": fusion.scope,
                "CA_BUNDLE": str(fusion.ca_path),
                "CREDENTIALS_SECRET_ID": secret_id,
            }
        unknown = set(config) - {key.env for key in KEYS}
        assert not unknown, f"not fusion_extract config keys: {unknown}"

        function_ids = start_functions(local, emulator, functions, ons, scheduler, config, topics, stack)
        scheduler.start()
        endpoints = {
            "oci": {
                "endpoint": emulator.endpoint,
                "namespace": NAMESPACE,
                "region": emulator.region,
                "config_file": str(config_file),
                "profile": "DEFAULT",
            },
            "fusion": fusion_facts,
            "bucket": {"name": BUCKET, "folder": str(local / "bucket" / BUCKET)},
            "topics": topics,
            "functions": function_ids,
            "config": config,
            "function_config": {**config, "OCI_AUTH": "resource_principal"},
        }
        (local / "endpoints.json").write_text(json.dumps(endpoints, indent=2) + "\n")
        print(f"OCI emulator    {emulator.endpoint}  (bucket folder {local / 'bucket' / BUCKET})")
        print(f"Fusion emulator {fusion_facts['base_url'] if fusion_facts else 'not available yet'}")
        print(f"Functions       {', '.join(function_ids) or 'none found under functions/'}")
        print(f"Endpoints and config in {local / 'endpoints.json'}. Ctrl-C stops.", flush=True)
        wait_for_interrupt()


def start_functions(
    local: Path,
    emulator: OciEmulator,
    functions: FunctionsService,
    ons: NotificationsService,
    scheduler: SchedulerService,
    config: dict[str, str],
    topics: dict[str, str],
    stack: ExitStack,
) -> dict[str, str]:
    """Run each step found under functions/ as OCI would, and wire its topic; returns name -> OCID."""
    function_ids: dict[str, str] = {}
    for step, topic in INVOKED_BY.items():
        func_dir = FUNCTIONS_DIR / step
        if not (func_dir / "func.py").is_file():
            continue
        function_id = f"ocid1.fnfunc.oc1..{step}"
        principal = emulator.resource_principal_env(local / "principals" / step, resource_id=function_id)
        env = {**config, "OCI_AUTH": "resource_principal", **principal}
        del env["OCI_CONFIG_FILE"], env["OCI_CONFIG_PROFILE"]
        function = FdkFunction(
            func_dir, env, step, log_path=local / "logs" / f"{step}.log", fn_id=function_id
        )
        function.start()
        stack.callback(function.stop)
        functions.register(function_id, function)
        ons.subscribe(topics[topic], function_id)
        function_ids[step] = function_id
    if "poll" in function_ids:
        scheduler.add_schedule("sweep", function_ids["poll"], "CRON", "*/5 * * * *", '{"kind": "sweep"}')
    if "submit" in function_ids:
        nightly = json.dumps({"extract": EXTRACT, "mode": "incremental"})
        scheduler.add_schedule(
            "nightly", function_ids["submit"], "ICAL", "FREQ=DAILY;BYHOUR=2;BYMINUTE=0", nightly
        )
    return function_ids


def wait_for_interrupt() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with suppress(KeyboardInterrupt):
        stop.wait()


if __name__ == "__main__":
    main()
