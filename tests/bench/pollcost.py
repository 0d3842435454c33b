"""What following a job costs, on a simulated clock: status calls, poll invocations, and the delay from the
job's end to its first file landed.

The real submit, poll and transfer steps run in-process through the product's Runtime, as
tests/steps/conftest.py drives them: the Fusion emulator and the steps share a ManualClock (the poll
step's waits advance it, nothing sleeps), the OCI emulator stays on real time (the SDK signs with the
wall clock). A topic has no subscriber: each poll message published is one more poll invocation,
delivered at once (Notifications' own latency, seconds in the cloud, is not modelled), and the transfer
messages are delivered when the job succeeded. The product's configuration defaults apply
(POLL_MIN_INTERVAL, POLL_MAX_INTERVAL, POLL_BUDGET_SECONDS), with a seeded jitter.

    .venv/bin/python -m tests.bench.pollcost [--minutes 5 60 600]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
from pathlib import Path
from typing import Any

from fusion_extract.chain.ledger.records import RunState
from fusion_extract.chain.messages import RunRequest, parse_poll, parse_transfer
from fusion_extract.chain.outcomes import Result
from fusion_extract.chain.steps.poll import poll
from fusion_extract.chain.steps.submit import submit
from fusion_extract.chain.steps.transfer import transfer
from fusion_extract.config import Settings
from fusion_extract.models import ExtractRequest, Mode
from fusion_extract.runtime import Runtime
from tests.clocks import ManualClock
from tests.emulators.fusion import ExtractScenario, FusionEmulator
from tests.emulators.oci import OciEmulator
from tests.emulators.oci.functions import FunctionsService
from tests.emulators.oci.notifications import NotificationsService

STATUS_PATH = re.compile(r"/jobscheduler/v1/jobRequests/\d+$")
BUCKET = "landing"
TOPICS = ("poll", "transfer", "rerun", "alerts")
SWEEP_PERIOD = 300.0  # the sweep schedule (Terraform's default: every 5 minutes)
MAX_INVOCATIONS = 5000


def follow(job_seconds: float, seed: int = 0) -> dict[str, Any]:
    """Submit a job that runs `job_seconds`, poll it to the end, land its first file: the counts."""
    clock = ManualClock()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with (
            OciEmulator(root / "oci") as oci,
            NotificationsService(FunctionsService()) as ons,
            FusionEmulator(clock=clock, workdir=root / "fusion") as fusion,
        ):
            oci.add_service(ons)
            oci.create_bucket(BUCKET)
            topics = {name: ons.create_topic(f"fusion-extract-{name}") for name in TOPICS}
            fusion.add_client("bench", "bench-secret", token_lifetime=3600)
            scenario = ExtractScenario(seconds_enqueued=30, seconds_running=job_seconds - 30, chunks=1)
            fusion.define_extract("Sales", scenario)
            secret = oci.put_secret("creds", b'{"client_id": "bench", "client_secret": "bench-secret"}')
            env = {
                "FUSION_BASE_URL": fusion.base_url,
                "IDCS_URL": fusion.idcs_url,
                "FUSION_SCOPE": fusion.scope,
                "CA_BUNDLE": str(fusion.ca_path),
                "CREDENTIALS_SECRET_ID": secret,
                "OCI_AUTH": "config_file",
                "OCI_CONFIG_FILE": str(oci.write_config_file(root / "oci-config")),
                **{f"OCI_{s}_ENDPOINT": oci.endpoint for s in ("OBJECTSTORAGE", "SECRETS", "NOTIFICATIONS")},
                "BUCKET_NAME": BUCKET,
                "BUCKET_NAMESPACE": oci.namespace,
                **{f"{name.upper()}_TOPIC_ID": topic for name, topic in topics.items()},
                "LOG_LEVEL": "WARNING",
            }
            runtime = Runtime(Settings.from_mapping(env), clock=clock, rng=random.Random(seed))
            return _follow(runtime, clock, fusion, ons, topics, job_seconds)


def _follow(
    runtime: Runtime,
    clock: ManualClock,
    fusion: FusionEmulator,
    ons: NotificationsService,
    topics: dict[str, str],
    job_seconds: float,
) -> dict[str, Any]:
    def published(topic: str) -> list[bytes]:
        return [m.body.encode() for m in ons.published if m.topic_id == topics[topic]]

    run_id = submit(RunRequest(ExtractRequest("Sales", Mode.FULL)), runtime).run_id
    assert run_id is not None
    job = fusion.jobs[-1]
    invocations = delivered = sweeps = 0
    while invocations < MAX_INVOCATIONS:
        pending = published("poll")[delivered:]
        if pending:
            delivered += 1
            invocations += 1
            poll(parse_poll(pending[0]), runtime)
            continue
        run = runtime.ledger.load_run(run_id).value
        if run.state is not RunState.RUNNING or not run.parked:
            break
        # A parked run waits for the sweep schedule (every SWEEP_PERIOD s) that comes after its next check.
        wait = max((run.next_at - clock.now()).total_seconds(), 0)
        clock.advance(wait + (-(clock.now().timestamp() + wait)) % SWEEP_PERIOD)
        sweeps += 1
        poll(parse_poll(b'{"kind": "sweep"}'), runtime)
    run = runtime.ledger.load_run(run_id).value
    detected = clock.now()
    landed_at = None
    if run.state is RunState.TRANSFERRING:
        for body in published("transfer")[:1]:
            if transfer(parse_transfer(body), runtime).result is Result.LANDED:
                landed_at = clock.now()
    status_calls = sum(1 for served in fusion.requests if STATUS_PATH.search(served.path))
    return {
        "job_minutes": round(job_seconds / 60, 1),
        "state": run.state.value,
        "status_calls": status_calls,
        "poll_invocations": invocations,
        "sweeps_waited_for": sweeps,  # the sweep runs on its schedule anyway, for every run at once
        "token_requests": sum(1 for served in fusion.requests if served.server == "idcs"),
        "detect_delay_s": round((detected - job.ended_at).total_seconds(), 1),
        "first_landed_delay_s": (
            round((landed_at - job.ended_at).total_seconds(), 1) if landed_at is not None else None
        ),
    }


def measure(minutes: list[float]) -> dict[str, Any]:
    return {f"{m:g}min": follow(m * 60) for m in minutes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[5, 60, 600])
    print(json.dumps(measure(parser.parse_args().minutes)))


if __name__ == "__main__":
    main()
