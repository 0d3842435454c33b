"""preflight: exercise, with harmless calls, every grant a function needs, and report each with its fix.

`fusion-extract doctor --cloud` sends `{"kind": "preflight"}` to each function. The function, as its own
resource principal, reads the credentials secret, creates, reads and deletes a probe object under
STATE_PREFIX, starts and aborts a multipart upload, publishes a probe to each topic it publishes to (its
receiver ignores it, so no chain starts) and a go-live message to the alerts topic, and posts one metric
when METRICS_COMPARTMENT_ID is set. No Fusion job is submitted and no run is touched.

OCI answers a withheld grant as 404 NotAuthorizedOrNotFound, alike with a missing resource, so each fix
names the statement of terraform/iam.tf that grants the call and the configuration key that names the
resource.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from fusion_extract.chain import alerts
from fusion_extract.chain.messages import Probe, encode, probe_message
from fusion_extract.chain.outcomes import Outcome, Result, outcome
from fusion_extract.clock import IdFactory
from fusion_extract.config import Settings
from fusion_extract.errors import FusionExtractError, IntegrityError, UpstreamError
from fusion_extract.ports import ObjectStore, Publisher

PASS, FAIL, SKIP = "pass", "fail", "skipped"
METRIC = "PreflightChecks"  # no alarm watches it
# The topics each function publishes to (chain/runs/handoff.py, chain/runs/alerting.py).
PUBLISHES = {
    "submit": ("poll", "alerts"),
    "poll": ("poll", "transfer", "rerun", "alerts"),
    "transfer": ("transfer", "alerts"),
}
_POLICY = "terraform/iam.tf, the functions' policy: Allow dynamic-group <name_prefix>-functions to"
GO_LIVE = "go_live_check"  # the alert event (chain/alerts.py)


class Grants(Protocol):
    """What the preflight exercises (the Runtime, in a function)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def new_id(self) -> IdFactory: ...
    @property
    def store(self) -> ObjectStore: ...
    @property
    def publisher(self) -> Publisher: ...

    def read_credentials(self) -> None:
        """Read the credentials secret now (no cache)."""
        ...

    def post_metric(self, name: str, value: float, **dimensions: str) -> None:
        """Post one datapoint now."""
        ...


@dataclass(frozen=True)
class Check:
    check: str
    status: str
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "detail": self.detail, "fix": self.fix}


def preflight(function: str, grants: Grants) -> Outcome:
    """Every check of `function`'s grants, in order; `ok` when none failed."""
    s = grants.settings
    probe = f"{s.state_prefix}/preflight/{function}-{grants.new_id()}"
    checks = [
        _check(
            "secret read",
            partial(_secret, grants),
            f"{_POLICY} read secret-bundles in compartment <c> where target.secret.id = "
            f"'{s.credentials_secret_id}'; CREDENTIALS_SECRET_ID must name the secret",
        ),
        _check(
            "state object",
            partial(_object, grants.store, probe),
            f"{_POLICY} manage objects in compartment <c> where target.bucket.name = '{s.bucket}'; "
            "check BUCKET_NAME and BUCKET_NAMESPACE",
        ),
        _check(
            "multipart upload",
            partial(_multipart, grants.store, probe + ".part"),
            f"{_POLICY} manage objects in compartment <c> where target.bucket.name = '{s.bucket}'",
        ),
    ]
    topics = {
        "poll": s.poll_topic_id,
        "transfer": s.transfer_topic_id,
        "rerun": s.rerun_topic_id,
        "alerts": s.alerts_topic_id,
    }
    for topic in PUBLISHES.get(function, ()):
        checks.append(
            _check(
                f"publish {topic}",
                partial(_publish, grants.publisher, function, topic, topics[topic]),
                f"{_POLICY} use ons-topics in compartment <c> where target.topic.id = '{topics[topic]}'; "
                f"{topic.upper()}_TOPIC_ID must name the {topic} topic",
            )
        )
    if s.metrics_compartment_id is None:
        checks.append(Check("metric post", SKIP, "METRICS_COMPARTMENT_ID is not set: no metric is posted"))
    else:
        checks.append(
            _check(
                "metric post",
                partial(_metric, grants, function),
                f"{_POLICY} use metrics in compartment <c> where target.metrics.namespace = "
                "'fusion_extract'; OCI_MONITORING_ENDPOINT, if set, must be the telemetry-ingestion endpoint",
            )
        )
    ok = all(check.status != FAIL for check in checks)
    return outcome(Result.PREFLIGHT, function=function, ok=ok, checks=[c.to_json() for c in checks])


def ignore(message: Probe) -> Outcome:
    """A probe a preflight published: received, which is all it was for."""
    return outcome(Result.IGNORED, source=message.source)


def go_live_alert(function: str) -> dict[str, str]:
    return encode("alert", event=GO_LIVE, function=function)


# -- the checks: each returns what it saw, or raises ---------------------------------------------------


def _check(name: str, run: Callable[[], str], fix: str) -> Check:
    try:
        return Check(name, PASS, run())
    except FusionExtractError as exc:
        return Check(name, FAIL, str(exc), fix)
    except Exception as exc:  # a check reports; it never ends the preflight
        return Check(name, FAIL, f"{type(exc).__name__}: {exc}", fix)


def _secret(grants: Grants) -> str:
    grants.read_credentials()
    s = grants.settings
    return f"secret {s.credentials_secret_id} read; it holds the {s.fusion_grant} fields"


def _object(store: ObjectStore, name: str) -> str:
    data = b"fusion-extract preflight probe\n"
    store.put_bytes(name, data, if_none_match=True, content_type="text/plain")
    read, _ = store.get_bytes(name)
    store.delete(name)
    if read != data:
        raise IntegrityError(f"{name} read back different bytes than were written")
    return f"created, read and deleted {name}"


def _multipart(store: ObjectStore, name: str) -> str:
    store.start_upload(name, content_type="text/plain")
    if store.abort_uploads(name) < 1:
        raise UpstreamError(f"the multipart upload of {name} started but was not listed to abort")
    return f"started and aborted a multipart upload of {name}"


def _publish(publisher: Publisher, function: str, topic: str, topic_id: str) -> str:
    if topic == "alerts":
        alert = go_live_alert(function)
        message_id = publisher.publish_text(topic_id, alerts.title(alert), alerts.body(alert))
    else:
        message_id = publisher.publish(topic_id, probe_message(function))
    return f"published to the {topic} topic (message {message_id})"


def _metric(grants: Grants, function: str) -> str:
    grants.post_metric(METRIC, 1, function=function)
    return f"posted {METRIC} in namespace fusion_extract"
