"""JSON log lines: they carry the bound context (and an error carries it to the line that reports it), and
no registered secret or bearer credential survives in any line."""

import io
import json
import logging
import re

import pytest

from fusion_extract import logging as jsonlog
from fusion_extract.chain.transfer.landing import ProgressLog


@pytest.fixture
def lines():
    """A logger writing through the product's formatter into a buffer; the lines as JSON documents."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(jsonlog.JsonFormatter())
    logger = logging.getLogger("tests.logging")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_log_line_carries_every_field_bound_around_it(lines):
    # Given a run's context bound inside a function's
    logger, read = lines
    with jsonlog.bind(function="poll", call_id="c1"), jsonlog.bind(run_id="r1", extract="Sales", job_id=None):
        # When a line is logged with its own fields
        logger.info("job still running", extra={"status": "RUNNING"})
    logger.info("outside")

    # Then the line has the message, its fields and the context (None values left out); later lines do not
    inside, outside = read()
    assert {k: inside[k] for k in ("message", "function", "call_id", "run_id", "extract", "status")} == {
        "message": "job still running",
        "function": "poll",
        "call_id": "c1",
        "run_id": "r1",
        "extract": "Sales",
        "status": "RUNNING",
    }
    assert "job_id" not in inside and "run_id" not in outside


def test_error_leaving_a_bound_block_carries_its_context_to_the_line_that_reports_it():
    # Given an error raised inside a run's context
    with pytest.raises(ValueError) as caught, jsonlog.bind(function="submit"), jsonlog.bind(run_id="r1"):
        raise ValueError("boom")

    # Then the context it was raised in travels with it
    assert jsonlog.context_of(caught.value) == {"function": "submit", "run_id": "r1"}
    assert jsonlog.context_of(ValueError("elsewhere")) == {}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Authorization: Bearer eyJhbGciOi.J9.sig", "Authorization: Bearer ***"),
        ("auth=Basic Zm9vOmJhcg==", "auth=Basic ***"),
        ('{"access_token": "tok-123-xyz"}', '{"access_token": "***"}'),
        ("the secret is s3cr3t-value in the middle", "the secret is *** in the middle"),
    ],
)
def test_log_line_masks_secrets_and_bearer_credentials(lines, text, shown):
    # Given a secret value registered (as the Vault adapter does on reading it)
    logger, read = lines
    jsonlog.register_secret("s3cr3t-value")

    # When a line carries a credential, in its message or in a field
    logger.info(text, extra={"detail": text})

    # Then neither place shows it
    [line] = read()
    assert line["message"] == shown and line["detail"] == shown


def test_log_line_starts_with_a_utc_timestamp_and_the_level(lines):
    # Given the product's formatter, When a line is logged
    logger, read = lines
    logger.warning("something")

    # Then its first fields are an ISO 8601 UTC timestamp with milliseconds, then the level
    (line,) = read()
    assert list(line)[:2] == ["timestamp", "level"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])
    assert line["level"] == "WARNING"


def test_transfer_progress_is_logged_at_intervals_with_bytes_percent_and_rate(caplog):
    # Given a download of 4 chunks of 1 MB, 10 s apart on a fake clock, logged every 15 s
    ticks = iter([0.0, 10.0, 20.0, 30.0, 40.0])
    chunks = [b"x" * 1_000_000] * 4

    # When it is streamed through the progress wrapper
    with caplog.at_level(logging.INFO, logger="fusion_extract.chain.transfer.landing"):
        out = list(ProgressLog(iter(chunks), "a_1.zip", 4_000_000, every=15, monotonic=lambda: next(ticks)))

    # Then the bytes pass untouched, and progress was logged twice (at 20 s and at 40 s)
    assert out == chunks
    logged = [r for r in caplog.records if r.getMessage() == "transfer progress"]
    assert [(r.bytes, r.percent, r.mb_per_s) for r in logged] == [
        (2_000_000, 50.0, 0.1),
        (4_000_000, 100.0, 0.1),
    ]
