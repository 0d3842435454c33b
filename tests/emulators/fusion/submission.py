"""Validation of a job submission (POST jobRequests), as reference 1.2 documents its body.

The first problem found is named in the error; unknown fields are refused so that a client's typo
fails loudly here instead of being ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MODES = ("Full Data Extract", "Incremental Data Extract")
TIME_UNITS = ("MINUTE", "HOUR", "DAY", "WEEK", "MONTH")
FIELDS = {"serviceName", "jobDefinitionName", "description", "requestParameters", "runAtTimes"}
RUN_AT_FIELDS = {"fixedInterval", "startDate", "endDate", "startTime", "endTime"}
HHMM = re.compile(r"([01]\d|2[0-3])[0-5]\d")


class InvalidSubmission(ValueError):
    """The body breaks the documented contract; the message names the problem."""


@dataclass(frozen=True)
class Submission:
    extract: str  # submit.argument1
    echo: dict[str, Any]  # description, requestParameters (and runAtTimes) as sent


def parse_submission(content_type: str | None, body: bytes) -> Submission:
    if content_type is not None and content_type.split(";")[0].strip().lower() != "application/json":
        raise InvalidSubmission("Content-Type must be application/json")
    try:
        document = json.loads(body)
    except ValueError:
        raise InvalidSubmission("the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidSubmission("the body must be a JSON object")
    _check(not set(document) - FIELDS, f"unknown fields: {sorted(set(document) - FIELDS)}")
    _check(document.get("serviceName") == "boss", "serviceName must be 'boss'")
    _check(document.get("jobDefinitionName") == "DataExport", "jobDefinitionName must be 'DataExport'")
    _check(isinstance(document.get("description", ""), str), "description must be a string")
    parameters: Any = document.get("requestParameters")
    _check(isinstance(parameters, dict), "requestParameters must be an object")
    extract = parameters.get("submit.argument1")
    _check(isinstance(extract, str) and bool(extract.strip()), "submit.argument1 must name the extract")
    _check(parameters.get("submit.argument2") in MODES, f"submit.argument2 must be one of {list(MODES)}")
    if "runAtTimes" in document:
        _check_run_at_times(document["runAtTimes"])
    echo = {
        key: document[key] for key in ("description", "requestParameters", "runAtTimes") if key in document
    }
    echo.setdefault("description", "")
    return Submission(extract, echo)


def _check_run_at_times(window: Any) -> None:
    _check(isinstance(window, dict), "runAtTimes must be an object")
    _check(set(window) == RUN_AT_FIELDS, f"runAtTimes needs exactly {sorted(RUN_AT_FIELDS)}")
    interval = window["fixedInterval"]
    _check(
        isinstance(interval, dict) and set(interval) == {"interval", "timeUnit"},
        "runAtTimes.fixedInterval needs interval and timeUnit",
    )
    count = interval["interval"]
    _check(
        isinstance(count, int) and not isinstance(count, bool) and count >= 1, "interval must be 1 or more"
    )
    _check(interval["timeUnit"] in TIME_UNITS, f"timeUnit must be one of {list(TIME_UNITS)}")
    start, end = _date(window, "startDate"), _date(window, "endDate")
    _check(start <= end, "runAtTimes.endDate is before startDate")
    for key in ("startTime", "endTime"):
        value = window[key]
        _check(isinstance(value, str) and HHMM.fullmatch(value) is not None, f"runAtTimes.{key} must be HHMM")


def _date(window: dict[str, Any], key: str) -> datetime:
    try:
        return datetime.strptime(window[key], "%m/%d/%Y")
    except (TypeError, ValueError):
        raise InvalidSubmission(f"runAtTimes.{key} must be a date MM/DD/YYYY") from None


def _check(condition: bool, problem: str) -> None:
    if not condition:
        raise InvalidSubmission(problem)
