"""The options every command takes, before or after the subcommand, and how a moment is written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

LOCAL_ENDPOINTS = Path(".local") / "endpoints.json"
PROFILE_ENV = "FUSION_EXTRACT_PROFILE"


@dataclass
class Options:
    """The target and output options, wherever on the command line they were given."""

    local: bool = False
    endpoints: Path | None = None
    profile: str | None = None  # a fusion-extract profile (`configure`)
    oci_profile: str | None = None  # an OCI config-file profile to sign in with
    compartment: str | None = None
    as_json: bool = False


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value not in (None, False) and param.name is not None:
        setattr(ctx.ensure_object(Options), param.name, value)
    return value


COMMON: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("--local",),
        {"is_flag": True, "help": f"Talk to the emulators of `make emulator` ({LOCAL_ENDPOINTS})."},
    ),
    (
        ("--endpoints",),
        {
            "type": click.Path(path_type=Path, dir_okay=False),
            "help": "Talk to the emulators this endpoints file describes (make demo writes one).",
        },
    ),
    (
        ("--profile",),
        {
            "envvar": PROFILE_ENV,
            "help": f"The fusion-extract profile `configure` made for a deployment (or ${PROFILE_ENV}).",
        },
    ),
    (
        ("--oci-profile",),
        {"help": "OCI config file profile (API key) to sign in with; else the profile's, or OCI_AUTH."},
    ),
    (("--compartment",), {"help": "Compartment of the schedules (doctor); default METRICS_COMPARTMENT_ID."}),
    (("--json", "as_json"), {"is_flag": True, "help": "Print JSON for scripts instead of tables."}),
)


def common() -> list[click.Option]:
    """The target and output options, taken on the group and on every subcommand alike (into Options)."""
    return [
        click.Option(decls, expose_value=False, callback=_remember, **settings) for decls, settings in COMMON
    ]


def when(text: str | None, now: datetime, option: str) -> datetime | None:
    """--since/--until: a date (midnight UTC), an ISO time, or a span ago (90m, 36h, 7d)."""
    if text is None:
        return None
    span = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if span:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[span.group(2)]
        return now - timedelta(**{unit: int(span.group(1))})
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            return datetime.combine(date.fromisoformat(text.strip()), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a date (2026-12-01), an ISO time (2026-12-01T08:00Z) or a span ago (36h, 7d)",
            param_hint=option,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
