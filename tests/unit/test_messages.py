"""Messages are validated strictly at the boundary: a malformed one names its problem."""

import json
from collections.abc import Callable
from datetime import date

import pytest

from fusion_extract.chain import messages
from fusion_extract.chain.messages import (
    CancelRequest,
    PollRequest,
    RelandRequest,
    RerunRequest,
    RunRequest,
    SweepRequest,
    TransferRequest,
)
from fusion_extract.errors import MessageError
from fusion_extract.models import ExtractRequest, Mode


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
        (body(extract="Sales"), "mode is missing"),
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


def test_parse_submit_when_the_run_names_its_run_id_keeps_it():
    request = messages.parse_submit(body(extract="Sales", mode="full", run_id="20261129T010203Z-ab12"))
    assert request == RunRequest(ExtractRequest("Sales", Mode.FULL), "20261129T010203Z-ab12")
    with pytest.raises(MessageError, match="run_id must be"):
        messages.parse_submit(body(extract="Sales", mode="full", run_id="a~b"))


def test_parse_submit_when_rerun_or_reland_gives_their_requests():
    assert messages.parse_submit(
        body(kind="rerun", run_id="20261129T010203Z-ab12", attempt=2)
    ) == RerunRequest("20261129T010203Z-ab12", 2)
    assert messages.parse_submit(
        body(kind="reland", extract="Sales", job_id="44046", mode="full")
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


# --- strict types, bounded size and depth, short quotes ---


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (body(extract=5, mode="full"), "extract must be"),
        (body(extract="Sales", mode=1), "mode must be 'full' or 'incremental'"),
        (body(extract="Sales", mode=["full"]), "mode must be 'full' or 'incremental'"),
        (body(kind="reland", extract="Sales", job_id=44046, mode="full"), "job_id must be"),
        (body(kind="rerun", run_id=7), "run_id must be"),
        (body(kind=["run"], extract="Sales", mode="full"), "kind must be text"),
        (body(v=True, extract="Sales", mode="full"), "unsupported message version"),
        (body(v="1", extract="Sales", mode="full"), "unsupported message version"),
        (body(kind="rerun", run_id="r-1", attempt=2.0), "attempt must be"),
        (body(kind="poll", run_id="r-1", seq="3"), "seq must be"),
    ],
)
def test_parse_when_a_field_has_the_wrong_json_type_refuses_without_coercion(payload, problem):
    parse = messages.parse_poll if b'"poll"' in payload else messages.parse_submit

    with pytest.raises(MessageError, match=problem):
        parse(payload)


def test_parse_submit_bad_value_is_quoted_by_a_short_prefix_only():
    # Given an extract name of 5 MiB
    huge = "A" + "x" * (5 * 2**20)

    # When it is parsed (inside the size cap it would be refused anyway; here the cap is lifted)
    with pytest.raises(MessageError) as caught:
        messages.parse_submit(body(extract=huge, mode="full"), max_bytes=10 * 2**20)

    # Then the error quotes at most about 60 characters of it
    assert len(str(caught.value)) < 200
    assert "'Axxxx" in str(caught.value)


@pytest.mark.parametrize(
    "payload",
    [
        body(extract="Sales", mode="full", **{"x" * 5000: 1}),
        body(kind="transfer", run_id="r-1", files=["../" + "a" * 5000]),
        body(kind="d" * 5000),
    ],
)
def test_parse_errors_never_quote_long_values_whole(payload):
    parse = messages.parse_transfer if b'"transfer"' in payload else messages.parse_submit

    with pytest.raises(MessageError) as caught:
        parse(payload)

    assert len(str(caught.value)) < 300


@pytest.mark.parametrize(
    ("parse", "payload"),
    [
        (messages.parse_poll, b'{"kind": "poll", "run_id": "r-1", "seq": ' + b"9" * 5000 + b"}"),
        (messages.parse_submit, b'{"kind": "rerun", "run_id": "r-1", "attempt": -' + b"1" * 5000 + b"}"),
        (
            messages.parse_transfer,
            b'{"kind": "transfer", "run_id": "r", "files": ["a"], "x": ' + b"7" * 4301 + b"}",
        ),
    ],
)
def test_parse_a_number_of_thousands_of_digits_is_a_message_error_not_a_value_error(parse, payload):
    # Given a message holding an integer past Python's digit limit for int(str) (4300 digits)
    # When it is parsed, Then it is refused as a message, naming the problem
    with pytest.raises(MessageError, match=r"number of [0-9]+ digits"):
        parse(payload)


def test_parse_submit_body_over_64_kib_is_refused():
    payload = body(extract="Sales", mode="full", pad="x" * 70_000)

    with pytest.raises(MessageError, match="larger than 65536 bytes"):
        messages.parse_submit(payload)


@pytest.mark.parametrize("depth", [21, 100_000])
def test_parse_deeply_nested_json_is_a_message_error_not_a_recursion_error(depth):
    payload = b'{"extract": "Sales", "mode": "full", "x": ' + b"[" * depth + b"]" * depth + b"}"

    with pytest.raises(MessageError, match="nested deeper than 20"):
        messages.parse_submit(payload, max_bytes=1 << 20)


def test_parse_brackets_inside_strings_do_not_count_as_nesting():
    # Given text full of brackets and an escaped quote, at the top level
    payload = body(kind="rerun", run_id="r-1", note='\\"' + "[" * 50)

    # When it is parsed, Then the depth check passes and the field is judged on its own
    with pytest.raises(MessageError, match=r"unknown field\(s\): note"):
        messages.parse_submit(payload)


