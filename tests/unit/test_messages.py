"""Messages are validated strictly at the boundary: a malformed one names its problem."""

import json
from datetime import date

import pytest

from fusion_extract.chain import messages
from fusion_extract.chain.messages import (
    PollRequest,
    RelandRequest,
    RerunRequest,
    RunRequest,
    SweepRequest,
    TransferRequest,
)
from fusion_extract.errors import MessageError
from fusion_extract.models import Mode


def body(**doc):
    return json.dumps(doc).encode()


def test_parse_submit_when_scheduled_payload_gives_run_request():
    message = messages.parse_submit(body(extract="Sales Orders", mode="incremental"))

    assert isinstance(message, RunRequest)
    assert message.request.extract == "Sales Orders"
    assert message.request.mode is Mode.INCREMENTAL
    assert message.request.run_at_times is None


def test_parse_submit_when_run_at_times_in_fusion_shape_reads_dates_and_times():
    run_at = {
        "fixedInterval": {"interval": 1, "timeUnit": "hour"},
        "startDate": "12/16/2025",
        "endDate": "2025-12-17",
        "startTime": "1930",
        "endTime": "2230",
    }

    message = messages.parse_submit(body(extract="Sales", mode="full", runAtTimes=run_at))

    assert isinstance(message, RunRequest)
    window = message.request.run_at_times
    assert window is not None
    assert (window.interval, window.time_unit) == (1, "HOUR")
    assert (window.start_date, window.end_date) == (date(2025, 12, 16), date(2025, 12, 17))


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "must be a JSON object"),
        (body(extract="Sales"), "mode must be 'full' or 'incremental'"),
        (body(extract="../etc", mode="full"), "extract must be an extract name"),
        (body(extract="Sales", mode="full", colour="red"), "unknown field(s): colour"),
        (body(v=2, extract="Sales", mode="full"), "unsupported message version 2"),
        (body(kind="delete", extract="Sales"), "does not accept kind 'delete'"),
        (body(kind="reland", extract="Sales", mode="full", job_id="12a"), "job_id must be a numeric"),
        (
            body(extract="S", mode="full", runAtTimes={"fixedInterval": {"interval": 0, "timeUnit": "HOUR"}}),
            "runAtTimes is missing",
        ),
    ],
)
def test_parse_submit_when_malformed_names_the_problem(payload, problem):
    with pytest.raises(MessageError) as caught:
        messages.parse_submit(payload)

    assert problem in str(caught.value)


def test_parse_submit_when_rerun_or_reland_gives_their_requests():
    assert messages.parse_submit(
        body(kind="rerun", run_id="20261129T010203Z-ab12", attempt=2)
    ) == RerunRequest("20261129T010203Z-ab12", 2)
    assert messages.parse_submit(
        body(kind="reland", extract="Sales", job_id=44046, mode="full")
    ) == RelandRequest("Sales", "44046", Mode.FULL)


def test_parse_poll_when_sweep_or_continuation_gives_their_requests():
    assert messages.parse_poll(body(kind="sweep")) == SweepRequest()
    assert messages.parse_poll(json.dumps(messages.poll_message("r-1", 3)).encode()) == PollRequest("r-1", 3)


def test_parse_poll_when_seq_negative_refuses():
    with pytest.raises(MessageError, match="seq must be"):
        messages.parse_poll(body(kind="poll", run_id="r-1", seq=-1))


def test_parse_transfer_when_file_name_has_a_path_refuses():
    with pytest.raises(MessageError, match="invalid file name"):
        messages.parse_transfer(body(kind="transfer", run_id="r-1", files=["../a.zip"]))


def test_parse_transfer_round_trips_what_the_chain_publishes():
    published = messages.transfer_message("r-1", ["a_1.zip", "a_2.zip"])

    assert messages.parse_transfer(json.dumps(published).encode()) == TransferRequest(
        "r-1", ("a_1.zip", "a_2.zip")
    )


@pytest.mark.parametrize("name", ["..", ".", "../a.zip", "a/../b.zip", "..\\\\a.zip"])
def test_parse_transfer_when_a_file_name_climbs_or_is_a_dot_refuses(name):
    # Given a transfer message naming a file that is not one plain name
    payload = json.dumps({"kind": "transfer", "run_id": "r1", "files": ["ok_1.zip", name]}).encode()

    # When it is parsed, Then it is refused before anything is looked up
    with pytest.raises(MessageError, match="files holds an invalid file name"):
        messages.parse_transfer(payload)
