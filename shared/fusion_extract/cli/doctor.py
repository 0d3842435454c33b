"""`fusion-extract doctor`: the preflight, in the order a deployment depends on it.

1. config      every key present and valid (the functions' own parser: the same message they would fail with)
2. vault       the credentials secret readable and a well-formed JSON of the grant's fields
3. token       an IDCS token issued for FUSION_SCOPE with those credentials
4. batch       the Batch Processing API reachable with it and enabled on the pod (job requests listed)
5. bucket      an object written, read and deleted under STATE_PREFIX (the functions' narrow policy)
6. topics      each of the four topics exists (GetTopic): nothing is published, since the poll, transfer
               and rerun topics invoke functions and the alerts topic reaches people
7. schedules   a Resource Scheduler schedule for each enabled extract of the catalog, whose BODY names it

A check that depends on a failed one is skipped. Each failure comes with its fix. Before any call, every
endpoint the checks need is reached once, all at once (cli/diagnose.py): a check whose endpoint does not
resolve, refuses, stays silent or is not trusted fails at once with that cause and its fix; a 401, 403 or
404 is told apart too. `cause` names it, and `unusable` says the target cannot be used at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import oci
import requests

from fusion_extract.cli.diagnose import Diagnosis, Endpoint, from_error, reach_all
from fusion_extract.cli.ops import Ops
from fusion_extract.config import Settings
from fusion_extract.errors import ConfigError, FusionExtractError, NotFoundError
from fusion_extract.fusion.batch import build_batch_client
from fusion_extract.fusion.http import HttpClient
from fusion_extract.fusion.tokens import TokenProvider
from fusion_extract.oci.calls import translated
from fusion_extract.oci.clients import signer_and_config
from fusion_extract.oci.vault import VaultCredentials
from fusion_extract.retry import RetryPolicy

PASS, FAIL, SKIP = "pass", "fail", "skipped"
FUSION = ("token", "batch")  # the checks that call Fusion and IDCS; the others call OCI


# The doctor answers within seconds: few tries, short waits, whatever the functions are configured with.
def _quick(settings: Settings) -> Settings:
    return dataclasses.replace(settings, http_max_attempts=2, http_max_retry_seconds=5.0, read_timeout=20.0)


@dataclass(frozen=True)
class Result:
    check: str
    status: str
    detail: str
    fix: str = ""
    cause: str = ""  # dns, refused, timeout, unreachable, tls, 401, 403, 404, config (cli/diagnose.py)
    unusable: bool = False  # the target cannot be used at all (exit 3)

    @classmethod
    def diagnosed(cls, check: str, diagnosis: Diagnosis) -> Result:
        return cls(check, FAIL, diagnosis.detail, diagnosis.fix, diagnosis.cause, diagnosis.unusable)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "check": self.check, "status": self.status, "detail": self.detail, "fix": self.fix,
        }  # fmt: skip
        if self.cause:
            found.update(cause=self.cause, unusable=self.unusable)
        return found


class Failed(Exception):
    """A check failed: what was found, and how to fix it."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.fix = fix