# --- a schedule's BODY as a JSON string holding the object ---


def test_parse_submit_body_as_a_json_string_of_the_object_is_read_as_the_object():
    # Given Resource Scheduler delivered the BODY as a quoted JSON string
    payload = json.dumps(json.dumps({"extract": "Sales", "mode": "full"})).encode()

    # When it is parsed, Then it is the run request inside
    message = messages.parse_submit(payload)
    assert isinstance(message, RunRequest) and message.request.extract == "Sales"


@pytest.mark.parametrize(
    "inner", [json.dumps(json.dumps({"extract": "Sales", "mode": "full"})), "not json", "[1]", '"x"']
)
def test_parse_submit_string_is_unwrapped_once_only(inner):
    with pytest.raises(MessageError, match="must be a JSON object"):
        messages.parse_submit(json.dumps(inner).encode())


# --- cancel ---


def test_parse_submit_cancel_by_run_id_or_extract():
    assert messages.parse_submit(body(kind="cancel", run_id="r-1")) == CancelRequest(
        run_id="r-1", extract=None
    )
    assert messages.parse_submit(body(kind="cancel", extract="Sales")) == CancelRequest(
        run_id=None, extract="Sales"
    )


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (body(kind="cancel"), "exactly one of run_id or extract"),
        (body(kind="cancel", run_id="r-1", extract="Sales"), "exactly one of run_id or extract"),
        (body(kind="cancel", run_id=None), "exactly one of run_id or extract"),
        (body(kind="cancel", run_id="../x"), "run_id must be"),
        (body(kind="cancel", extract="Sales", mode="full"), "unknown field(s): mode"),
    ],
)
def test_parse_submit_cancel_malformed_names_the_problem(payload, problem):
    with pytest.raises(MessageError) as caught:
        messages.parse_submit(payload)

    assert problem in str(caught.value)


@pytest.mark.parametrize(("files", "length"), [(13_600, 250), (25_100, 12)])
def test_transfer_batches_fit_a_message_whatever_the_number_and_length_of_the_names(files, length):
    # Given a listing of many files, with long names or short ones
    names = [f"{n:06d}".ljust(length, "x") for n in range(files)]

    # When they are dealt out into at most 50 transfer messages
    batches, left = messages.transfer_batches("20261206T010203Z-run", names, 50)

    # Then every message reads back within the limits, and every name is in one message or left over
    bodies = [json.dumps(batch).encode() for batch in batches]
    assert len(batches) == 50
    assert all(len(body) <= messages.PUBLISH_BYTES for body in bodies)
    parsed = [messages.parse_transfer(body).files for body in bodies]
    assert sorted([name for batch in parsed for name in batch] + left) == names


# --- one declaration: what the parsers accept is what docs/messages.md lists ---

_PARSERS: dict[str, Callable[[bytes], object]] = {
    "submit": messages.parse_submit, "poll": messages.parse_poll, "transfer": messages.parse_transfer,
    "any function": messages.parse_check,
}  # fmt: skip
_VALID = {  # a valid value of each declared field
    "extract": "Sales", "mode": "full", "runAtTimes": None, "run_id": "r-1", "attempt": 2, "job_id": "44046",
    "seq": 3, "files": ["a_1.zip"], "unit": 0, "source": "poll",
}  # fmt: skip
_INCOMING = [kind for kind in messages.KINDS if kind.to in _PARSERS]


def _complete(kind: messages.Kind) -> dict[str, object]:
    doc: dict[str, object] = {"kind": kind.kind}
    doc.update({f.name: _VALID[f.name] for f in kind.fields if f.required})
    if kind.kind == "cancel":
        doc["run_id"] = "r-1"
    return doc


@pytest.mark.parametrize("kind", _INCOMING, ids=lambda k: k.kind)
def test_each_declared_kind_parses_with_its_required_fields_and_every_optional_one(kind):
    # Given a message of the kind with every declared field (cancel: one of its two) set to a valid value
    doc = _complete(kind)
    doc.update({f.name: _VALID[f.name] for f in kind.fields if not f.required and f.name != "runAtTimes"})
    if kind.kind == "cancel":
        del doc["extract"]

    # When its function parses it, Then it is accepted
    assert _PARSERS[kind.to](json.dumps(doc).encode()) is not None


@pytest.mark.parametrize("kind", _INCOMING, ids=lambda k: k.kind)
def test_each_declared_kind_refuses_a_field_it_does_not_declare(kind):
    # Given a complete message of the kind with one field more
    doc = {**_complete(kind), "colour": "red"}

    # When parsed, Then the field is refused by name
    with pytest.raises(MessageError, match=r"unknown field\(s\): colour"):
        _PARSERS[kind.to](json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("kind", "field"),
    [(k, f.name) for k in _INCOMING for f in k.fields if f.required],
    ids=lambda value: value if isinstance(value, str) else value.kind,
)
def test_each_declared_kind_refuses_a_message_without_a_required_field(kind, field):
    # Given a complete message of the kind without one of its required fields
    doc = _complete(kind)
    del doc[field]

    # When parsed, Then the missing field is named
    with pytest.raises(MessageError, match=f"{field} is missing"):
        _PARSERS[kind.to](json.dumps(doc).encode())
