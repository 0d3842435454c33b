"""Function configuration: every key declared once, on the Settings field it fills; read and validated once.

OCI Functions hands application and function config to the code as environment variables
(`ctx.Config()` is `os.environ`). `Settings.from_mapping` reads them all and fails with one ConfigError
naming every missing or invalid key, and every name that looks like one of ours mistyped. Secrets never
live here: only the Vault secret OCID does. `KEYS`, derived from the fields, is what docs/configuration.md,
each func.yaml and the Terraform checks are generated from or checked against.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

from fusion_extract.errors import ConfigError

OCID = re.compile(r"^ocid1\.[a-z0-9_]+\.[a-z0-9_-]*\.[a-z0-9_-]*\.[A-Za-z0-9_.-]+$")
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_TYPO_CUTOFF = 0.85  # how alike an unknown name must be to one of ours to be reported as its typo
# Other programs' variables that live beside ours: the Fn platform, the OCI SDK and CLI.
_FOREIGN_PREFIXES = ("FN_", "OCI_CLI_", "OCI_SDK_", "OCI_RESOURCE_PRINCIPAL_")


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _https_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("must be an https:// URL")
    return value.strip().rstrip("/")


def _url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s):// URL")
    return value.strip().rstrip("/")


def _ocid(value: str) -> str:
    if not OCID.match(value.strip()):
        raise ValueError("must be an OCID (ocid1.<type>.<realm>.<region>.<id>)")
    return value.strip()


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive whole number")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("must be zero or more")
    return number


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.strip() not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value.strip()

    return parse


def _scope(value: str) -> str:
    if not re.match(r"^urn:opc:resource:fusion:[^:\s]+:saas-batch/$", value.strip()):
        raise ValueError("must look like urn:opc:resource:fusion:<env>:saas-batch/")
    return value.strip()


_HOST = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?(?::(\d{1,5}))?$")


def _hosts(value: str) -> tuple[tuple[str, int], ...]:
    """A comma-separated list of `host` or `host:port` (443 when left out): (host, port) pairs."""
    hosts = []
    for entry in (part.strip().lower() for part in value.split(",")):
        if not entry:
            continue
        match = _HOST.match(entry)
        if match is None or not 0 < int(match[1] or 443) < 65536:
            raise ValueError(f"entry {entry[:60]!r} must be host or host:port")
        hosts.append((entry.split(":")[0], int(match[1] or 443)))
    return tuple(hosts)


def _prefix(value: str) -> str:
    cleaned = value.strip().strip("/")
    if not cleaned or ".." in cleaned.split("/"):
        raise ValueError("must be a non-empty object name prefix without '..'")
    return cleaned


def _object_name(value: str) -> str:
    name = value.strip()
    if not name or name.startswith("/") or name.endswith("/") or ".." in name.split("/"):
        raise ValueError("must be an object name (no leading or trailing '/', no '..')")
    return name


@dataclass(frozen=True)
class Key:
    """One configuration key: its environment name, parser, default (None: required unless optional)."""

    env: str
    parse: Callable[[str], Any]
    default: str | None
    doc: str
    optional: bool = False  # absent means None (endpoint overrides and the like)
    field: str = ""  # the Settings field it fills

    @property
    def required(self) -> bool:
        return self.default is None and not self.optional


def _key(
    env: str, parse: Callable[[str], Any], default: str | None, doc: str, *, optional: bool = False
) -> Any:
    return field(metadata={"key": Key(env, parse, default, doc, optional)})


@dataclass(frozen=True)
class Settings:
    # Fusion and IDCS
    fusion_base_url: str = _key("FUSION_BASE_URL", _https_url, None, "Fusion pod base URL (https)")
    idcs_url: str = _key("IDCS_URL", _https_url, None, "Identity domain base URL; token at /oauth2/v1/token")
    fusion_scope: str = _key(
        "FUSION_SCOPE", _scope, None, "OAuth scope, urn:opc:resource:fusion:<env>:saas-batch/"
    )
    fusion_grant: str = _key(
        "FUSION_GRANT",
        _choice("client_credentials", "password"),
        "client_credentials",
        "OAuth grant: client_credentials or password",
    )
    credentials_secret_id: str = _key(
        "CREDENTIALS_SECRET_ID", _ocid, None, "Vault secret OCID of the JSON credentials"
    )
    ca_bundle: str | None = _key(
        "CA_BUNDLE", _text, None, "CA bundle path to trust for Fusion/IDCS", optional=True
    )
    connect_timeout: float = _key(
        "HTTP_CONNECT_TIMEOUT", _non_negative_float, "10", "Connect timeout, seconds"
    )
    read_timeout: float = _key("HTTP_READ_TIMEOUT", _non_negative_float, "60", "Read timeout, seconds")
    http_max_attempts: int = _key(
        "HTTP_MAX_ATTEMPTS", _positive_int, "6", "Attempts per HTTP call (transient errors)"
    )
    http_max_retry_seconds: float = _key(
        "HTTP_MAX_RETRY_SECONDS", _non_negative_float, "120", "Retry time per call"
    )
    max_json_bytes: int = _key(
        "FUSION_MAX_JSON_BYTES",
        _positive_int,
        str(2**20),
        "Largest JSON body read from Fusion or IDCS (job status, token), bytes",
    )
    max_listing_bytes: int = _key(
        "FUSION_MAX_LISTING_BYTES",
        _positive_int,
        str(16 * 2**20),
        "Largest listing page read from Fusion, bytes",
    )
    download_hosts: tuple[tuple[str, int], ...] = _key(
        "DOWNLOAD_HOSTS",
        _hosts,
        "",
        "Hosts (host or host:port, comma-separated) a download may be redirected to, without the token",
    )
    # OCI
    oci_auth: str = _key(
        "OCI_AUTH",
        _choice("resource_principal", "instance_principal", "config_file"),
        "resource_principal",
        "OCI auth: resource_principal (functions), instance_principal or config_file (the CLI)",
    )
    oci_config_file: str = _key(
        "OCI_CONFIG_FILE", _text, "~/.oci/config", "OCI config file (config_file auth)"
    )
    oci_config_profile: str = _key(
        "OCI_CONFIG_PROFILE", _text, "DEFAULT", "OCI config profile (config_file auth)"
    )
    objectstorage_endpoint: str | None = _key(
        "OCI_OBJECTSTORAGE_ENDPOINT", _url, None, "Endpoint override", optional=True
    )
    secrets_endpoint: str | None = _key(
        "OCI_SECRETS_ENDPOINT", _url, None, "Endpoint override", optional=True
    )
    notifications_endpoint: str | None = _key(
        "OCI_NOTIFICATIONS_ENDPOINT", _url, None, "Endpoint override", optional=True
    )
    functions_endpoint: str | None = _key(
        "OCI_FUNCTIONS_ENDPOINT",
        _url,
        None,
        "Functions invoke endpoint (the CLI's invoke and the runbook; looked up with GetFunction if unset)",
        optional=True,
    )
    monitoring_endpoint: str | None = _key(
        "OCI_MONITORING_ENDPOINT",
        _url,
        None,
        "Monitoring telemetry-ingestion endpoint override (custom metrics; the region's by default)",
        optional=True,
    )
    metrics_compartment_id: str | None = _key(
        "METRICS_COMPARTMENT_ID",
        _ocid,
        None,
        "Compartment the custom metrics are posted to; unset: no metrics are posted",
        optional=True,
    )
    bucket: str = _key("BUCKET_NAME", _text, None, "Landing bucket")
    namespace: str | None = _key(
        "BUCKET_NAMESPACE", _text, None, "Object Storage namespace (looked up if unset)", optional=True
    )
    poll_topic_id: str = _key("POLL_TOPIC_ID", _ocid, None, "Topic that invokes poll")
    transfer_topic_id: str = _key("TRANSFER_TOPIC_ID", _ocid, None, "Topic that invokes transfer")
    rerun_topic_id: str = _key("RERUN_TOPIC_ID", _ocid, None, "Topic that invokes submit for reruns")
    alerts_topic_id: str = _key(
        "ALERTS_TOPIC_ID", _ocid, None, "Topic for run landed / failed / overdue events"
    )
    # Layout
    landing_prefix: str = _key("LANDING_PREFIX", _prefix, "landing", "Root prefix of landed data")
    landing_template: str = _key(
        "LANDING_TEMPLATE",
        _text,
        "{prefix}/{extract}/dt={date}/run={job_id}",
        "Run folder template: {prefix} {extract} {mode} {date} {job_id}",
    )
    state_prefix: str = _key("STATE_PREFIX", _prefix, "_state", "Prefix of the run ledger and leases")
    staging_prefix: str = _key(
        "STAGING_PREFIX", _prefix, "_staging", "Prefix where members wait before promotion"
    )
    catalog_object: str | None = _key(
        "EXTRACT_CATALOG_OBJECT",
        _object_name,
        None,
        "Object in BUCKET_NAME holding the extract catalog, JSON (name: mode, schedule, landing_template), "
        "which Terraform writes; submit refuses any other extract. Unset: no catalog, nothing refused",
        optional=True,
    )
    keep_raw: bool = _key("KEEP_RAW_ZIPS", _bool, "false", "Also keep each downloaded ZIP under raw/")
    # Behaviour
    run_deadline_hours: float = _key(
        "RUN_DEADLINE_HOURS", _non_negative_float, "10", "Run deadline (Fusion job timeout)"
    )
    run_max_attempts: int = _key(
        "RUN_MAX_ATTEMPTS", _positive_int, "3", "Jobs submitted per run before giving up"
    )
    rerun_backoff_seconds: float = _key(
        "RERUN_BACKOFF_SECONDS", _non_negative_float, "300", "Wait before a rerun"
    )
    file_max_attempts: int = _key(
        "FILE_MAX_ATTEMPTS", _positive_int, "3", "Transfers of one file before failing"
    )
    file_retry_seconds: float = _key(
        "FILE_RETRY_SECONDS", _non_negative_float, "60", "Wait before a file retry (doubles)"
    )
    poll_budget_seconds: float = _key(
        "POLL_BUDGET_SECONDS", _non_negative_float, "240", "Wait inside one poll step"
    )
    poll_min_interval: float = _key(
        "POLL_MIN_INTERVAL", _non_negative_float, "15", "First interval between checks"
    )
    poll_max_interval: float = _key(
        "POLL_MAX_INTERVAL",
        _non_negative_float,
        "1200",
        "Longest interval between checks (longer than POLL_BUDGET_SECONDS: the sweep brings the next check)",
    )
    completed_grace_seconds: float = _key(
        "COMPLETED_GRACE_SECONDS",
        _non_negative_float,
        "1800",
        "A job COMPLETED but unconfirmed this long counts as succeeded if its files are listed",
    )
    step_overdue_seconds: float = _key(
        "STEP_OVERDUE_SECONDS", _non_negative_float, "900", "Sweep re-drives after this"
    )
    lease_seconds: float = _key(
        "LEASE_SECONDS", _non_negative_float, "43200", "A lease older than this is stale"
    )
    stall_alert_after: int = _key(
        "STALL_ALERT_AFTER",
        _positive_int,
        "5",
        "Failed or re-driven steps in a row before a person is alerted",
    )
    malformed_tries: int = _key(
        "MALFORMED_TRIES", _positive_int, "3", "Malformed Fusion answers in a row before a run fails"
    )
    defer_seconds: float = _key(
        "DEFER_SECONDS",
        _non_negative_float,
        "60",
        "Wait after a transient failure (doubles, at most an hour)",
    )
    transfer_budget_seconds: float = _key(
        "TRANSFER_BUDGET_SECONDS",
        _non_negative_float,
        "240",
        "Transfer work per invocation; past it, the work goes on in the next invocation",
    )
    transfer_fanout: int = _key(
        "TRANSFER_FANOUT",
        _positive_int,
        "4",
        "Most invocations one archive's members are unpacked by at once",
    )
    upload_part_mb: int = _key("UPLOAD_PART_MB", _positive_int, "8", "Multipart part size, MiB")
    upload_parallelism: int = _key("UPLOAD_PARALLELISM", _positive_int, "3", "Parts uploaded at once")
    zip_max_entries: int = _key("ZIP_MAX_ENTRIES", _positive_int, "10000", "Most members in one archive")
    zip_max_bytes: int = _key(
        "ZIP_MAX_BYTES", _positive_int, str(64 * 2**30), "Most uncompressed bytes per archive"
    )
    zip_max_ratio: int = _key("ZIP_MAX_RATIO", _positive_int, "200", "Highest compression ratio per member")
    secret_ttl_seconds: float = _key(
        "SECRET_TTL_SECONDS", _non_negative_float, "300", "Credentials cache lifetime"
    )
    log_level: str = _key("LOG_LEVEL", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", "Log level")

    @property
    def fusion_host(self) -> str:
        return urlsplit(self.fusion_base_url).netloc

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        """Read every key; raise one ConfigError that names every problem."""
        values: dict[str, Any] = {}
        problems = _typos(env)
        for key in KEYS:
            raw = env.get(key.env)
            if raw is None or raw.strip() == "":
                if key.optional:
                    values[key.field] = None
                    continue
                if key.default is None:
                    problems.append(f"{key.env} is missing ({key.doc})")
                    continue
                raw = key.default
            try:
                values[key.field] = key.parse(raw)
            except ValueError as exc:
                problems.append(f"{key.env} {exc}")
        if not problems:
            problems.extend(_cross_checks(values))
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return cls(**values)


KEYS: tuple[Key, ...] = tuple(replace(f.metadata["key"], field=f.name) for f in fields(Settings))


def _typos(env: Mapping[str, str]) -> list[str]:
    """Names in the environment that are not ours but look like one of ours mistyped."""
    known = [key.env for key in KEYS]
    problems = []
    for name in sorted(env):
        if name in known or not _ENV_NAME.match(name) or name.startswith(_FOREIGN_PREFIXES):
            continue
        near = difflib.get_close_matches(name, known, n=1, cutoff=_TYPO_CUTOFF)
        if near:
            problems.append(f"{name} is not a configuration key (did you mean {near[0]}?)")
    return problems


def _cross_checks(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if "{job_id}" not in values["landing_template"]:
        problems.append("LANDING_TEMPLATE must contain {job_id} so that runs never share a folder")
    try:
        values["landing_template"].format(prefix="p", extract="e", mode="full", date="d", job_id="1")
    except (KeyError, IndexError, ValueError) as exc:
        problems.append(f"LANDING_TEMPLATE has an unknown placeholder ({exc})")
    if values["transfer_fanout"] > 64:
        problems.append("TRANSFER_FANOUT must be at most 64")
    if values["poll_min_interval"] > values["poll_max_interval"]:
        problems.append("POLL_MIN_INTERVAL must not exceed POLL_MAX_INTERVAL")
    # Work at a file or unit stops at its budget; a claim older than the overdue time is handed out again.
    if values["step_overdue_seconds"] < 2 * values["transfer_budget_seconds"]:
        problems.append(
            "STEP_OVERDUE_SECONDS must be at least twice TRANSFER_BUDGET_SECONDS, or transfer work still "
            "under way would look overdue and be handed out again"
        )
    return problems
