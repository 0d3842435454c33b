"""The steps of the chain, run in-process through the real adapters (Runtime) against both emulators.

Time: the chain and the Fusion emulator share one ManualClock, so job progress, poll intervals, backoffs,
leases and deadlines are exact and no test sleeps. The OCI emulator stays on real time, because the SDK
dates its signed requests by the wall clock and the emulator checks that date.

Notifications: the topics have no subscribers; the NotificationsService records what was published, and
`Steps.deliver` plays the part of a subscription by running the published messages through their step.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fusion_extract.chain.alerts import read_alert
from fusion_extract.chain.ledger.records import FileRecord, Run, RunState
from fusion_extract.chain.messages import parse_poll, parse_submit, parse_transfer
from fusion_extract.chain.steps.poll import poll
from fusion_extract.chain.steps.submit import submit
from fusion_extract.chain.steps.transfer import transfer
from fusion_extract.config import Settings
from fusion_extract.models import ExtractRequest, Mode, OutputFile
from fusion_extract.runtime import Runtime
from tests.clocks import ManualClock
from tests.emulators import pool
from tests.emulators.fusion import ExtractScenario, FusionEmulator
from tests.emulators.oci import OciEmulator
from tests.emulators.oci.functions import FunctionsService
from tests.emulators.oci.notifications import NotificationsService

BUCKET = "landing"
NAMESPACE = "emuns"
EXTRACT = "Sales"
CLIENT_ID, CLIENT_SECRET = "steps-client", "steps-client-secret"
TOPICS = ("poll", "transfer", "rerun", "alerts")
ZIP_NAME = re.compile(r"_\d+\.zip$")

Outcome = dict[str, Any]
MakeSteps = Callable[..., "Steps"]


def is_zip(name: str) -> bool:
    return bool(ZIP_NAME.search(name))


class Steps:
    """One chain, driven by hand: each call of submit / poll / sweep / transfer is one function invocation."""

    def __init__(
        self,
        clock: ManualClock,
        oci: OciEmulator,
        ons: NotificationsService,
        fusion: FusionEmulator | None,
        env: dict[str, str],
        topics: dict[str, str],
    ) -> None:
        self.clock = clock
        self.oci = oci
        self.ons = ons
        self.fusion = fusion
        self.env = env
        self.topics = topics
        self._counter = itertools.count(1)
        self._delivered = dict.fromkeys(TOPICS, 0)
        self.deps = self.container()

    def container(self) -> Runtime:
        """A fresh Runtime, as another warm function container would hold (run ids stay unique)."""
        settings = Settings.from_mapping(self.env)
        return Runtime(
            settings, clock=self.clock, ids=lambda: f"{next(self._counter):04d}", rng=random.Random(0)
        )

    # -- ways in: one invocation each, through the message parsers of the function boundary ------------

    # Each returns the step's answer as the function sends it back (its JSON form).
    def submit(self, **body: Any) -> Outcome:
        return submit(parse_submit(_json(body)), self.deps).to_json()

    def poll(self, run_id: str, seq: int) -> Outcome:
        return poll(parse_poll(_json({"kind": "poll", "run_id": run_id, "seq": seq})), self.deps).to_json()

    def sweep(self) -> Outcome:
        return poll(parse_poll(_json({"kind": "sweep"})), self.deps).to_json()

    def transfer(self, run_id: str, *files: str) -> Outcome:
        message = {"kind": "transfer", "run_id": run_id, "files": list(files)}
        return transfer(parse_transfer(_json(message)), self.deps).to_json()

    def transfer_unit(self, run_id: str, file: str, unit: int) -> Outcome:
        message = {"kind": "transfer", "run_id": run_id, "files": [file], "unit": unit}
        return transfer(parse_transfer(_json(message)), self.deps).to_json()

    def deliver(self, topic: str, keep: Callable[[dict[str, Any]], bool] = lambda _: True) -> list[Outcome]:
        """Do what a subscription would: run each message published to the topic and not delivered yet
        (and those published meanwhile) through its step, in order. Messages `keep` refuses are lost."""
        outcomes: list[Outcome] = []
        for _ in range(1000):
            pending = self.published(topic)[self._delivered[topic] :]
            if not pending:
                return outcomes
            self._delivered[topic] += 1
            if keep(pending[0]):
                outcomes.append(self._invoke(topic, _json(pending[0])))
        raise AssertionError(f"{topic} kept publishing: a loop that never settles")

    def follow(self, run_id: str) -> list[Outcome]:
        """Poll the run's job as the chain would until it is no longer RUNNING: deliver each poll, and when
        poll parked a long wait, let time pass to its next check and run the sweep that brings it back."""
        outcomes = self.deliver("poll")
        for _ in range(1000):
            run = self.run(run_id)
            if run.state is not RunState.RUNNING or not run.parked:
                return outcomes
            self.clock.advance(max((run.next_at - self.clock.now()).total_seconds(), 0))
            self.sweep()
            outcomes += self.deliver("poll")
        raise AssertionError("the job was followed 1000 times and still runs")

    def forget(self, topic: str) -> None:
        """Lose every message published to the topic so far."""
        self._delivered[topic] = len(self.published(topic))

    def _invoke(self, topic: str, body: bytes) -> Outcome:
        """The function subscribed to the topic (alerts go to people, not to a step)."""
        if topic == "poll":
            return poll(parse_poll(body), self.deps).to_json()
        if topic == "transfer":
            return transfer(parse_transfer(body), self.deps).to_json()
        if topic == "rerun":
            return submit(parse_submit(body), self.deps).to_json()
        raise AssertionError(f"no step is subscribed to {topic}")

    # -- the usual ways to a state ---------------------------------------------------------------------

    def start(self, extract: str = EXTRACT, mode: str = "full") -> Run:
        """A run request (a schedule firing): the run, with its job submitted."""
        outcome = self.submit(extract=extract, mode=mode)
        assert outcome["outcome"] == "submitted", outcome
        return self.run(outcome["run_id"])

    def until_transferring(self, extract: str = EXTRACT) -> Run:
        """Start a run and poll it until its job succeeded (transfer messages published, none delivered)."""
        run = self.start(extract)
        self.deliver("poll")
        return self.run(run.run_id)

    def crashed_submit(self, extract: str = EXTRACT) -> tuple[Run, str]:
        """A run whose submit reached Fusion but died before recording the job: SUBMITTING, lease held,
        the job in Fusion under the run token. Returns the run and the job id."""
        now = self.clock.now()
        run = Run(
            f"{now:%Y%m%dT%H%M%SZ}-crashed", extract, "full", RunState.SUBMITTING, now, now, now, attempt=1
        )
        settings = self.deps.settings
        lease, grace = (
            timedelta(seconds=settings.lease_seconds),
            timedelta(seconds=settings.step_overdue_seconds),
        )
        self.deps.ledger.take_lease(extract, run.run_id, now, lease, grace)
        self.deps.ledger.create_run(run)
        job_id = self.deps.fusion.submit(ExtractRequest(extract, Mode.FULL), f"{run.run_id}-a1")
        return run, job_id

    # -- what happened ---------------------------------------------------------------------------------

    def published(self, topic: str) -> list[dict[str, Any]]:
        topic_id = self.topics[topic]
        # An alert's body is text for people ending in its JSON; every other message is bare JSON.
        return [read_alert(m.body) for m in self.ons.published if m.topic_id == topic_id]

    def alerts(self) -> list[str]:
        return [alert["event"] for alert in self.published("alerts")]

    def run(self, run_id: str) -> Run:
        return self.deps.ledger.load_run(run_id).value

    def runs(self) -> list[Run]:
        return [current.value for current in self.deps.ledger.runs()]

    def planned(self, run: Run) -> list[OutputFile]:
        """The run's planned files, from its plan pages."""
        return self.deps.ledger.planned_files(run)

    def file(self, run_id: str, name: str) -> FileRecord:
        return self.deps.ledger.load_file(run_id, name).value

    def objects(self, prefix: str) -> list[str]:
        """Object names under the prefix, straight from the emulator's bucket."""
        return [name for name in self.oci.objectstorage.store.names(BUCKET) if name.startswith(prefix)]

    def read(self, name: str) -> bytes:
        return self.oci.object_path(BUCKET, name).read_bytes()

    def landed(self, run: Run) -> list[str]:
        """Object names under the run's landing folder, relative to it."""
        folder = self.deps.layout.run_folder(run) + "/"
        return [name[len(folder) :] for name in self.objects(folder)]

    def fusion_calls(self, path_pattern: str) -> int:
        assert self.fusion is not None
        return sum(1 for served in self.fusion.requests if re.search(path_pattern, served.path))


