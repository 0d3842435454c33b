"""The chain's messages: small versioned JSON documents, validated strictly at the function boundary.

Every way in has one type here. A malformed document raises MessageError naming the problem, before
any side effect. Unknown fields are refused (a typo must not silently change behaviour).

    run      {"extract": "Sales", "mode": "full"|"incremental", "runAtTimes": {...}}  schedules, fn invoke
    rerun    {"kind": "rerun", "run_id": "...", "attempt": 2}  resubmit a failed run (chain, by hand)
    reland   {"kind": "reland", "extract": "Sales", "job_id": "123", "mode": "full"}  land a job again
    poll     {"kind": "poll", "run_id": "...", "seq": 3}  one poll step of a run (continuations carry seq)
    sweep    {"kind": "sweep"}                            re-drive every run whose next step is overdue
    transfer {"kind": "transfer", "run_id": "...", "files": ["a.zip", ...]}  files to land, one per invocation
    alert    {"kind": "alert", "event": "landed"|..., ...}  published to the alerts topic (outgoing only)

The version field "v" is written on every message we publish; hand-written requests may omit it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fusion_extract.errors import MessageError
from fusion_extract.models import ExtractRequest, Mode, RunAtTimes

VERSION = 1
MAX_TRANSFER_FILES = 500
_EXTRACT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,159}$")
_JOB_ID = re.compile(r"^[0-9]{1,20}$")
_FILE = re.compile(r"^[A-Za-z0-9._-]{1,255}$")


@dataclass(frozen=True)
class RunRequest:
    request: ExtractRequest


@dataclass(frozen=True)
class RerunRequest:
    run_id: str
    attempt: int | None = None  # set by the chain: the attempt it asks for; None: an operator's rerun


@dataclass(frozen=True)
class RelandRequest:
    extract: str
    job_id: str
    mode: Mode


@dataclass(frozen=True)
class PollRequest:
    run_id: str
    seq: int


@dataclass(frozen=True)
class SweepRequest:
    pass


@dataclass(frozen=True)
class TransferRequest:
    run_id: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class CancelRequest:
    """Cancel one run, or the active run of one extract (exactly one of the two is given)."""

    run_id: str | None = None
    extract: str | None = None


SubmitMessage = RunRequest | RerunRequest | RelandRequest | CancelRequest
PollMessage = PollRequest | SweepRequest


def parse_submit(body: bytes) -> SubmitMessage:
    doc = _document(body)
    kind = doc.pop("kind", "run")
    if kind == "run":
        _only(doc, "extract", "mode", "runAtTimes")
        extract = _extract(doc)
        run_at = RunAtTimes.from_fusion(doc["runAtTimes"]) if "runAtTimes" in doc else None
        return RunRequest(ExtractRequest(extract, _mode(doc), run_at))
    if kind == "rerun":
        _only(doc, "run_id", "attempt")
        attempt = doc.get("attempt")
        if attempt is not None and (not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1):
            raise MessageError("attempt must be a whole number >= 1")
        return RerunRequest(_run_id(doc), attempt)
    if kind == "reland":
        _only(doc, "extract", "job_id", "mode")
        return RelandRequest(
            _extract(doc), _match(doc, "job_id", _JOB_ID, "a numeric job request id"), _mode(doc)
        )
    if kind == "cancel":
        _only(doc, "run_id", "extract")
        if ("run_id" in doc) == ("extract" in doc):
            raise MessageError("cancel needs exactly one of run_id and extract")
        return CancelRequest(_run_id(doc)) if "run_id" in doc else CancelRequest(extract=_extract(doc))
    raise MessageError(f"submit does not accept kind {kind!r} (run, rerun, reland or cancel)")


def parse_poll(body: bytes) -> PollMessage:
    doc = _document(body)
    kind = doc.pop("kind", None)
    if kind == "sweep":
        _only(doc)
        return SweepRequest()
    if kind == "poll":
        _only(doc, "run_id", "seq")
        seq = doc.get("seq", 0)
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise MessageError("seq must be a whole number >= 0")
        return PollRequest(_run_id(doc), seq)
    raise MessageError(f"poll does not accept kind {kind!r} (poll or sweep)")


def parse_transfer(body: bytes) -> TransferRequest:
    doc = _document(body)
    kind = doc.pop("kind", None)
    if kind != "transfer":
        raise MessageError(f"transfer does not accept kind {kind!r} (transfer)")
    _only(doc, "run_id", "files")
    files = doc.get("files")
    if not isinstance(files, list) or not 1 <= len(files) <= MAX_TRANSFER_FILES:
        raise MessageError(f"files must be a list of 1 to {MAX_TRANSFER_FILES} file names")
    for name in files:
        if not isinstance(name, str) or not _FILE.match(name) or name in (".", ".."):
            raise MessageError(f"files holds an invalid file name: {name!r}")
    return TransferRequest(_run_id(doc), tuple(files))


def encode(kind: str, **fields: Any) -> dict[str, Any]:
    """The document we publish for a message of this kind."""
    return {"v": VERSION, "kind": kind, **fields}


def poll_message(run_id: str, seq: int) -> dict[str, Any]:
    return encode("poll", run_id=run_id, seq=seq)


def transfer_message(run_id: str, files: list[str]) -> dict[str, Any]:
    return encode("transfer", run_id=run_id, files=files)


def rerun_message(run_id: str, attempt: int) -> dict[str, Any]:
    return encode("rerun", run_id=run_id, attempt=attempt)


def _document(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body or b"")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"message is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise MessageError("message must be a JSON object")
    version = doc.pop("v", VERSION)
    if version != VERSION:
        raise MessageError(f"unsupported message version {version!r} (this build reads v{VERSION})")
    return doc


def _only(doc: Mapping[str, Any], *allowed: str) -> None:
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise MessageError(f"unknown field(s): {', '.join(unknown)}")


def _match(doc: Mapping[str, Any], key: str, pattern: re.Pattern[str], what: str) -> str:
    value = doc.get(key)
    if value is None:
        raise MessageError(f"{key} is missing")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not pattern.match(value):
        raise MessageError(f"{key} must be {what}, got {value!r}")
    return value


def _extract(doc: Mapping[str, Any]) -> str:
    return _match(doc, "extract", _EXTRACT, "an extract name (letters, digits, space, _ . -; up to 100)")


def _run_id(doc: Mapping[str, Any]) -> str:
    return _match(doc, "run_id", _RUN_ID, "a run id")


def _mode(doc: Mapping[str, Any]) -> Mode:
    value = doc.get("mode")
    try:
        return Mode(str(value))
    except ValueError:
        raise MessageError(f"mode must be 'full' or 'incremental', got {value!r}") from None
