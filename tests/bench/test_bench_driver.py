"""The bench's driver of the transfer in pieces: which message the chain would have in flight next, and
whether Fusion served an archive once."""

from datetime import UTC, datetime

import pytest

from fusion_extract.chain.ledger.records import FileRecord, FileState, Unit, UnitState
from tests.bench.product import Driven, Stuck, messages_due
from tests.bench.stats import served_once

WHEN = datetime(2026, 3, 1, tzinfo=UTC)
MiB = 2**20


def record(state: FileState, *units: UnitState, reason: str | None = None) -> FileRecord:
    return FileRecord(
        "run-1",
        "a.zip",
        state,
        WHEN,
        reason=reason,
        units=tuple(Unit(index * 10, 10, unit_state) for index, unit_state in enumerate(units)),
    )


def test_a_file_still_fetching_is_due_its_file_message_unless_one_runs():
    # Given a file whose fetch goes on (PENDING)
    pending = record(FileState.PENDING)

    # Then its file message is due, once: not while an invocation of it runs
    assert messages_due(pending, set()) == [None]
    assert messages_due(pending, {None}) == []


def test_an_archive_being_unpacked_is_due_a_message_per_unit_not_done():
    # Given an archive of four units, the second one done
    unpacking = record(
        FileState.UNPACKING, UnitState.PENDING, UnitState.DONE, UnitState.PENDING, UnitState.PENDING
    )

    # Then every unit not done is due, but those whose invocation runs
    assert messages_due(unpacking, set()) == [0, 2, 3]
    assert messages_due(unpacking, {3}) == [0, 2]


def test_unit_zero_belongs_to_the_running_invocation_of_the_file_message():
    # Given an archive just fetched by the file message's invocation, which goes on with unit 0
    unpacking = record(FileState.UNPACKING, UnitState.PENDING, UnitState.PENDING)

    # Then only the other units are due meanwhile
    assert messages_due(unpacking, {None}) == [1]


def test_once_every_unit_is_staged_each_unit_waiting_to_be_promoted_is_due_again():
    # Given an archive whose units are all staged: one promoted, one being promoted, two DONE (a
    # promotion that paused, and one handed out by the invocation that staged the last unit)
    staged = record(
        FileState.UNPACKING, UnitState.PROMOTED, UnitState.PROMOTING, UnitState.DONE, UnitState.DONE
    )

    # Then each DONE unit is due its message again (the transfer published one), but while its
    # invocation runs; the unit being promoted belongs to a running invocation
    assert messages_due(staged, set()) == [2, 3]
    assert messages_due(staged, {2}) == [3]


def test_no_done_unit_is_due_while_the_invocation_that_staged_the_last_unit_may_still_promote_it():
    # Given an archive whose units are all staged, one being promoted, while an invocation started to
    # unpack still runs: the one that staged the last unit promotes the others in turn
    staged = record(FileState.UNPACKING, UnitState.PROMOTING, UnitState.DONE, UnitState.DONE)

    # Then no DONE unit is due: the chain publishes a message for each one it did not reach as it ends
    assert messages_due(staged, {None}, handing_out=True) == []
    # Once it ended, those still DONE are due (it handed them out)
    assert messages_due(staged, set()) == [1, 2]


def test_a_done_unit_is_not_due_while_another_is_still_unpacked():
    # Given an archive whose second unit is staged while the first is still unpacked
    unpacking = record(FileState.UNPACKING, UnitState.WORKING, UnitState.DONE)

    # Then only the unit being unpacked is due (its invocation died, or it is a duplicate)
    assert messages_due(unpacking, set()) == [0]


def test_an_archive_with_every_unit_promoted_but_not_landed_is_due_one_message_to_land_it():
    # Given an archive whose units are all promoted, its landing put off
    promoted = record(FileState.UNPACKING, UnitState.PROMOTED, UnitState.PROMOTED)

    # Then one message is due to land it, unless an invocation of the file runs
    assert messages_due(promoted, set()) == [0]
    assert messages_due(promoted, {1}) == []