def catalog_config(oci: OciEmulator, text: str, name: str = "_catalog/extracts.json") -> dict[str, str]:
    """The catalog written into the bucket as Terraform writes it, and the key that names it."""
    oci.put_object(BUCKET, name, text.encode())
    return {"EXTRACT_CATALOG_OBJECT": name}


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def chain_env(
    oci: OciEmulator,
    fusion: FusionEmulator | None,
    topics: dict[str, str],
    directory: Path,
    secret_id: str,
    **overrides: str,
) -> dict[str, str]:
    """Function configuration aimed at the emulators (config-file API key); placeholders without Fusion."""
    config_file = oci.write_config_file(directory / "oci-config")
    fusion_env = (
        {
            "FUSION_BASE_URL": fusion.base_url,
            "IDCS_URL": fusion.idcs_url,
            "FUSION_SCOPE": fusion.scope,
            "CA_BUNDLE": str(fusion.ca_path),
        }
        if fusion is not None
        else {
            "FUSION_BASE_URL": "https://fusion.invalid",
            "IDCS_URL": "https://idcs.invalid",
            "FUSION_SCOPE": "urn:opc:resource:fusion:emu:saas-batch/",
        }
    )
    return {
        **fusion_env,
        "CREDENTIALS_SECRET_ID": secret_id,
        "OCI_AUTH": "config_file",
        "OCI_CONFIG_FILE": str(config_file),
        "OCI_OBJECTSTORAGE_ENDPOINT": oci.endpoint,
        "OCI_SECRETS_ENDPOINT": oci.endpoint,
        "OCI_NOTIFICATIONS_ENDPOINT": oci.endpoint,
        "BUCKET_NAME": BUCKET,
        "BUCKET_NAMESPACE": NAMESPACE,
        **{f"{name.upper()}_TOPIC_ID": topic_id for name, topic_id in topics.items()},
        **overrides,
    }


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def oci(tmp_path: Path) -> Iterator[OciEmulator]:
    """Object Storage, Vault and Notifications on real time, with the bucket and the credentials secret."""
    with pool.OCI.lend() as emulator:
        emulator.reset(tmp_path / "oci", NAMESPACE)
        emulator.create_bucket(BUCKET)
        yield emulator