@dataclass
class Doctor:
    ops: Ops

    def run(self) -> list[Result]:
        results: list[Result] = []
        checks: list[tuple[str, Callable[[], str], tuple[str, ...]]] = [
            ("config", self.config, ()),
            ("vault", self.vault, ("config",)),
            ("token", self.token, ("vault",)),
            ("batch", self.batch, ("token",)),
            ("bucket", self.bucket, ("config",)),
            ("topics", self.topics, ("config",)),
            ("schedules", self.schedules, ("config",)),
        ]
        passed: set[str] = set()
        unreachable: dict[str, Diagnosis] = {}
        for name, check, needs in checks:
            missing = [need for need in needs if need not in passed]
            if missing:
                results.append(Result(name, SKIP, f"needs {', '.join(missing)} to pass first"))
                continue
            try:
                blocked = self._blocked(name, unreachable) if unreachable else None
                if blocked is not None:
                    results.append(Result.diagnosed(name, blocked))
                    continue
                detail = check()
            except Failed as failed:
                diagnosis = from_error(failed.__cause__ or failed, failed.fix, oci_call=name not in FUSION)
                results.append(
                    Result.diagnosed(name, dataclasses.replace(diagnosis, detail=str(failed)))
                    if diagnosis
                    else Result(name, FAIL, str(failed), failed.fix)
                )
                continue
            except Exception as exc:  # a check must report, never crash the preflight
                fix = "fix what it names (docs/configuration.md)" if isinstance(exc, ConfigError) else ""
                diagnosis = from_error(exc, fix or "see the message", oci_call=name not in FUSION)
                detail = f"{type(exc).__name__}: {exc}"
                results.append(
                    Result.diagnosed(name, dataclasses.replace(diagnosis, detail=detail))
                    if diagnosis
                    else Result(name, FAIL, detail, "see the message")
                )
                continue
            passed.add(name)
            results.append(Result(name, PASS, detail))
            if name == "config":
                unreachable = reach_all(self._all_endpoints())
        return results

    # -- what each check calls ---------------------------------------------------------------------------

    def _blocked(self, check: str, unreachable: dict[str, Diagnosis]) -> Diagnosis | None:
        return next((unreachable[e.url] for e in self._endpoints(check) if e.url in unreachable), None)

    def _endpoints(self, check: str) -> list[Endpoint]:
        """The endpoints a check calls (none for config); building a client may raise ConfigError."""
        s, oci_clients = self.ops.settings, self.ops.runtime.oci
        if check == "vault":
            return [Endpoint("OCI_SECRETS_ENDPOINT", oci_clients.secrets.base_client.endpoint)]
        if check == "token":
            return [Endpoint("IDCS_URL", s.idcs_url, s.ca_bundle)]
        if check == "batch":
            return [Endpoint("FUSION_BASE_URL", s.fusion_base_url, s.ca_bundle)]
        storage = Endpoint("OCI_OBJECTSTORAGE_ENDPOINT", oci_clients.object_storage.base_client.endpoint)
        if check == "bucket":
            return [storage]
        if check == "topics":
            return [Endpoint("OCI_NOTIFICATIONS_ENDPOINT", self._topics_client().base_client.endpoint)]
        if check == "schedules":
            return [
                storage,
                Endpoint("--compartment's control plane", self._schedules_client().base_client.endpoint),
            ]
        return []

    def _all_endpoints(self) -> list[Endpoint]:
        found = []
        for check in ("vault", "token", "batch", "bucket", "topics", "schedules"):
            with contextlib.suppress(FusionExtractError):  # the check itself reports it
                found += self._endpoints(check)
        return found

    def _topics_client(self) -> Any:
        config, signer = signer_and_config(self.ops.settings)
        return oci.ons.NotificationControlPlaneClient(
            config,
            signer=signer,
            service_endpoint=self.ops.settings.notifications_endpoint,
            retry_strategy=oci.retry.NoneRetryStrategy(),
        )

    def _schedules_client(self) -> Any:
        config, signer = signer_and_config(self.ops.settings)
        return oci.resource_scheduler.ScheduleClient(
            config,
            signer=signer,
            service_endpoint=self.ops.target.control_endpoint,
            retry_strategy=oci.retry.NoneRetryStrategy(),
        )

    # -- the checks ----------------------------------------------------------------------------------

    def config(self) -> str:
        try:
            settings = self.ops.settings
        except FusionExtractError as exc:
            raise Failed(str(exc), "set the keys named, as docs/configuration.md says") from exc
        catalog = settings.catalog_object or "none (EXTRACT_CATALOG_OBJECT unset)"
        return f"every key valid (from {self.ops.target.origin}); catalog: {catalog}"

    def _credentials(self) -> VaultCredentials:
        s = self.ops.settings
        return VaultCredentials(
            self.ops.runtime.oci.secrets,
            s.credentials_secret_id,
            self.ops.runtime.clock,
            0,
            grant=s.fusion_grant,
        )

    def vault(self) -> str:
        try:
            self._credentials().credentials()
        except FusionExtractError as exc:
            raise Failed(
                str(exc),
                "store one JSON secret {client_id, client_secret} (and username, password for the password "
                "grant) at CREDENTIALS_SECRET_ID, readable by the functions' dynamic group (docs/deploy.md)",
            ) from exc
        s = self.ops.settings
        return f"secret {s.credentials_secret_id} holds the {s.fusion_grant} fields"

    def token(self) -> str:
        s = _quick(self.ops.settings)
        retry = RetryPolicy(
            clock=self.ops.runtime.clock,
            max_attempts=s.http_max_attempts,
            max_seconds=s.http_max_retry_seconds,
        )
        http = HttpClient(
            requests.Session(),
            timeout=(s.connect_timeout, s.read_timeout),
            ca_bundle=s.ca_bundle,
            retry=retry,
        )
        tokens = TokenProvider(
            http, idcs_url=s.idcs_url, scope=s.fusion_scope, grant=s.fusion_grant,
            credentials=self._credentials(), clock=self.ops.runtime.clock,
        )  # fmt: skip
        try:
            tokens.token()
        except FusionExtractError as exc:
            raise Failed(
                str(exc),
                "check IDCS_URL, FUSION_SCOPE and the client's id and secret; the OAuth client must be "
                "allowed the saas-batch scope",
            ) from exc
        return f"token issued by {s.idcs_url} for {s.fusion_scope}"

    def batch(self) -> str:
        s = _quick(self.ops.settings)
        client = build_batch_client(s, self._credentials(), self.ops.runtime.clock)
        try:
            client.find_job("doctor-probe")  # lists job requests: reachable, authorised, enabled
        except NotFoundError as exc:
            if "not enabled" in str(exc):
                raise Failed(
                    str(exc),
                    "enable Data Extraction in Setup Manager and ask Oracle to provision Batch Processing",
                ) from exc
            raise Failed(str(exc), "check FUSION_BASE_URL: it must be the pod's base URL") from exc
        except FusionExtractError as exc:
            raise Failed(
                str(exc),
                "check FUSION_BASE_URL, CA_BUNDLE and that the client has the Batch Processing roles",
            ) from exc
        return f"Batch Processing API answers at {s.fusion_base_url}"

    def bucket(self) -> str:
        s, store = self.ops.settings, self.ops.runtime.store
        probe = f"{s.state_prefix}/doctor/probe-{uuid.uuid4().hex[:12]}"
        data = b"fusion-extract doctor probe\n"
        try:
            store.put_bytes(probe, data, if_none_match=True, content_type="text/plain")
            read, _ = store.get_bytes(probe)
            store.delete(probe)
        except FusionExtractError as exc:
            raise Failed(
                f"{probe}: {exc}",
                f"allow the functions' dynamic group to manage objects in bucket {s.bucket} "
                "(read, write, delete: terraform/iam.tf); check BUCKET_NAME and BUCKET_NAMESPACE",
            ) from exc
        if read != data:
            raise Failed(f"{probe} read back different bytes", "the bucket is not returning what was written")
        return f"wrote, read and deleted {probe} in {s.bucket}"

    def topics(self) -> str:
        s = self.ops.settings
        client = self._topics_client()
        topics = {
            "POLL_TOPIC_ID": s.poll_topic_id,
            "TRANSFER_TOPIC_ID": s.transfer_topic_id,
            "RERUN_TOPIC_ID": s.rerun_topic_id,
            "ALERTS_TOPIC_ID": s.alerts_topic_id,
        }
        problems, names = [], []
        for key, topic_id in topics.items():
            try:
                with translated(f"get topic {topic_id}"):
                    topic = client.get_topic(topic_id).data
            except FusionExtractError as exc:
                problems.append(f"{key}: {exc}")
                continue
            if topic.lifecycle_state != "ACTIVE":
                problems.append(f"{key}: topic {topic.name} is {topic.lifecycle_state}")
            names.append(str(topic.name))
        if problems:
            raise Failed(
                "; ".join(problems),
                "set the topic OCIDs Terraform outputs (topic_ids); the functions need `use ons-topics`",
            )
        return f"topics {', '.join(names)} exist (checked with GetTopic; nothing published)"

    def schedules(self) -> str:
        try:
            catalog = [entry for entry in self.ops.runtime.catalog if entry.enabled]
        except ConfigError as exc:
            raise Failed(str(exc), "apply Terraform: it writes the catalog object from `extracts`") from exc
        if not catalog:
            return "the catalog is empty: no schedule to look for"
        compartment = self.ops.target.compartment
        if not compartment:
            raise Failed(
                "no compartment to list schedules in", "pass --compartment (or set METRICS_COMPARTMENT_ID)"
            )
        client = self._schedules_client()
        with translated("list schedules"):
            schedules = oci.pagination.list_call_get_all_results(
                client.list_schedules, compartment_id=compartment
            ).data
        scheduled = {name for schedule in schedules for name in _extracts_started(schedule)}
        missing = [entry.name for entry in catalog if entry.name not in scheduled]
        if missing:
            raise Failed(
                f"no schedule starts {', '.join(missing)}",
                "apply Terraform with these extracts in the `extracts` variable (it builds the schedules)",
            )
        return f"a schedule starts each of {', '.join(e.name for e in catalog)}"


def _extracts_started(schedule: Any) -> list[str]:
    """The extract names a schedule's BODY parameters name (ACTIVE schedules only)."""
    if getattr(schedule, "lifecycle_state", "ACTIVE") not in ("ACTIVE", None):
        return []
    return [
        body["extract"]
        for resource in schedule.resources or []
        for body in schedule_bodies(resource)
        if isinstance(body.get("extract"), str)
    ]


def schedule_bodies(resource: Any) -> Iterator[dict[str, Any]]:
    """The JSON objects a schedule resource's BODY parameters carry: an object, or a JSON string holding one
    (how Resource Scheduler encodes a BODY is not documented)."""
    for parameter in resource.parameters or []:
        values = parameter.value if isinstance(parameter.value, list) else [parameter.value]
        for value in values:
            try:
                body = json.loads(value) if isinstance(value, str) else value
                if isinstance(body, str):
                    body = json.loads(body)
            except ValueError:
                continue
            if isinstance(body, dict):
                yield body