def test_a_landed_file_is_due_nothing_and_a_failed_one_stops_the_driver():
    assert messages_due(record(FileState.LANDED), set()) is None
    assert messages_due(record(FileState.TRANSFERRING), set()) == []
    with pytest.raises(Stuck, match="FAILED: bad member"):
        messages_due(record(FileState.FAILED, reason="bad member"), set())


def test_downloads_that_each_go_on_where_the_last_stopped_serve_the_archive_once():
    # Given an archive of 20 MiB fetched in three downloads, two of them cut with bytes still buffered
    downloads = [
        {"start": 0, "stop": 20 * MiB, "read": 9 * MiB},
        {"start": 8 * MiB, "stop": 20 * MiB, "read": 9 * MiB},
        {"start": 16 * MiB, "stop": 20 * MiB, "read": 4 * MiB},
    ]

    # When the downloads are judged
    served = served_once(downloads, 20 * MiB)

    # Then the archive was served once; 2 MiB were read to send and never used
    assert served["once"] is True
    assert served["bytes_kept"] == 20 * MiB
    assert served["overshoot_bytes"] == 2 * MiB


def test_the_directory_read_first_then_the_rest_up_to_it_serves_the_archive_once():
    # Given an archive whose last 256 KiB were read first, then the rest up to where they begin
    tail = 20 * MiB - 256 * 1024
    downloads = [
        {"start": tail, "stop": 20 * MiB, "read": 256 * 1024},
        {"start": 0, "stop": tail, "read": tail},
    ]

    # When the downloads are judged
    served = served_once(downloads, 20 * MiB)

    # Then every byte was served once
    assert served["once"] is True
    assert served["bytes_kept"] == 20 * MiB
    assert served["overshoot_bytes"] == 0


def test_ranges_fetched_in_parallel_serve_the_archive_once_in_whatever_order_they_reach_fusion():
    # Given the tail read first, then four ranges at once, the second served before the first
    tail = 16 * MiB - 256 * 1024
    ranges = [(tail, 16 * MiB), (4 * MiB, 8 * MiB), (0, 4 * MiB), (12 * MiB, tail), (8 * MiB, 12 * MiB)]
    downloads = [{"start": start, "stop": stop, "read": stop - start} for start, stop in ranges]

    # When the downloads are judged
    served = served_once(downloads, 16 * MiB)

    # Then every byte was served once
    assert served["once"] is True
    assert (served["bytes_kept"], served["overshoot_bytes"]) == (16 * MiB, 0)


@pytest.mark.parametrize(
    "starts",
    [
        [0, 8 * MiB, 0],  # started over from the beginning
        [0, 8 * MiB, 4 * MiB],  # went back
        [4 * MiB],  # never fetched the start
    ],
)
def test_a_download_that_does_not_go_forward_is_not_served_once(starts):
    downloads = [{"start": start, "stop": 20 * MiB, "read": 20 * MiB - start} for start in starts]

    assert served_once(downloads, 20 * MiB)["once"] is False


def test_an_archive_not_served_to_its_end_is_not_served_once():
    assert served_once([{"start": 0, "stop": 20 * MiB, "read": 12 * MiB}], 20 * MiB)["once"] is False
    assert served_once([], 20 * MiB)["once"] is False


def test_the_report_keeps_the_outcome_that_landed_the_file_and_the_longest_invocation():
    # Given a unit that landed the file, then a late duplicate that found nothing to do
    driven = Driven()
    driven.record({"outcome": "unpacked", "unit": 1}, 2.5)
    driven.record({"outcome": "landed", "unit": 0}, 4.0)
    driven.record({"outcome": "nothing_to_do", "unit": 1}, 0.1)

    # When it is reported
    report = driven.report()

    # Then the file counts as landed, after three invocations, the longest 4 s
    assert report["outcome"] == "landed"
    assert (report["invocations"], report["longest_invocation_s"]) == (3, 4.0)
