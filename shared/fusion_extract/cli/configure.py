"""`fusion-extract configure NAME`: a named profile of the CLI, built from `terraform output -json`.

A profile is what the CLI needs to operate one deployment: the functions' own configuration (the
`function_config` output, so `doctor` checks what the functions read), the function OCIDs and their invoke
endpoint, the compartment of the schedules, the region and the functions' invoke log (`logs` searches it);
plus how the CLI signs in (an OCI config-file profile, `--oci-profile`). Every command then takes
`--profile NAME` (or FUSION_EXTRACT_PROFILE).

Two profiles, two names: `--profile` names a fusion-extract profile (this module, one JSON file each in
`$FUSION_EXTRACT_PROFILES`, default `~/.config/fusion-extract/profiles/`); `--oci-profile` names a profile of
the OCI config file (`[DEFAULT]` in `~/.oci/config`), as the `oci` CLI's own `--profile` does.

A profile has the shape of `make emulator`'s endpoints file, so the CLI reads both the same way;
`--endpoint` aims every OCI service at one URL, as the `oci` CLI's `--endpoint` does (the emulator).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import click
import oci

from fusion_extract.errors import ConfigError

PROFILES_ENV = "FUSION_EXTRACT_PROFILES"
DEFAULT_OCI_CONFIG = "~/.oci/config"
# The outputs of terraform/outputs.tf a profile is built from (a test keeps them declared there).
OUTPUTS = ("function_config", "function_ids", "invoke_endpoints", "compartment_id", "region")
LOG_OUTPUTS = ("log_group_id", "invoke_log_id")  # where `logs` searches (a deployment without them: none)
# The keys `--endpoint` sets: every OCI service the CLI and the functions call.
OCI_ENDPOINT_KEYS = (
    "OCI_OBJECTSTORAGE_ENDPOINT",
    "OCI_SECRETS_ENDPOINT",
    "OCI_NOTIFICATIONS_ENDPOINT",
    "OCI_FUNCTIONS_ENDPOINT",
    "OCI_MONITORING_ENDPOINT",
)
UNUSABLE = 3  # docs/cli.md: the target or its configuration is not usable
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def profiles_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(PROFILES_ENV):
        return Path(env[PROFILES_ENV]).expanduser()
    config_home = Path(env.get("XDG_CONFIG_HOME") or "~/.config").expanduser()
    return config_home / "fusion-extract" / "profiles"


def profile_path(name: str, environ: Mapping[str, str] | None = None) -> Path:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"profile name {name!r}: letters, digits, '.', '_' and '-' only (at most 64)")
    return profiles_dir(environ) / f"{name}.json"


def read_outputs(text: str, source: str) -> dict[str, Any]:
    """The values of `terraform output -json` (each output's `value`); ConfigError naming what is missing."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{source} is not the JSON of `terraform output -json`: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{source} is not the JSON of `terraform output -json` (an object of outputs)")
    values = {
        name: output["value"]
        for name, output in doc.items()
        if isinstance(output, dict) and "value" in output
    }
    missing = [name for name in OUTPUTS if values.get(name) in (None, "", {})]
    if missing:
        raise ConfigError(
            f"{source} lacks the output{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
            "apply this version's terraform/ first (terraform/outputs.tf declares them)"
        )
    return values


def build_profile(
    name: str,
    outputs: Mapping[str, Any],
    *,
    oci_config_file: str = DEFAULT_OCI_CONFIG,
    oci_profile: str = "DEFAULT",
    endpoint: str | None = None,
) -> dict[str, Any]:
    """The profile document: the functions' configuration, signed in with an OCI config-file profile."""
    config = {str(key): str(value) for key, value in dict(outputs["function_config"]).items()}
    functions = {str(step): str(ocid) for step, ocid in dict(outputs["function_ids"]).items()}
    invoke = sorted({str(url) for url in dict(outputs["invoke_endpoints"]).values()})
    config.update(OCI_AUTH="config_file", OCI_CONFIG_FILE=oci_config_file, OCI_CONFIG_PROFILE=oci_profile)
    if invoke:
        config["OCI_FUNCTIONS_ENDPOINT"] = invoke[0]  # one application: one invoke endpoint
    if endpoint:
        config.update({key: endpoint for key in OCI_ENDPOINT_KEYS})
    log_group, log = (outputs.get(key) for key in LOG_OUTPUTS)
    return {
        "profile": name,
        "made_from": "terraform output -json",
        "logging": {"log_group_id": str(log_group), "log_id": str(log)} if log_group and log else {},
        "region": str(outputs["region"]),
        "compartment": str(outputs["compartment_id"]),
        "functions": functions,
        "config": config,
        "oci": {"endpoint": endpoint} if endpoint else {},
    }


def check_region(profile: Mapping[str, Any]) -> None:
    """The OCI config-file profile must sign in to the deployment's region: the SDK takes the region from
    it, so another region's profile would look for the bucket and topics where they are not."""
    config = profile["config"]
    path = str(Path(config["OCI_CONFIG_FILE"]).expanduser())
    try:
        found = oci.config.from_file(path, config["OCI_CONFIG_PROFILE"]).get("region")
    except (OSError, ValueError, oci.exceptions.ClientError) as exc:
        raise ConfigError(
            f"OCI_CONFIG_FILE {path} profile {config['OCI_CONFIG_PROFILE']} is not usable: {exc}; "
            "`oci setup config` writes one, or pass --oci-config-file and --oci-profile"
        ) from None
    if found != profile["region"]:
        raise ConfigError(
            f"OCI config profile {config['OCI_CONFIG_PROFILE']} signs in to {found}; the deployment is in "
            f"{profile['region']}: pass --oci-profile naming a profile of {profile['region']}"
        )


def write_profile(profile: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Path:
    path = profile_path(str(profile["profile"]), environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".json.tmp")
    staged.write_text(json.dumps(profile, indent=2, sort_keys=True) + "\n")
    staged.chmod(0o600)
    staged.replace(path)  # whole or not at all
    return path


def load_profile_path(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """The file of an existing profile; ConfigError saying how to make it when there is none."""
    path = profile_path(name, environ)
    if not path.exists():
        raise ConfigError(
            f"no profile {name!r} ({path}): make it with "
            f"`terraform -chdir=terraform output -json | fusion-extract configure {name} --from -`"
        )
    return path


# -- the command ---------------------------------------------------------------------------------------


@click.command()
@click.argument("name")
@click.option(
    "--from",
    "source",
    type=click.File("r"),
    required=True,
    help="A file holding `terraform output -json` ('-': stdin).",
)
@click.option(
    "--oci-config-file",
    default=DEFAULT_OCI_CONFIG,
    show_default=True,
    help="The OCI config file to sign in with.",
)
@click.option(
    "--oci-profile", default="DEFAULT", show_default=True, help="Its profile for the deployment's region."
)
@click.option(
    "--endpoint", help="Aim every OCI service at this URL, as `oci --endpoint` does (the emulator)."
)
@click.option("--force", is_flag=True, help="Replace a profile of that name.")
def configure(
    name: str, source: TextIO, oci_config_file: str, oci_profile: str, endpoint: str | None, force: bool
) -> None:
    """Make profile NAME from `terraform output -json`; then every command takes --profile NAME.

    terraform -chdir=terraform output -json | fusion-extract configure prod --from -
    fusion-extract --profile prod doctor
    """
    try:
        outputs = read_outputs(source.read(), "stdin" if source.name == "<stdin>" else source.name)
        profile = build_profile(
            name, outputs, oci_config_file=oci_config_file, oci_profile=oci_profile, endpoint=endpoint
        )
        if endpoint is None:  # the cloud: the SDK takes the region from the OCI profile
            check_region(profile)
        if profile_path(name).exists() and not force:
            raise ConfigError(f"profile {name!r} exists ({profile_path(name)}): pass --force to replace it")
        path = write_profile(profile)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(UNUSABLE)
    steps = ", ".join(sorted(profile["functions"]))
    click.echo(f"profile {name} written to {path}: region {profile['region']}, functions {steps}")
    click.echo(f"next: fusion-extract --profile {name} doctor")
