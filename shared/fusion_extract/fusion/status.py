"""What a Batch Processing job status response means for us.

The status string comes from the first of: `jobStatus`, `jobDetails.jobStatus`,
`jobDetails.jobProgress.status`, `jobProgress.status`. `jobDetails` is an object in Oracle's docs and
a list in some clients, so both are read. The scheduler states follow the Enterprise Scheduler enum
(docs/architecture.md: failure policy): COMPLETED and PAUSED are NOT final, and a success only counts once
`jobProgress.completed` is true wherever Fusion reports it.

COMPLETED counts as success only with `jobProgress.completed == true`; without it (and a success status
with `completed` false) the job is RUNNING but `unconfirmed`, so the chain can apply its grace rule.
`validation_failed` marks the failures a rerun cannot fix.

The job's extract and mode come from its `jobRequest` echo: `requestParameters` (submit.argument1, and
submit.argument2 "Full Data Extract" / "Incremental Data Extract"), which Fusion acts on, else the documented
description `<schedule>::<extract>::<Full|Incremental>::<recurrence>`. What neither says stays None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fusion_extract.errors import MalformedResponseError
from fusion_extract.models import JobStatus, Mode, Phase

_PHASES: Mapping[str, Phase] = {
    **dict.fromkeys(("SUCCEEDED", "FINISHED", "WARNING"), Phase.SUCCEEDED),
    **dict.fromkeys(
        ("ERROR", "FAILED", "EXPIRED", "VALIDATION_FAILED", "CANCELLED", "CANCELED"), Phase.FAILED
    ),
    # A recurring parent whose schedule ended has no outcome of its own: someone must look at it.
    **dict.fromkeys(("ERROR_MANUAL_RECOVERY", "SCHEDULE_ENDED"), Phase.NEEDS_HUMAN),
    **dict.fromkeys(
        (
            "WAIT",
            "READY",
            "PENDING_VALIDATION",
            "ENQUEUED",
            "RUNNING",
            "IN_PROGRESS",
            "BLOCKED",
            "HOLD",
            "PAUSED",  # paused for sub-requests
            "COMPLETED",  # post-processing has started; outputs may still be written
            "CANCELLING",
            "ERROR_AUTO_RETRY",
        ),
        Phase.RUNNING,
    ),
}


# The failure message of a job whose extract definition does not exist. Fusion documents no failure
# messages; this is what our emulator says for an unknown extract and what such a message plausibly says.
# A real pod may refuse the POST instead (a 4xx, permanent in the client). Kept to one small pattern.
_NO_DEFINITION = re.compile(r"\bdefinition\b.*\b(?:does not exist|not found)\b", re.I)
_CONFIRMABLE = frozenset({"COMPLETED", "SUCCEEDED", "FINISHED", "WARNING"})
_MODES = {mode.argument: mode for mode in Mode} | {mode.label: mode for mode in Mode}


def parse_job_status(job_id: str, body: Any) -> JobStatus:
    """Normalise a GET jobRequests/{id} body; UpstreamError when it carries no status."""
    if not isinstance(body, Mapping):
        raise MalformedResponseError(f"job {job_id}: status response is not a JSON object")
    details = _details(job_id, body.get("jobDetails"))
    progress = _mapping(details.get("jobProgress")) or _mapping(body.get("jobProgress"))
    raw = body.get("jobStatus") or details.get("jobStatus") or progress.get("status")
    if not isinstance(raw, str) or not raw.strip():
        raise MalformedResponseError(f"job {job_id}: status response has no jobStatus (malformed response)")
    status = raw.strip().upper()
    completed = _flag(progress.get("completed"))
    phase = _PHASES.get(status, Phase.RUNNING)
    if status == "COMPLETED" and completed is True:
        phase = Phase.SUCCEEDED  # post-processing done, and Fusion says so
    if phase is Phase.SUCCEEDED and completed is False:
        phase = Phase.RUNNING  # Fusion says it is still finishing
    unconfirmed = status in _CONFIRMABLE and phase is Phase.RUNNING
    raw_message = progress.get("message")
    message = raw_message if isinstance(raw_message, str) else None
    validation_failed = status == "VALIDATION_FAILED" or (
        status == "ERROR" and message is not None and _NO_DEFINITION.search(message) is not None
    )
    extract, mode = _ran(_mapping(details.get("jobRequest")) or _mapping(body.get("jobRequest")))
    return JobStatus(
        job_id=job_id,
        status=status,
        phase=phase,
        warning=status == "WARNING",
        known=status in _PHASES,
        message=message,
        completed=completed,
        unconfirmed=unconfirmed,
        validation_failed=validation_failed,
        extract=extract,
        mode=mode,
    )


def _ran(request: Mapping[str, Any]) -> tuple[str | None, Mode | None]:
    """The extract and mode a job ran: its parameters first, then its description's parts."""
    parameters = _mapping(request.get("requestParameters"))
    description = request.get("description")
    parts = description.split("::") if isinstance(description, str) else []
    said = parts[1:3] if len(parts) == 4 else [None, None]
    extract = _text(parameters.get("submit.argument1")) or _text(said[0])
    mode = _MODES.get(_text(parameters.get("submit.argument2")) or "") or _MODES.get(_text(said[1]) or "")
    return extract, mode


def _text(value: Any) -> str | None:
    """Non-blank text, stripped; anything else is not said."""
    return (value.strip() or None) if isinstance(value, str) else None


def _flag(value: Any) -> bool | None:
    """jobProgress.completed: a JSON boolean or the text true/false; anything else is not reported."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _details(job_id: str, value: Any) -> Mapping[str, Any]:
    """The jobDetails object; from a list, the element for this job, else the first."""
    if isinstance(value, list):
        candidates = [_mapping(item) for item in value]
        mine = [item for item in candidates if str(item.get("jobRequestId")) == job_id]
        return (mine or candidates or [{}])[0]
    return _mapping(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
