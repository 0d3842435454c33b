"""Function configuration: every key in one table, read and validated once.

OCI Functions hands application and function config to the code as environment variables
(`ctx.Config()` is `os.environ`). `Settings.from_mapping` reads them all and fails with one
ConfigError naming every missing or invalid key. Secrets never live here: only the Vault
secret OCID does. `KEYS` is the single source the README table and the Terraform checks read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fusion_extract.errors import ConfigError

OCID = re.compile(r"^ocid1\.[a-z0-9_]+\.[a-z0-9_-]*\.[a-z0-9_-]*\.[A-Za-z0-9_.-]+$")


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


def _prefix(value: str) -> str:
    cleaned = value.strip().strip("/")
    if not cleaned or ".." in cleaned.split("/"):
        raise ValueError("must be a non-empty object name prefix without '..'")
    return cleaned


@dataclass(frozen=True)
class Key:
    """One configuration key: its environment name, parser, default (None = required) and meaning."""

    env: str
    field: str
    parse: Callable[[str], Any]
    default: str | None
    doc: str
    optional: bool = False  # absent means None (for endpoint overrides)


KEYS: tuple[Key, ...] = (
    # Fusion and IDCS
    Key("FUSION_BASE_URL", "fusion_base_url", _https_url, None, "Fusion pod base URL (https)"),
    Key("IDCS_URL", "idcs_url", _https_url, None, "Identity domain base URL; token at /oauth2/v1/token"),
    Key(
        "FUSION_SCOPE", "fusion_scope", _scope, None, "OAuth scope, urn:opc:resource:fusion:<env>:saas-batch/"
    ),
    Key(
        "FUSION_GRANT",
        "fusion_grant",
        _choice("client_credentials", "password"),
        "client_credentials",
        "OAuth grant: client_credentials or password",
    ),
    Key(
        "CREDENTIALS_SECRET_ID",
        "credentials_secret_id",
        _ocid,
        None,
        "Vault secret OCID of the JSON credentials",
    ),
    Key("CA_BUNDLE", "ca_bundle", _text, None, "CA bundle path to trust for Fusion/IDCS", optional=True),
    Key("HTTP_CONNECT_TIMEOUT", "connect_timeout", _non_negative_float, "10", "Connect timeout, seconds"),
    Key("HTTP_READ_TIMEOUT", "read_timeout", _non_negative_float, "60", "Read timeout, seconds"),
    Key(
        "HTTP_MAX_ATTEMPTS",
        "http_max_attempts",
        _positive_int,
        "6",
        "Attempts per HTTP call (transient errors)",
    ),
    Key(
        "HTTP_MAX_RETRY_SECONDS", "http_max_retry_seconds", _non_negative_float, "120", "Retry time per call"
    ),
    # OCI
    Key(
        "OCI_AUTH", "oci_auth", _choice("resource_principal", "config_file"), "resource_principal", "OCI auth"
    ),
    Key("OCI_CONFIG_FILE", "oci_config_file", _text, "~/.oci/config", "OCI config file (config_file auth)"),
    Key(
        "OCI_CONFIG_PROFILE", "oci_config_profile", _text, "DEFAULT", "OCI config profile (config_file auth)"
    ),
    Key(
        "OCI_OBJECTSTORAGE_ENDPOINT", "objectstorage_endpoint", _url, None, "Endpoint override", optional=True
    ),
    Key("OCI_SECRETS_ENDPOINT", "secrets_endpoint", _url, None, "Endpoint override", optional=True),
    Key(
        "OCI_NOTIFICATIONS_ENDPOINT", "notifications_endpoint", _url, None, "Endpoint override", optional=True
    ),
    Key("OCI_FUNCTIONS_ENDPOINT", "functions_endpoint", _url, None, "Endpoint override", optional=True),
    Key("OCI_MONITORING_ENDPOINT", "monitoring_endpoint", _url, None, "Endpoint override", optional=True),
    Key("BUCKET_NAME", "bucket", _text, None, "Landing bucket"),
    Key(
        "BUCKET_NAMESPACE",
        "namespace",
        _text,
        None,
        "Object Storage namespace (looked up if unset)",
        optional=True,
    ),
    Key("POLL_TOPIC_ID", "poll_topic_id", _ocid, None, "Topic that invokes poll"),
    Key("TRANSFER_TOPIC_ID", "transfer_topic_id", _ocid, None, "Topic that invokes transfer"),
    Key("RERUN_TOPIC_ID", "rerun_topic_id", _ocid, None, "Topic that invokes submit for reruns"),
    Key("ALERTS_TOPIC_ID", "alerts_topic_id", _ocid, None, "Topic for run landed / failed / overdue events"),
    # Layout
    Key("LANDING_PREFIX", "landing_prefix", _prefix, "landing", "Root prefix of landed data"),
    Key(
        "LANDING_TEMPLATE",
        "landing_template",
        _text,
        "{prefix}/{extract}/dt={date}/run={job_id}",
        "Run folder template: {prefix} {extract} {mode} {date} {job_id}",
    ),
    Key("STATE_PREFIX", "state_prefix", _prefix, "_state", "Prefix of the run ledger and leases"),
    Key(
        "STAGING_PREFIX", "staging_prefix", _prefix, "_staging", "Prefix where members wait before promotion"
    ),
    Key("KEEP_RAW_ZIPS", "keep_raw", _bool, "false", "Also keep each downloaded ZIP under raw/"),
    # Behaviour
    Key(
        "RUN_DEADLINE_HOURS",
        "run_deadline_hours",
        _non_negative_float,
        "10",
        "Run deadline (Fusion job timeout)",
    ),
    Key(
        "RUN_MAX_ATTEMPTS", "run_max_attempts", _positive_int, "3", "Jobs submitted per run before giving up"
    ),
    Key("RERUN_BACKOFF_SECONDS", "rerun_backoff_seconds", _non_negative_float, "300", "Wait before a rerun"),
    Key("FILE_MAX_ATTEMPTS", "file_max_attempts", _positive_int, "3", "Transfers of one file before failing"),
    Key(
        "FILE_RETRY_SECONDS",
        "file_retry_seconds",
        _non_negative_float,
        "60",
        "Wait before a file retry (doubles)",
    ),
    Key(
        "POLL_BUDGET_SECONDS", "poll_budget_seconds", _non_negative_float, "240", "Wait inside one poll step"
    ),
    Key("POLL_MIN_INTERVAL", "poll_min_interval", _non_negative_float, "15", "First interval between checks"),
    Key(
        "POLL_MAX_INTERVAL",
        "poll_max_interval",
        _non_negative_float,
        "120",
        "Longest interval between checks",
    ),
    Key(
        "STEP_OVERDUE_SECONDS",
        "step_overdue_seconds",
        _non_negative_float,
        "900",
        "Sweep re-drives after this",
    ),
    Key("LEASE_SECONDS", "lease_seconds", _non_negative_float, "43200", "A lease older than this is stale"),
    Key("UPLOAD_PART_MB", "upload_part_mb", _positive_int, "16", "Multipart part size, MiB"),
    Key("UPLOAD_PARALLELISM", "upload_parallelism", _positive_int, "3", "Parts uploaded at once"),
    Key("ZIP_MAX_ENTRIES", "zip_max_entries", _positive_int, "10000", "Most members in one archive"),
    Key(
        "ZIP_MAX_BYTES",
        "zip_max_bytes",
        _positive_int,
        str(64 * 2**30),
        "Most uncompressed bytes per archive",
    ),
    Key("ZIP_MAX_RATIO", "zip_max_ratio", _positive_int, "200", "Highest compression ratio per member"),
    Key("SECRET_TTL_SECONDS", "secret_ttl_seconds", _non_negative_float, "300", "Credentials cache lifetime"),
    Key("LOG_LEVEL", "log_level", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", "Log level"),
)


@dataclass(frozen=True)
class Settings:
    fusion_base_url: str
    idcs_url: str
    fusion_scope: str
    fusion_grant: str
    credentials_secret_id: str
    ca_bundle: str | None
    connect_timeout: float
    read_timeout: float
    http_max_attempts: int
    http_max_retry_seconds: float
    oci_auth: str
    oci_config_file: str
    oci_config_profile: str
    objectstorage_endpoint: str | None
    secrets_endpoint: str | None
    notifications_endpoint: str | None
    functions_endpoint: str | None
    monitoring_endpoint: str | None
    bucket: str
    namespace: str | None
    poll_topic_id: str
    transfer_topic_id: str
    rerun_topic_id: str
    alerts_topic_id: str
    landing_prefix: str
    landing_template: str
    state_prefix: str
    staging_prefix: str
    keep_raw: bool
    run_deadline_hours: float
    run_max_attempts: int
    rerun_backoff_seconds: float
    file_max_attempts: int
    file_retry_seconds: float
    poll_budget_seconds: float
    poll_min_interval: float
    poll_max_interval: float
    step_overdue_seconds: float
    lease_seconds: float
    upload_part_mb: int
    upload_parallelism: int
    zip_max_entries: int
    zip_max_bytes: int
    zip_max_ratio: int
    secret_ttl_seconds: float
    log_level: str

    @property
    def fusion_host(self) -> str:
        return urlsplit(self.fusion_base_url).netloc

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        """Read every key; raise one ConfigError that names every problem."""
        values: dict[str, Any] = {}
        problems: list[str] = []
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


def _cross_checks(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if "{job_id}" not in values["landing_template"]:
        problems.append("LANDING_TEMPLATE must contain {job_id} so that runs never share a folder")
    try:
        values["landing_template"].format(prefix="p", extract="e", mode="full", date="d", job_id="1")
    except (KeyError, IndexError, ValueError) as exc:
        problems.append(f"LANDING_TEMPLATE has an unknown placeholder ({exc})")
    if values["poll_min_interval"] > values["poll_max_interval"]:
        problems.append("POLL_MIN_INTERVAL must not exceed POLL_MAX_INTERVAL")
    return problems
