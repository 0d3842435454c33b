"""Hostile input from every side, through the whole chain: archives, links, Fusion's JSON, our own
messages and ledger documents. Each is refused for the right reason, and nothing of it becomes visible."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from fusion_extract.chain.ledger.records import RunState
from fusion_extract.errors import MessageError
from tests.emulators.fusion import BadLink, ExtractScenario, Hostile, Redirect
from tests.faults.bus import Bus, drive, invoke, start
from tests.faults.conftest import LANDED, Expect, assert_end_state
from tests.steps.conftest import EXTRACT, MakeSteps, Steps
from tests.unit.hostile_zips import LIMITS, OK, hostile_zips, zip_bytes

QUICK = {
    "STEP_OVERDUE_SECONDS": "60",
    "TRANSFER_BUDGET_SECONDS": "20",
    "RERUN_BACKOFF_SECONDS": "0",
    "FILE_RETRY_SECONDS": "0",
}
FAILED = Expect(RunState.FAILED)


def quick(make_steps: MakeSteps, scenario: ExtractScenario, **config: str) -> Steps:
    steps = make_steps(**{**QUICK, **config})
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, scenario)
    return steps


# -- archives Fusion generates with a hostile entry ------------------------------------------------------


@pytest.mark.parametrize("kind", list(Hostile))
def test_hostile_entry_in_a_generated_archive_fails_the_run_and_lands_none_of_it(
    make_steps: MakeSteps, kind: Hostile
) -> None:
    # Given a job whose first ZIP carries a hostile entry
    steps = quick(make_steps, ExtractScenario(chunks=2, hostile=kind, bomb_bytes=8 * 2**20))

    # When the chain runs, Then the run failed at once (a ZIP rule) and nothing of that archive is visible
    assert_end_state(steps, drive(steps, start(steps)), FAILED)


# -- crafted archives served as the job's only output ------------------------------------------------------


def _cp437_name() -> bytes:
    """A name in bytes that are not UTF-8, the UTF-8 flag clear: the ZIP standard reads it as CP437."""
    return zip_bytes([OK, ("XXXX.csv", b"x\n")]).replace(b"XXXX.csv", b"\x80\xe9\xff_.csv")


def _invalid_utf8_name() -> bytes:
    """The same bytes with the UTF-8 flag (bit 11) set in both headers: a name that cannot be decoded."""
    data = bytearray(_cp437_name())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (found := data.find(signature, start)) >= 0:
            flags = struct.unpack_from("<H", data, found + offset)[0]
            struct.pack_into("<H", data, found + offset, flags | 0x0800)
            start = found + 4
    return bytes(data)


def _over_long_name() -> bytes:
    return zip_bytes([OK, ("d/" * 600 + "x.csv", b"x\n")])


def _corrupt_crc() -> bytes:
    data = bytearray(zip_bytes([OK, ("b.csv", b"ID\n" + b"2\n" * 500)]))
    for signature, offset in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        start = 0
        while (found := data.find(signature, start)) >= 0:
            crc = struct.unpack_from("<I", data, found + offset)[0]
            struct.pack_into("<I", data, found + offset, crc ^ 0xFFFF)
            start = found + 4
    return bytes(data)


def _truncated() -> bytes:
    return zip_bytes([OK, ("b.csv", b"ID\n" + b"2\n" * 500)])[:-40]


CRAFTED = {
    **{
        h.name.replace(" ", "_"): (h.data, h.limits)
        for h in hostile_zips()
        if "central directory too" not in h.name
    },
    "invalid_utf8_name": (_invalid_utf8_name(), LIMITS),
    "over_long_name": (_over_long_name(), LIMITS),
    "corrupt_crc": (_corrupt_crc(), LIMITS),
    "truncated_archive": (_truncated(), LIMITS),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_hostile_archive_served_by_fusion_fails_the_run_and_lands_none_of_it(
    make_steps: MakeSteps, tmp_path: Path, case: str
) -> None:
    # Given a job whose only archive is crafted to break a ZIP rule
    data, limits = CRAFTED[case]
    archive = tmp_path / "crafted.zip"
    archive.write_bytes(data)
    steps = quick(
        make_steps,
        ExtractScenario(prebuilt_zip=str(archive)),
        ZIP_MAX_ENTRIES=str(limits.max_entries),
        ZIP_MAX_BYTES=str(limits.max_total_bytes),
        ZIP_MAX_RATIO=str(limits.max_ratio),
    )

    # When the chain runs, Then the run failed and nothing of the archive is visible
    assert_end_state(steps, drive(steps, start(steps)), FAILED)


def test_hostile_archive_name_in_cp437_lands_as_the_zip_standard_reads_it(
    make_steps: MakeSteps, tmp_path: Path
) -> None:
    # Given a member whose name is not UTF-8 and whose UTF-8 flag is clear (CP437, the standard says)
    archive = tmp_path / "cp437.zip"
    archive.write_bytes(_cp437_name())
    steps = quick(make_steps, ExtractScenario(prebuilt_zip=str(archive)))

    # When the chain runs, Then it landed, under the name zipfile reads too, whole
    assert_end_state(steps, drive(steps, start(steps)), LANDED)


# -- links, Location and redirects ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "expect"),
    [
        pytest.param(ExtractScenario(bad_link=BadLink.FOREIGN_HOST), LANDED, id="link_other_host_rebuilt"),
        pytest.param(ExtractScenario(bad_link=BadLink.PLAIN_HTTP), LANDED, id="link_over_http_rebuilt"),
        pytest.param(ExtractScenario(bad_link=BadLink.OUTSIDE_API), FAILED, id="link_outside_api"),
        pytest.param(
            ExtractScenario(bad_link=BadLink.FOREIGN_OUTSIDE_API), FAILED, id="link_other_host_outside"
        ),
        pytest.param(ExtractScenario(location_foreign_host=True), LANDED, id="location_other_host"),
        pytest.param(ExtractScenario(redirect_downloads=Redirect.SAME_HOST), LANDED, id="redirect_same_host"),
        pytest.param(
            ExtractScenario(redirect_downloads=Redirect.OTHER_HOST), FAILED, id="redirect_elsewhere"
        ),
        pytest.param(ExtractScenario(redirect_downloads=Redirect.LOOP), FAILED, id="redirect_loop"),
    ],
)
def test_hostile_links_never_carry_the_token_away(
    make_steps: MakeSteps, scenario: ExtractScenario, expect: Expect
) -> None:
    # Given links, a Location or redirects that point elsewhere
    steps = quick(make_steps, scenario)

    # When the chain runs
    final = assert_end_state(steps, drive(steps, start(steps)), expect)

    # Then whatever happened, the bearer token went to the Fusion API host only
    assert steps.fusion is not None
    for served in steps.fusion.requests:
        if "authorization" in served.headers and served.headers["authorization"].startswith("Bearer"):
            assert served.server == "fusion" and served.path.startswith("/api/saas-batch/"), served
            assert served.host.startswith("127.0.0.1"), served
    assert final.state is expect.state


# -- Fusion's JSON --------------------------------------------------------------------------------------

NESTED = b"[" * 100_000 + b"]" * 100_000
BODIES = {
    "not_json": b"<html>gateway</html>",
    "oversized": b'{"jobDetails": {"jobStatus": "RUNNING", "pad": "' + b"x" * (2 * 2**20) + b'"}}',
    "deeply_nested": NESTED,
    "wrong_types": b'{"jobDetails": "SUCCEEDED"}',
    "status_a_number": b'{"jobDetails": {"jobStatus": 7}}',
    "empty_object": b"{}",
}


@pytest.mark.parametrize("case", sorted(BODIES))
def test_hostile_status_json_from_fusion_fails_the_run_after_malformed_tries(
    make_steps: MakeSteps, case: str
) -> None:
    # Given every status answer malformed in one way
    steps = quick(make_steps, ExtractScenario(), MALFORMED_TRIES="2", DEFER_SECONDS="1")
    assert steps.fusion is not None
    steps.fusion.fail_next(r"/jobRequests/\d+$", 200, count=1000, method="GET", body=BODIES[case])

    # When the chain runs, Then the run failed after MALFORMED_TRIES, naming the problem; lease free
    assert_end_state(steps, drive(steps, start(steps)), FAILED)


def test_hostile_unknown_status_alerts_once_and_runs_to_the_deadline(make_steps: MakeSteps) -> None:
    # Given a status nobody documented, for ever
    steps = quick(make_steps, ExtractScenario(), RUN_DEADLINE_HOURS="1")
    assert steps.fusion is not None
    body = json.dumps(
        {"jobDetails": {"jobStatus": "SPLINTERED", "jobProgress": {"completed": False}}}
    ).encode()
    steps.fusion.fail_next(r"/jobRequests/\d+$", 200, count=10_000, method="GET", body=body)

    # When the chain runs, Then a person was told once, and the run timed out
    final = drive(steps, start(steps), tick=300)
    assert_end_state(steps, final, Expect(RunState.TIMED_OUT, alerts=("unknown_status",)))


# -- our own messages: refused with MessageError, nothing changed -------------------------------------------

MESSAGES = {
    "submit_not_json": ("submit", b"{extract: Sales"),
    "submit_unknown_field": ("submit", b'{"extract": "Sales", "mode": "full", "rm": "-rf"}'),
    "submit_wrong_type": ("submit", b'{"extract": ["Sales"], "mode": "full"}'),
    "submit_bad_mode": ("submit", b'{"extract": "Sales", "mode": "everything"}'),
    "submit_oversized": ("submit", b'{"extract": "' + b"S" * 2_000_000 + b'", "mode": "full"}'),
    "submit_nested": ("submit", NESTED),
    "submit_not_an_object": ("submit", b'"Sales"'),
    "rerun_attempt_a_string": ("submit", b'{"kind": "rerun", "run_id": "x", "attempt": "2"}'),
    "poll_seq_negative_string": ("poll", b'{"kind": "poll", "run_id": "r", "seq": "-1"}'),
    "poll_unknown_kind": ("poll", b'{"kind": "explode"}'),
    "poll_run_id_traversal": ("poll", b'{"kind": "poll", "run_id": "../leases/Sales", "seq": 1}'),
    "transfer_files_not_a_list": ("transfer", b'{"kind": "transfer", "run_id": "r", "files": "a.zip"}'),
    "transfer_file_traversal": ("transfer", b'{"kind": "transfer", "run_id": "r", "files": ["../../x.zip"]}'),
    "transfer_wrong_version": ("transfer", b'{"v": 99, "kind": "transfer", "run_id": "r", "files": []}'),
}


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_hostile_message_is_refused_and_changes_nothing(steps: Steps, case: str) -> None:
    # Given a chain with a run in flight
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(seconds_running=36_000))
    run = steps.start()
    before = {name: steps.read(name) for name in steps.objects("")}
    published = len(steps.ons.published)

    # When a malformed message reaches its function
    topic, body = MESSAGES[case]
    from fusion_extract.chain.messages import parse_poll, parse_submit, parse_transfer
    from fusion_extract.chain.steps.poll import poll
    from fusion_extract.chain.steps.submit import submit
    from fusion_extract.chain.steps.transfer import transfer

    step = {
        "submit": (parse_submit, submit),
        "poll": (parse_poll, poll),
        "transfer": (parse_transfer, transfer),
    }
    parse, function = step[topic]
    with pytest.raises(MessageError):
        function(parse(body), steps.deps)  # type: ignore[operator]

    # Then nothing changed: the same objects with the same bytes, nothing published, the run as it was
    assert {name: steps.read(name) for name in steps.objects("")} == before
    assert len(steps.ons.published) == published
    assert steps.run(run.run_id).state is RunState.RUNNING


# -- ledger documents -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "corruption",
    [b'{"run_id": "half a docu', b"\x00\xff\xfe", b"[]", b'{"v": 1, "state": "EXPLODED"}'],
    ids=["half_written", "binary", "wrong_shape", "unknown_state"],
)
def test_hostile_run_document_is_quarantined_alerted_and_the_other_run_lands(
    make_steps: MakeSteps, corruption: bytes
) -> None:
    # Given two runs in flight, one of whose documents is corrupt
    steps = quick(make_steps, ExtractScenario(chunks=2))
    assert steps.fusion is not None
    steps.fusion.define_extract("Payroll", ExtractScenario(seconds_running=36_000))
    good = start(steps)
    bad = start(steps, "Payroll")
    steps.deps.store.put_bytes(f"_state/runs/{bad}.json", corruption)
    bus = Bus(steps)
    bus.forget("poll")

    # When the chain runs, the sweep coming round
    final = drive(steps, good, bus)
    steps.clock.advance(61)
    steps.sweep()

    # Then the good run landed, the bad document was moved aside and a person told, once
    assert_end_state(steps, final)
    assert steps.objects(f"_state/quarantine/runs/{bad}") == [f"_state/quarantine/runs/{bad}.json"]
    assert steps.alerts().count("unreadable_document") == 1
    # And its extract is free for a new run
    steps.clock.advance(61)
    assert invoke(steps, "submit", {"extract": "Payroll", "mode": "full"})["outcome"] == "submitted"
