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
(fusion_extract.config keys) that points the product at these emulators from a shell (API key in
.local/oci/config). The functions get the same with OCI_AUTH=resource_principal and a session of
their own (.local/principals/<step>). `python -m tests.emulators --local DIR` keeps state elsewhere.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from fusion_extract.config import KEYS
from tests.emulators.fdk_runtime import FdkFunction
from tests.emulators.fusion import FusionEmulator
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


@dataclass(frozen=True)
class LocalOci:
    emulator: OciEmulator
    functions: FunctionsService
    ons: NotificationsService
    scheduler: SchedulerService
    topics: dict[str, str]  # poll, transfer, rerun, alerts -> topic OCID


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators", description=__doc__.split("\n")[0])
    parser.add_argument("--local", type=Path, default=ROOT / ".local", help="state folder (default .local)")
    local = parser.parse_args().local.resolve()
    with ExitStack() as stack:
        cloud = start_oci(local, stack)
        fusion = start_fusion(local, stack)
        config = product_config(local, cloud, fusion)
        function_ids = start_functions(local, cloud, config, stack)
        cloud.scheduler.start()
        endpoints = {
            "oci": {
                "endpoint": cloud.emulator.endpoint,
                "namespace": NAMESPACE,
                "region": cloud.emulator.region,
            },
            "fusion": {
                "base_url": fusion.base_url,
                "idcs_url": fusion.idcs_url,
                "ca_path": str(fusion.ca_path),
                "scope": fusion.scope,
            },
            "bucket": {"name": BUCKET, "folder": str(local / "bucket" / BUCKET)},
            "topics": cloud.topics,
            "functions": function_ids,
            "config": config,
        }
        (local / "endpoints.json").write_text(json.dumps(endpoints, indent=2) + "\n")
        print(f"OCI emulator    {cloud.emulator.endpoint}  (bucket folder {local / 'bucket' / BUCKET})")
        print(f"Fusion emulator {fusion.base_url}  (token endpoint {fusion.idcs_url})")
        print(f"Functions       {', '.join(function_ids) or 'none found under functions/'}")
        print(f"Endpoints and config in {local / 'endpoints.json'}. Ctrl-C stops.", flush=True)
        wait_for_interrupt()


def start_oci(local: Path, stack: ExitStack) -> LocalOci:
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
    return LocalOci(emulator, functions, ons, scheduler, topics)


def start_fusion(local: Path, stack: ExitStack) -> FusionEmulator:
    fusion = FusionEmulator(workdir=local / "fusion").start()
    stack.callback(fusion.stop)
    fusion.define_extract(EXTRACT)
    return fusion


def product_config(local: Path, cloud: LocalOci, fusion: FusionEmulator) -> dict[str, str]:
    """The fusion_extract config that points the product at the emulators, from a shell (API key).
    Registers an OAuth client with Fusion and keeps its credentials in Vault."""
    credentials = {"client_id": "fusion-extract-demo", "client_secret": secrets.token_urlsafe(24)}
    fusion.add_client(credentials["client_id"], credentials["client_secret"])
    emulator = cloud.emulator
    (local / "oci").mkdir(parents=True, exist_ok=True)
    config_file = emulator.write_config_file(local / "oci" / "config")
    config = {
        "FUSION_BASE_URL": fusion.base_url,
        "IDCS_URL": fusion.idcs_url,
        "FUSION_SCOPE": fusion.scope,
        "CA_BUNDLE": str(fusion.ca_path),
        "CREDENTIALS_SECRET_ID": emulator.put_secret(
            "fusion-extract-credentials", json.dumps(credentials).encode()
        ),
        "OCI_AUTH": "config_file",
        "OCI_CONFIG_FILE": str(config_file),
        "OCI_CONFIG_PROFILE": "DEFAULT",
        "BUCKET_NAME": BUCKET,
        "BUCKET_NAMESPACE": NAMESPACE,
        **{f"{name.upper()}_TOPIC_ID": topic_id for name, topic_id in cloud.topics.items()},
        **{
            f"OCI_{service}_ENDPOINT": emulator.endpoint
            for service in ("OBJECTSTORAGE", "SECRETS", "NOTIFICATIONS", "FUNCTIONS", "MONITORING")
        },
    }
    unknown = set(config) - {key.env for key in KEYS}
    assert not unknown, f"not fusion_extract config keys: {unknown}"
    return config


def start_functions(local: Path, cloud: LocalOci, config: dict[str, str], stack: ExitStack) -> dict[str, str]:
    """Run each step found under functions/ as OCI would (resource principal, logs in .local/logs),
    subscribe it to its topic and schedule it; returns step name -> function OCID."""
    function_ids: dict[str, str] = {}
    for step, topic in INVOKED_BY.items():
        func_dir = FUNCTIONS_DIR / step
        if not (func_dir / "func.py").is_file():
            continue
        function_id = f"ocid1.fnfunc.oc1..{step}"
        principal = cloud.emulator.resource_principal_env(
            local / "principals" / step, resource_id=function_id
        )
        env = {**config, "OCI_AUTH": "resource_principal", **principal}
        del env["OCI_CONFIG_FILE"], env["OCI_CONFIG_PROFILE"]
        (local / "logs").mkdir(parents=True, exist_ok=True)
        function = FdkFunction(
            func_dir, env, step, log_path=local / "logs" / f"{step}.log", fn_id=function_id
        )
        stack.callback(function.stop)
        cloud.functions.register(function_id, function.start())
        cloud.ons.subscribe(cloud.topics[topic], function_id)
        function_ids[step] = function_id
    if "poll" in function_ids:
        cloud.scheduler.add_schedule(
            "sweep", function_ids["poll"], "CRON", "*/5 * * * *", '{"kind": "sweep"}'
        )
    if "submit" in function_ids:
        nightly = json.dumps({"extract": EXTRACT, "mode": "incremental"})
        cloud.scheduler.add_schedule(
            "nightly", function_ids["submit"], "ICAL", "FREQ=DAILY;BYHOUR=2;BYMINUTE=0", nightly
        )
    return function_ids


def wait_for_interrupt() -> None:
    """Until Ctrl-C or SIGTERM (handled explicitly: a shell's background job ignores SIGINT)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
