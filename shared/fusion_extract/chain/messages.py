"""The chain's messages: small versioned JSON documents, validated strictly at the function boundary.

Every way in has one type here, and every kind's fields are declared once, as data (`KINDS`): the
parsers refuse what the declaration does not list or a required field it lacks, and docs/messages.md is
generated from the same declaration. A malformed document raises MessageError naming the problem, before
any side effect. Unknown fields are refused (a typo must not silently change behaviour); every field has
exactly its documented JSON type (no coercion: a number is not a job id); a body is at most 64 KiB and
nested at most 20 deep (checked before parsing); errors quote at most a short prefix of a bad value.
A body that is a JSON string holding a JSON object is read as that object, once (how Resource Scheduler
encodes a schedule's BODY is not documented).

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
MAX_UNITS = 64  # units of members one archive is unpacked in (TRANSFER_FANOUT at most)
MAX_BYTES = 64 * 1024  # a message body
PUBLISH_BYTES = 60 * 1024  # the most a message we publish holds: under Notifications' 64 KB, with room
MAX_DEPTH = 20  # nesting of objects and arrays
MAX_DIGITS = 100  # digits of an integer (int() refuses past 4300; no field needs more than 20)
SHOWN = 60  # characters of a bad value quoted in an error
_EXTRACT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,159}$")
_JOB_ID = re.compile(r"^[0-9]{1,20}$")
_FILE = re.compile(r"^[A-Za-z0-9._-]{1,255}$")


@dataclass(frozen=True)
class Field:
    name: str
    form: str  # its JSON type and values, as docs/messages.md shows them
    required: bool
    meaning: str


@dataclass(frozen=True)
class Kind:
    """One kind of message: who reads it, its fields, who sends it. `kind` "run" is the default of submit
    (a schedule's BODY names no kind)."""

    kind: str
    to: str
    fields: tuple[Field, ...]
    sent_by: str
    meaning: str

    def check(self, doc: Mapping[str, Any]) -> None:
        """MessageError for a field this kind does not declare, or a required one that is absent."""
        _only(doc, *(field.name for field in self.fields))
        for field in self.fields:
            if field.required and doc.get(field.name) is None:
                raise MessageError(f"{field.name} is missing")


_RUN = Field("run_id", "text: a run id", True, "the run")
_EXTRACT_NAME = Field("extract", "text: letters, digits, space, `_ . -`; up to 100", True, "the extract")
_MODE = Field("mode", '`"full"` or `"incremental"`', True, "the extract's mode")
KINDS: tuple[Kind, ...] = (
    Kind(
        "run", "submit",
        (
            _EXTRACT_NAME, _MODE,
            Field("runAtTimes", "object, as Fusion takes it", False, "Fusion's `runAtTimes` window"),
            Field("run_id", "text: a run id", False, "the new run's id, chosen by the caller (the CLI); "
                  "refused if a run has it"),
        ),
        "a schedule's BODY; `fn invoke`; the CLI's `submit`", "start a run (no `kind`: this is the default)",
    ),
    Kind(
        "rerun", "submit",
        (_RUN, Field("attempt", "whole number >= 1", False, "the attempt the chain asks for, so a late "
                     "duplicate does nothing; absent: an operator's rerun of a FAILED or TIMED_OUT run, a "
                     "new run linked by `rerun_of`")),
        "poll (job failed) and the sweep, with `attempt`; an operator without",
        "submit the run's next job (the chain); a new run of a failed one (an operator)",
    ),
    Kind(
        "reland", "submit",
        (_EXTRACT_NAME, Field("job_id", "text: digits, up to 20", True, "the succeeded Fusion job"), _MODE),
        "an operator (`reland`)", "land a succeeded job again, no new job (refused unless Fusion reports "
        "it succeeded, and ran that extract in that mode)",
    ),
    Kind(
        "cancel", "submit",
        (Field("run_id", "text: a run id", False, "the run to cancel"),
         Field("extract", "text: an extract name", False, "or: the extract whose active run to cancel")),
        "an operator (`cancel`)", "end a run CANCELLED (exactly one of `run_id`, `extract`)",
    ),
    Kind(
        "poll", "poll",
        (_RUN, Field("seq", "whole number >= 0", False, "the step's number; continuations count up")),
        "submit; poll itself (continuations); the sweep", "one bounded poll step of a run",
    ),
    Kind("sweep", "poll", (), "the sweep schedule (every 5 minutes)", "re-drive every run whose next step "
         "is overdue"),
    Kind(
        "transfer", "transfer",
        (_RUN, Field("files", f"list of 1 to {MAX_TRANSFER_FILES} file names", True, "output files to "
                     "land, one after another"),
         Field("unit", f"whole number 0 to {MAX_UNITS - 1}", False, "one unit of members of the one "
               "archive in `files`")),
        "poll (fan-out); transfer (batches, units, continuations); the sweep", "land files, or one unit",
    ),
    Kind("preflight", "any function", (), "`fusion-extract doctor --cloud`", "exercise each grant the "
         "function needs; touches no run"),
    Kind("probe", "any function", (Field("source", "text: a function's name", True, "the function that "
         "sent it"),), "a preflight (to each topic it feeds)", "nothing: answered `ignored`"),
    Kind(
        "alert", "alerts topic",
        (Field("event", "text: landed, failed, ... (docs/operating.md)", True, "what happened"),
         Field("run_id", "text or null", False, "the run"), Field("extract", "text", False, "the extract"),
         Field("mode", "text", False, "the run's mode"), Field("job_id", "text or null", False, "its job"),
         Field("reason", "text or null", False, "why, in words"),
         Field("reland", "true", False, "present for a re-landing run")),
        "any step (outgoing only; never parsed)", "tell people; the event may add fields of its own "
        "(`landed`: folder and totals)",
    ),
)  # fmt: skip
KIND = {kind.kind: kind for kind in KINDS}


@dataclass(frozen=True)
class RunRequest:
    request: ExtractRequest
    run_id: str | None = None  # chosen by the caller; else the chain makes one


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
class CancelRequest:
    """Cancel a run: by its id, or the extract's current run (exactly one is set)."""

    run_id: str | None
    extract: str | None


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
    unit: int | None = None  # one unit of members of the one archive in `files`


@dataclass(frozen=True)
class PreflightRequest:
    pass


@dataclass(frozen=True)
class Probe:
    """A preflight's publish: the function that sent it. Ignored by whoever receives it, so a probe on
    the poll or transfer topic starts no chain."""

    source: str


SubmitMessage = RunRequest | RerunRequest | RelandRequest | CancelRequest
PollMessage = PollRequest | SweepRequest
CheckMessage = PreflightRequest | Probe  # every function's, beside its own
_SOURCE = re.compile(r"^[a-z]{1,20}$")


def parse_submit(body: bytes, *, max_bytes: int = MAX_BYTES) -> SubmitMessage:
    """Every message the submit function accepts: run, rerun, reland, cancel."""
    doc = _document(body, max_bytes)
    kind = _kind(doc, "run")
    if kind == "cancel":
        KIND["cancel"].check(doc)
        if sum(doc.get(key) is not None for key in ("run_id", "extract")) != 1:
            raise MessageError("cancel needs exactly one of run_id or extract")
        return CancelRequest(
            _run_id(doc) if "run_id" in doc else None, _extract(doc) if "extract" in doc else None
        )
    if kind == "run":
        KIND["run"].check(doc)
        extract = _extract(doc)
        run_at = RunAtTimes.from_fusion(doc["runAtTimes"]) if "runAtTimes" in doc else None
        return RunRequest(
            ExtractRequest(extract, _mode(doc), run_at), _run_id(doc) if "run_id" in doc else None
        )
    if kind == "rerun":
        KIND["rerun"].check(doc)
        attempt = doc.get("attempt")
        if attempt is not None and (not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1):
            raise MessageError("attempt must be a whole number >= 1")
        return RerunRequest(_run_id(doc), attempt)
    if kind == "reland":
        KIND["reland"].check(doc)
        return RelandRequest(
            _extract(doc), _match(doc, "job_id", _JOB_ID, "a numeric job request id"), _mode(doc)
        )
    raise MessageError(f"submit does not accept kind {_shown(kind)} (run, rerun, reland or cancel)")


def parse_poll(body: bytes) -> PollMessage:
    doc = _document(body)
    kind = _kind(doc, None)
    if kind == "sweep":
        KIND["sweep"].check(doc)
        return SweepRequest()
    if kind == "poll":
        KIND["poll"].check(doc)
        seq = doc.get("seq", 0)
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise MessageError("seq must be a whole number >= 0")
        return PollRequest(_run_id(doc), seq)
    raise MessageError(f"poll does not accept kind {_shown(kind)} (poll or sweep)")


def parse_transfer(body: bytes) -> TransferRequest:
    doc = _document(body)
    kind = _kind(doc, None)
    if kind != "transfer":
        raise MessageError(f"transfer does not accept kind {_shown(kind)} (transfer)")
    KIND["transfer"].check(doc)
    files = doc.get("files")
    if not isinstance(files, list) or not 1 <= len(files) <= MAX_TRANSFER_FILES:
        raise MessageError(f"files must be a list of 1 to {MAX_TRANSFER_FILES} file names")
    for name in files:
        if not isinstance(name, str) or not _FILE.match(name) or name in (".", ".."):
            raise MessageError(f"files holds an invalid file name: {_shown(name)}")
    unit = doc.get("unit")
    if unit is not None:
        if not isinstance(unit, int) or isinstance(unit, bool) or not 0 <= unit < MAX_UNITS:
            raise MessageError(f"unit must be a whole number from 0 to {MAX_UNITS - 1}")
        if len(files) != 1:
            raise MessageError("a unit message names exactly one file")
    return TransferRequest(_run_id(doc), tuple(files), unit)


def parse_check(body: bytes) -> CheckMessage | None:
    """A preflight or a probe, which every function accepts before its own kinds; None for any other
    kind (the function's own parser reads it). A malformed body raises here as it would there."""
    doc = _document(body)
    kind = doc.pop("kind", None)
    if kind == "preflight":
        KIND["preflight"].check(doc)
        return PreflightRequest()
    if kind == "probe":
        KIND["probe"].check(doc)
        return Probe(_match(doc, "source", _SOURCE, "the name of the function that sent it"))
    return None


def probe_message(source: str) -> dict[str, Any]:
    return encode("probe", source=source)


def encode(kind: str, **fields: Any) -> dict[str, Any]:
    """The document we publish for a message of this kind."""
    return {"v": VERSION, "kind": kind, **fields}


def poll_message(run_id: str, seq: int) -> dict[str, Any]:
    return encode("poll", run_id=run_id, seq=seq)


def unit_message(run_id: str, file: str, unit: int) -> dict[str, Any]:
    return encode("transfer", run_id=run_id, files=[file], unit=unit)


def transfer_message(run_id: str, files: list[str]) -> dict[str, Any]:
    return encode("transfer", run_id=run_id, files=files)


def transfer_batches(run_id: str, names: list[str], most: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Transfer messages for `names`, at most `most` of them, each within what a message may hold
    (MAX_TRANSFER_FILES names, PUBLISH_BYTES as JSON) whatever the number and length of the names; and the
    names that did not fit, left for a later hand-out. Names are dealt out in turn, so each message
    starts with an early file of the plan."""
    count = min(len(names), most)
    batches, left = [], []
    for index in range(count):
        group = names[index::count]
        room = PUBLISH_BYTES - len(json.dumps(transfer_message(run_id, [])))
        taken = 0
        for name in group[:MAX_TRANSFER_FILES]:
            room -= len(json.dumps(name)) + 2  # the name, quoted, and the ", " before it
            if room < 0:
                break
            taken += 1
        batches.append(transfer_message(run_id, group[:taken]))
        left += group[taken:]
    return batches, left


def rerun_message(run_id: str, attempt: int) -> dict[str, Any]:
    return encode("rerun", run_id=run_id, attempt=attempt)


def _document(body: bytes, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    doc = _json(body or b"", max_bytes)
    if isinstance(doc, str):  # a schedule's BODY delivered as a JSON string: its content, once
        doc = _json(doc.encode(), max_bytes, "message must be a JSON object (a string not holding one)")
    if not isinstance(doc, dict):
        raise MessageError("message must be a JSON object")
    version = doc.pop("v", VERSION)
    if type(version) is not int or version != VERSION:
        raise MessageError(f"unsupported message version {_shown(version)} (this build reads v{VERSION})")
    return doc


def _json(body: bytes, max_bytes: int, not_json: str = "message is not JSON") -> Any:
    if len(body) > max_bytes:
        raise MessageError(f"message is larger than {max_bytes} bytes ({len(body)})")
    _check_depth(body)
    try:
        return json.loads(body, parse_int=_whole_number)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"{not_json}: {str(exc)[: SHOWN * 2]}") from exc


def _whole_number(text: str) -> int:
    """An integer of the message; one of thousands of digits is refused here, before int() would raise
    ValueError past Python's digit limit (no field of a message needs more than MAX_DIGITS)."""
    digits = len(text.lstrip("-"))
    if digits > MAX_DIGITS:
        raise MessageError(f"message holds a number of {digits} digits (at most {MAX_DIGITS})")
    return int(text)


def _check_depth(body: bytes) -> None:
    """MessageError when objects and arrays nest deeper than MAX_DEPTH; brackets inside strings do not
    count. Checked before parsing, so deep nesting never reaches the parser's recursion."""
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                raise MessageError(f"message is nested deeper than {MAX_DEPTH} levels")
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1


def _kind(doc: dict[str, Any], default: str | None) -> str | None:
    kind = doc.pop("kind", default)
    if kind is not None and not isinstance(kind, str):
        raise MessageError("kind must be text")
    return kind


def _shown(value: Any) -> str:
    """A bad value as an error quotes it: a short prefix of text, else its JSON type."""
    if isinstance(value, str):
        return repr(value[:SHOWN]) + ("..." if len(value) > SHOWN else "")
    if value is None or isinstance(value, bool | int | float):
        return repr(value)[:SHOWN]
    return f"a JSON {'object' if isinstance(value, dict) else 'array'}"


def _only(doc: Mapping[str, Any], *allowed: str) -> None:
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        shown = ", ".join(name[:SHOWN] for name in unknown[:5])
        raise MessageError(f"unknown field(s): {shown}" + (" ..." if len(unknown) > 5 else ""))


def _match(doc: Mapping[str, Any], key: str, pattern: re.Pattern[str], what: str) -> str:
    value = doc.get(key)
    if value is None:
        raise MessageError(f"{key} is missing")
    if not isinstance(value, str) or not pattern.match(value):
        raise MessageError(f"{key} must be {what} (text), got {_shown(value)}")
    return value


def _extract(doc: Mapping[str, Any]) -> str:
    return _match(doc, "extract", _EXTRACT, "an extract name (letters, digits, space, _ . -; up to 100)")


def _run_id(doc: Mapping[str, Any]) -> str:
    return _match(doc, "run_id", _RUN_ID, "a run id")


def _mode(doc: Mapping[str, Any]) -> Mode:
    value = doc.get("mode")
    if isinstance(value, str) and value in (Mode.FULL.value, Mode.INCREMENTAL.value):
        return Mode(value)
    raise MessageError(f"mode must be 'full' or 'incremental', got {_shown(value)}")
