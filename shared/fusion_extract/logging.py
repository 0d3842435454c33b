"""JSON logs that carry the run's identity, and never a secret.

Importing fdk sets the root logger to DEBUG with a plain-text handler; `configure` replaces the
formatter of the existing handlers (or adds one) and sets the level from config, so SDK debug
noise stays out. Context fields (run_id, job_id, extract, call_id, function) are bound per
invocation (`invocation`, `about`, `bind`) and appear on every line, after `timestamp` (UTC), `level`,
`logger` and `message`;
`function` is the function (submit, poll, transfer) and `step` the kind of message it serves (run, rerun,
reland, cancel, poll, sweep, transfer). Known secret values are masked wherever they appear.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039
_subject: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("log_subject", default=None)
_secrets: set[str] = set()
# A credential after its keyword; quotes may be escaped (a message inside the JSON line is itself quoted).
_BEARER = re.compile(r"(?i)(bearer\s+|basic\s+|access_token\\?\"?\s*[:=]\s*\\?\"?)[A-Za-z0-9._~+/=-]+")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

MASK = "***"
_CARRIED = "_log_context"


def register_secret(value: str | None) -> None:
    """Mask this value in every later log line (values shorter than 4 characters are not worth masking)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def mask(text: str) -> str:
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: a prefix must not unmask a tail
        text = text.replace(secret, MASK)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context.get(),
        }
        for name, value in (_subject.get() or {}).items():
            entry.setdefault(name, value)  # what a block bound is the more precise
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return mask(json.dumps(entry, default=str, sort_keys=False))


def _timestamp(created: float) -> str:
    """ISO 8601 UTC with milliseconds: `2026-11-29T02:00:00.123Z`."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def configure(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
    root.setLevel(level)
    for noisy in ("urllib3", "oci", "fdk"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add fields to every log line inside the block (None values are left out).

    An exception leaving the block carries the innermost context with it (`context_of`), so the line
    that finally reports it names the run it happened to.
    """
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    except BaseException as exc:
        if _CARRIED not in vars(exc):
            setattr(exc, _CARRIED, merged)
        raise
    finally:
        _context.reset(token)


@contextmanager
def invocation(**fields: Any) -> Iterator[None]:
    """One function invocation: `fields` on each of its lines, and what it is about (`about`) on each line
    after that is known, to the last one, which reports how it ended."""
    token = _subject.set({})
    try:
        with bind(**fields):
            yield
    finally:
        _subject.reset(token)


def about(**fields: Any) -> None:
    """Name what the invocation at work is about (its run, extract, job...): every later line of it
    carries these fields, also after the block that named them ended. Outside an invocation: nothing."""
    subject = _subject.get()
    if subject is not None:
        subject.update({key: value for key, value in fields.items() if value is not None})


def bound() -> Mapping[str, Any]:
    """The fields bound here (run_id, call_id...): what a log line written now would carry."""
    return _context.get()


def context_of(error: BaseException) -> Mapping[str, Any]:
    """The log context that was bound where the error was raised."""
    carried: Mapping[str, Any] = vars(error).get(_CARRIED, {})
    return carried
