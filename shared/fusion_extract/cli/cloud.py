"""`fusion-extract doctor --cloud`: the go-live check of a deployment, from both sides.

From inside: each function answers a preflight (chain/steps/preflight.py), exercising as its own
principal every grant it needs; each of its checks becomes a line here. From the operator's side, with
the operator's credentials, what Terraform should have built:

    function <step>       GetFunction: ACTIVE, its image, its configuration valid for the functions' parser
    subscription <topic>  the poll, transfer and rerun topics each invoke their function; alerts reach someone
    schedule <extract>    each enabled extract of the catalog has an ACTIVE schedule starting submit; the
    schedule sweep        sweep's starts poll; a last run FAILED means the schedule may not invoke it
    alarms                the alarms of terraform/monitoring.tf, routed to the alerts topic
    secret                the credentials secret exists and is ACTIVE (Vault GetSecret: no content read)
    lifecycle             the landing bucket's lifecycle rules of terraform/storage.tf

Nothing here submits a Fusion job. A grant OCI withholds reads as 404 NotAuthorizedOrNotFound; each fix
names the statement of terraform/iam.tf that grants the call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import oci

from fusion_extract.cli.doctor import FAIL, PASS, Failed, Result, schedule_bodies
from fusion_extract.cli.ops import Ops
from fusion_extract.cli.target import STEPS
from fusion_extract.config import Settings
from fusion_extract.errors import FusionExtractError
from fusion_extract.oci.calls import translated
from fusion_extract.oci.clients import signer_and_config

# topic -> the function its subscription invokes (terraform/notifications.tf); alerts reach people.
TOPIC_TARGETS = {"poll": "poll", "transfer": "transfer", "rerun": "submit"}
FAILURE_METRICS = ("RunsFailed", "RunsTimedOut")
# What the operator's configuration must share with the functions' for the other checks to mean anything.
SHARED_KEYS = {
    "BUCKET_NAME": "bucket",
    "STATE_PREFIX": "state_prefix",
    "CREDENTIALS_SECRET_ID": "credentials_secret_id",
    "POLL_TOPIC_ID": "poll_topic_id",
    "TRANSFER_TOPIC_ID": "transfer_topic_id",
    "RERUN_TOPIC_ID": "rerun_topic_id",
    "ALERTS_TOPIC_ID": "alerts_topic_id",
}
_SCHEDULER_POLICY = (
    "terraform/iam.tf, the scheduler policy: its statements for request.principal.type = 'resourceschedule', "
    "request.principal.id = '{schedule}' must let the schedule read and invoke function {function}"
)


class GoLive:
    def __init__(self, ops: Ops) -> None:
        self.ops = ops

    def run(self) -> list[Result]:
        results: list[Result] = []
        for step in STEPS:
            results += self.preflight(step)
        for step in STEPS:
            results.append(_checked(f"function {step}", partial(self.function, step)))
        for topic in (*TOPIC_TARGETS, "alerts"):
            results.append(_checked(f"subscription {topic}", partial(self.subscription, topic)))
        results += self.schedules()
        results.append(_checked("alarms", self.alarms))
        results.append(_checked("secret", self.secret))
        results.append(_checked("lifecycle", self.lifecycle))
        return results

    @property
    def settings(self) -> Settings:
        return self.ops.settings

    def _client(self, cls: Any, endpoint: str | None = None) -> Any:
        config, signer = signer_and_config(self.settings)
        return cls(
            config,
            signer=signer,
            service_endpoint=endpoint or self.ops.target.control_endpoint,
            timeout=(self.settings.connect_timeout, 30.0),
            retry_strategy=oci.retry.NoneRetryStrategy(),
            circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
        )

    def _compartment(self) -> str:
        compartment = self.ops.target.compartment
        if not compartment:
            raise Failed("no compartment to look in", "pass --compartment (or set METRICS_COMPARTMENT_ID)")
        return compartment

    # -- from inside: the functions' own preflights -----------------------------------------------------

    def preflight(self, step: str) -> list[Result]:
        """One line per check the function ran; one failed line when it could not answer."""
        try:
            answer = self.ops.invoke(step, {"kind": "preflight"})
        except FusionExtractError as exc:
            return [
                Result(f"preflight {step}", FAIL, str(exc), "set FUSION_EXTRACT_FUNCTIONS (or use --local)")
            ]
        checks = answer.body.get("checks")
        if not answer.ok or not isinstance(checks, list):
            message = answer.body.get("message", answer.body)
            return [
                Result(
                    f"preflight {step}",
                    FAIL,
                    f"{step} answered {answer.status}: {message}",
                    "the function could not run its preflight: a function image without it must be "
                    "redeployed; else read the function's logs (docs/operating.md: Runbook)",
                )
            ]
        return [
            Result(
                f"{step}: {c.get('check')}",
                str(c.get("status")),
                str(c.get("detail")),
                str(c.get("fix") or ""),
            )
            for c in checks
        ]

    # -- from the operator's side ----------------------------------------------------------------------

    def function(self, step: str) -> str:
        function_id = self.ops.target.function_id(step)
        client = self._client(oci.functions.FunctionsManagementClient)
        try:
            with translated(f"get function {function_id}"):
                found = client.get_function(function_id).data
        except FusionExtractError as exc:
            raise Failed(
                str(exc),
                "set FUSION_EXTRACT_FUNCTIONS to `terraform output -json function_ids`; the operator needs "
                "`read fn-function` in the compartment",
            ) from None
        if found.lifecycle_state != "ACTIVE":
            raise Failed(f"function {found.display_name} is {found.lifecycle_state}", "apply Terraform again")
        try:
            theirs = Settings.from_mapping(found.config or {})
        except FusionExtractError as exc:
            raise Failed(
                f"its configuration: {exc}",
                "apply Terraform again: the configuration of each function comes from terraform/functions.tf",
            ) from None
        ours = self.settings
        differ = [key for key, field in SHARED_KEYS.items() if getattr(theirs, field) != getattr(ours, field)]
        if differ:
            raise Failed(
                f"its configuration differs from the one checked here on {', '.join(differ)}",
                "set these keys in your environment from the Terraform outputs: the other checks read them",
            )
        image = getattr(found.source_details, "image", None) or getattr(found, "image", None)
        if not image:
            raise Failed(
                f"function {found.display_name} names no image", "set the image variables; apply Terraform"
            )
        keys = len(found.config or {})
        return f"{found.display_name} ACTIVE, image {image}, its {keys} configuration keys valid"

    def subscription(self, topic: str) -> str:
        s = self.settings
        topic_id = {
            "poll": s.poll_topic_id,
            "transfer": s.transfer_topic_id,
            "rerun": s.rerun_topic_id,
            "alerts": s.alerts_topic_id,
        }[topic]
        client = self._client(oci.ons.NotificationDataPlaneClient, s.notifications_endpoint)
        with translated(f"list the subscriptions of topic {topic_id}"):
            found = oci.pagination.list_call_get_all_results(
                client.list_subscriptions, self._compartment(), topic_id=topic_id
            ).data
        active = [sub for sub in found if sub.lifecycle_state == "ACTIVE"]
        if topic == "alerts":
            if not active:
                raise Failed(
                    f"nobody is subscribed to the alerts topic {topic_id} (or no subscription is confirmed)",
                    "set `alert_emails` and apply Terraform; confirm the e-mail Notifications sends",
                )
            return f"alerts reach {', '.join(f'{sub.protocol} {sub.endpoint}' for sub in active)}"
        wanted = self.ops.target.function_id(TOPIC_TARGETS[topic])
        if not any(sub.protocol == "ORACLE_FUNCTIONS" and sub.endpoint == wanted for sub in active):
            raise Failed(
                f"the {topic} topic does not invoke the {TOPIC_TARGETS[topic]} function {wanted}",
                "apply Terraform: terraform/notifications.tf subscribes each function to its topic",
            )
        return f"the {topic} topic invokes {TOPIC_TARGETS[topic]}"

    def schedules(self) -> list[Result]:
        try:
            client = self._client(oci.resource_scheduler.ScheduleClient)
            with translated("list schedules"):
                found = oci.pagination.list_call_get_all_results(
                    client.list_schedules, compartment_id=self._compartment()
                ).data
        except (Failed, FusionExtractError) as exc:
            fix = exc.fix if isinstance(exc, Failed) else "the operator needs `read resource-schedule-family`"
            return [Result("schedules", FAIL, str(exc), fix)]
        active = [schedule for schedule in found if schedule.lifecycle_state == "ACTIVE"]
        wanted = [
            (entry.name, {"extract": entry.name}) for entry in self.ops.runtime.catalog if entry.enabled
        ]
        return [
            _checked(f"schedule {name}", partial(self._schedule, name, body, active))
            for name, body in [*wanted, ("sweep", {"kind": "sweep"})]
        ]

    def _schedule(self, name: str, body: dict[str, str], schedules: Iterable[Any]) -> str:
        step = "poll" if name == "sweep" else "submit"
        function_id = self.ops.target.function_id(step)
        starting = [s for s in schedules if any(_names(s, resource, body) for resource in s.resources or [])]
        if not starting:
            raise Failed(
                f"no ACTIVE schedule starts {'the sweep' if name == 'sweep' else name}",
                "apply Terraform with the extract in `extracts` (terraform/schedules.tf builds them)",
            )
        schedule = starting[0]
        targets = {resource.id for resource in schedule.resources or [] if _names(schedule, resource, body)}
        if function_id not in targets:
            raise Failed(
                f"schedule {schedule.display_name} starts {', '.join(sorted(targets))}, not the {step} "
                f"function {function_id}",
                "apply Terraform again: the schedule must start the deployed function",
            )
        if schedule.last_run_status == "FAILED":
            raise Failed(
                f"schedule {schedule.display_name}'s last run FAILED: it may not invoke {step}",
                _SCHEDULER_POLICY.format(schedule=schedule.id, function=function_id),
            )
        last = schedule.last_run_status or "not run yet"
        return f"{schedule.display_name} starts {step} (last run: {last})"

    def alarms(self) -> str:
        s = self.settings
        client = self._client(oci.monitoring.MonitoringClient)
        with translated("list alarms"):
            found = oci.pagination.list_call_get_all_results(client.list_alarms, self._compartment()).data
        ours = [
            alarm
            for alarm in found
            if alarm.namespace == "fusion_extract"
            and alarm.is_enabled
            and s.alerts_topic_id in alarm.destinations
        ]
        missing = [metric for metric in FAILURE_METRICS if not any(a.query.startswith(metric) for a in ours)]
        missing += [
            f"the dead-man alarm of {entry.name}"
            for entry in self.ops.runtime.catalog
            if entry.enabled and not any(f'extract = "{entry.name}"' in a.query for a in ours)
        ]
        if missing:
            raise Failed(
                f"no enabled alarm to the alerts topic for {', '.join(missing)}",
                "apply Terraform with alarms_enabled = true (terraform/monitoring.tf)",
            )
        return f"{len(ours)} enabled alarms report to the alerts topic"

    def secret(self) -> str:
        secret_id = self.settings.credentials_secret_id
        client = self._client(oci.vault.VaultsClient)
        try:
            with translated(f"get secret {secret_id}"):
                found = client.get_secret(secret_id).data
        except FusionExtractError as exc:
            raise Failed(
                str(exc),
                "apply Terraform (terraform/vault.tf creates the secret); CREDENTIALS_SECRET_ID must name it",
            ) from None
        if found.lifecycle_state != "ACTIVE":
            raise Failed(
                f"secret {found.secret_name} is {found.lifecycle_state}", "restore or recreate the secret"
            )
        return f"secret {found.secret_name} is ACTIVE (version {found.current_version_number})"

    def lifecycle(self) -> str:
        s, runtime = self.settings, self.ops.runtime
        try:
            with translated(f"get the lifecycle policy of bucket {s.bucket}"):
                rules = runtime.oci.object_storage.get_object_lifecycle_policy(
                    runtime.oci.namespace, s.bucket
                ).data.items
        except FusionExtractError as exc:
            raise Failed(
                str(exc), "apply Terraform: terraform/storage.tf writes the landing bucket's lifecycle rules"
            ) from None
        enabled = [rule for rule in rules or [] if rule.is_enabled]
        wanted: dict[str, Callable[[Any], bool]] = {
            "abort unfinished multipart uploads": _aborts_uploads,
            f"expire {s.state_prefix}/": partial(_deletes_under, prefix=s.state_prefix),
            f"expire {s.staging_prefix}/": partial(_deletes_under, prefix=s.staging_prefix),
        }
        missing = [what for what, matches in wanted.items() if not any(matches(rule) for rule in enabled)]
        if missing:
            raise Failed(
                f"no enabled lifecycle rule to {', '.join(missing)} in bucket {s.bucket}",
                "apply Terraform: terraform/storage.tf writes these rules",
            )
        return f"{len(enabled)} enabled lifecycle rules, among them: {', '.join(wanted)}"


def _checked(name: str, check: Callable[[], str]) -> Result:
    try:
        return Result(name, PASS, check())
    except Failed as failed:
        return Result(name, FAIL, str(failed), failed.fix)
    except FusionExtractError as exc:
        return Result(name, FAIL, str(exc), "see the message")
    except Exception as exc:  # a check must report, never crash the doctor
        return Result(name, FAIL, f"{type(exc).__name__}: {exc}", "see the message")


def _names(schedule: Any, resource: Any, body: dict[str, str]) -> bool:
    """Whether the resource's BODY parameter is `body`."""
    return any(all(found.get(k) == v for k, v in body.items()) for found in schedule_bodies(resource))


def _aborts_uploads(rule: Any) -> bool:
    return bool(rule.target == "multipart-uploads" and rule.action == "ABORT")


def _deletes_under(rule: Any, prefix: str) -> bool:
    prefixes = getattr(rule.object_name_filter, "inclusion_prefixes", None) or []
    return rule.target == "objects" and rule.action == "DELETE" and f"{prefix}/" in prefixes
