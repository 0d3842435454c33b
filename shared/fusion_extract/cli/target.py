"""What the CLI talks to: the cloud (configuration from the environment, API key profile or instance
principal) or the emulators (`.local/endpoints.json`, written by `make emulator`).

The configuration is the functions' own (the same keys, docs/configuration.md), so `doctor` checks exactly
what the functions will read. Function OCIDs come from the endpoints file, or in the cloud from
`FUSION_EXTRACT_FUNCTIONS` (JSON `{"submit": "ocid1.fnfunc...", ...}`: `terraform output -json function_ids`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fusion_extract.errors import ConfigError

FUNCTIONS_ENV = "FUSION_EXTRACT_FUNCTIONS"
STEPS = ("submit", "poll", "transfer")


@dataclass(frozen=True)
class Logs:
    """Where the functions' log lines are: a folder of one JSON-lines file per function (the emulators),
    or the application's invoke log in OCI Logging (`terraform output`: log_group_id, invoke_log_id)."""

    folder: Path | None = None
    log_group_id: str | None = None
    log_id: str | None = None


@dataclass(frozen=True)
class Target:
    env: dict[str, str]
    functions: dict[str, str] = field(default_factory=dict)  # step -> function OCID
    compartment: str | None = None  # where the schedules are (doctor)
    control_endpoint: str | None = None  # the control-plane APIs doctor reads; None: the region's
    origin: str = "the environment"
    logs: Logs = Logs()

    def function_id(self, step: str) -> str:
        if step not in STEPS:
            raise ConfigError(f"no function {step!r}: the steps are {', '.join(STEPS)}")
        found = self.functions.get(step)
        if not found:
            raise ConfigError(
                f"the OCID of the {step} function is unknown: set {FUNCTIONS_ENV} to "
                "`terraform output -json function_ids`, or use --local"
            )
        return found


def from_endpoints(path: Path) -> Target:
    """The emulators `make emulator` (or `make demo`) runs, as their endpoints file describes them."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: start the emulators with `make emulator` first") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from None
    config: Mapping[str, Any] = doc.get("config") or {}
    return Target(
        env={str(k): str(v) for k, v in config.items()},
        functions={str(k): str(v) for k, v in (doc.get("functions") or {}).items()},
        compartment=doc.get("compartment"),
        control_endpoint=(doc.get("oci") or {}).get("endpoint"),
        origin=str(path),
        logs=_logs(doc),
    )


def _logs(doc: Mapping[str, Any]) -> Logs:
    logging: Mapping[str, Any] = doc.get("logging") or {}
    folder = doc.get("logs")
    return Logs(
        Path(folder) if isinstance(folder, str) else None, logging.get("log_group_id"), logging.get("log_id")
    )


def from_environment(profile: str | None = None, environ: Mapping[str, str] | None = None) -> Target:
    """The cloud: the functions' configuration keys from the environment; `profile` selects an API key
    profile of the OCI config file (OCI_AUTH=config_file)."""
    env = dict(os.environ if environ is None else environ)
    if profile:
        env["OCI_AUTH"], env["OCI_CONFIG_PROFILE"] = "config_file", profile
    env.setdefault("OCI_AUTH", "config_file")  # a person's shell has no resource principal
    functions: dict[str, str] = {}
    if env.get(FUNCTIONS_ENV):
        try:
            functions = {str(k): str(v) for k, v in json.loads(env[FUNCTIONS_ENV]).items()}
        except (ValueError, AttributeError) as exc:
            raise ConfigError(f"{FUNCTIONS_ENV} must be a JSON object step -> OCID ({exc})") from None
    env.pop(FUNCTIONS_ENV, None)
    return Target(env=env, functions=functions, compartment=env.get("METRICS_COMPARTMENT_ID"))


def with_oci_profile(target: Target, oci_profile: str | None) -> Target:
    """The target signed in with another profile of the OCI config file (`--oci-profile`)."""
    if not oci_profile:
        return target
    env = {**target.env, "OCI_AUTH": "config_file", "OCI_CONFIG_PROFILE": oci_profile}
    return replace(target, env=env)