@pytest.fixture
def ons(oci: OciEmulator) -> Iterator[NotificationsService]:
    with NotificationsService(FunctionsService()) as service:
        oci.add_service(service)
        yield service


@pytest.fixture
def topics(ons: NotificationsService) -> dict[str, str]:
    """The chain's topics, none subscribed: what is published stays in `ons.published`."""
    return {name: ons.create_topic(f"fusion-extract-{name}") for name in TOPICS}


@pytest.fixture
def fusion(clock: ManualClock, tmp_path: Path) -> Iterator[FusionEmulator]:
    """Fusion on the chain's clock, with our client and the extract Sales (2 ZIPs of 50 rows, 5 s to run)."""
    with pool.FUSION.lend() as emulator:
        emulator.reset(clock)
        emulator.add_client(CLIENT_ID, CLIENT_SECRET)
        emulator.define_extract(EXTRACT, ExtractScenario())
        yield emulator


@pytest.fixture
def make_steps(
    clock: ManualClock,
    oci: OciEmulator,
    ons: NotificationsService,
    topics: dict[str, str],
    fusion: FusionEmulator,
    tmp_path: Path,
) -> MakeSteps:
    """Steps with the product's defaults, but for the config given (`make_steps(KEEP_RAW_ZIPS="true")`)."""
    secret = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}).encode()
    secret_id = oci.put_secret("fusion-extract-credentials", secret)

    def make(**config: str) -> Steps:
        env = chain_env(oci, fusion, topics, tmp_path, secret_id, **config)
        return Steps(clock, oci, ons, fusion, env, topics)

    return make


@pytest.fixture
def steps(make_steps: MakeSteps) -> Steps:
    return make_steps()


@pytest.fixture
def ledger_steps(
    clock: ManualClock, oci: OciEmulator, ons: NotificationsService, topics: dict[str, str], tmp_path: Path
) -> Steps:
    """Steps without Fusion (nothing started for it): for specifications of the ledger alone."""
    env = chain_env(oci, None, topics, tmp_path, "ocid1.vaultsecret.oc1..unused")
    return Steps(clock, oci, ons, None, env, topics)
