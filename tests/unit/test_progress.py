"""How far a run has come (cli/progress.py): bytes fetched and unpacked, units, elapsed, rate and ETA."""

from __future__ import annotations

from datetime import timedelta

from fusion_extract.chain.ledger.records import (
    Entry,
    Fetch,
    FileRecord,
    FileState,
    History,
    KeptMembers,
    Member,
    Run,
    RunState,
    StagedMember,
    Unit,
    UnitState,
    What,
    changed,
)
from fusion_extract.cli.progress import RunProgress
from fusion_extract.cli.timeline import timeline
from fusion_extract.models import OutputFile
from tests.clocks import EPOCH

MINUTE = timedelta(minutes=1)


def member(size: int) -> StagedMember:
    return StagedMember(Member(f"m{size}.csv", size, "0" * 64), "etag", None)


def transferring_run() -> Run:
    """A run that began transferring two files of 1,000 and 3,000 bytes 10 minutes after it started."""
    files = (OutputFile("a.zip", 1000, None, "https://f/a"), OutputFile("b.zip", 3000, None, "https://f/b"))
    history = History(
        (
            changed(EPOCH, RunState.SUBMITTING),
            changed(EPOCH + 2 * MINUTE, RunState.RUNNING, RunState.SUBMITTING),
            changed(EPOCH + 10 * MINUTE, RunState.TRANSFERRING, RunState.RUNNING),
        )
    )
    return Run(
        "r1", "Sales", "full", RunState.TRANSFERRING, EPOCH, EPOCH + 10 * MINUTE, EPOCH, files=files,
        history=history,
    )  # fmt: skip


def test_progress_counts_fetched_bytes_from_the_fetch_and_unpacked_bytes_from_staged_members() -> None:
    # Given one archive fetched and half unpacked (one unit of two done, its staged members kept in an
    # object of its own; the other's held in the record, as records were written before), the other file
    # 600 bytes into its fetch
    units = (
        Unit(0, 2, UnitState.DONE, kept=KeptMembers(claim=1, count=2, size=1500, sha256="0" * 64)),
        Unit(2, 2, UnitState.WORKING, staged=(member(500),)),
    )
    unpacking = FileRecord("r1", "a.zip", FileState.UNPACKING, EPOCH, units=units)
    fetching = FileRecord("r1", "b.zip", FileState.PENDING, EPOCH, fetch=Fetch(1, "upload", offset=600))

    # When its progress is taken 20 minutes after it started (10 minutes into the transfer)
    run = transferring_run()
    progress = RunProgress.of(run, run.files, [unpacking, fetching], EPOCH + 20 * MINUTE)

    # Then per file and in total: bytes fetched, bytes unpacked (staged members), units done
    assert [(f.fetched, f.unpacked, f.units_done, f.units) for f in progress.files] == [
        (1000, 2000, 1, 2),
        (600, 0, 0, 0),
    ]
    assert (progress.fetched, progress.size, progress.unpacked, progress.units) == (1600, 4000, 2000, (1, 2))
    # And the elapsed time from the start, the rate over the transfer's own time, and the ETA at that rate
    assert progress.elapsed == 1200 and progress.transfer_elapsed == 600
    assert progress.rate == 1600 / 600 and progress.eta == 2400 / (1600 / 600)
    line = progress.line()
    assert "elapsed 20:00" in line and "fetched 1,600/4,000 B" in line and "ETA 15:00" in line


def test_progress_of_a_run_not_yet_transferring_has_no_rate_or_eta() -> None:
    # Given a run whose history has no transfer yet, When its progress is taken
    run = transferring_run()
    progress = RunProgress.of(
        run.but(history=History(run.history.entries[:2])), run.files, [], EPOCH + 5 * MINUTE
    )

    # Then there is neither a rate nor an ETA to tell, only the elapsed time
    assert (progress.rate, progress.eta, progress.elapsed) == (None, None, 300)
    assert progress.to_json()["eta_seconds"] is None


def test_timeline_lists_each_state_change_at_the_time_it_was_saved() -> None:
    # Given a run with its history, When its timeline is made
    events = timeline(transferring_run(), [])

    # Then each change is there at its own time (not rebuilt from the run's other times)
    assert [(e.at, e.text) for e in events if "->" in e.text] == [
        (EPOCH, "(created) -> SUBMITTING"),
        (EPOCH + 2 * MINUTE, "SUBMITTING -> RUNNING"),
        (EPOCH + 10 * MINUTE, "RUNNING -> TRANSFERRING"),
    ]


def test_timeline_merges_the_files_entries_in_time_and_counts_what_was_dropped() -> None:
    # Given a run whose history dropped 3 old entries, and a file claimed between two of its changes
    run = transferring_run()
    run = run.but(history=History(run.history.entries, dropped=3))
    claim = Entry(EPOCH + 5 * MINUTE, What.CLAIM, "call-9", facts={"file": "a.zip", "attempt": 1})
    record = FileRecord("r1", "a.zip", FileState.TRANSFERRING, EPOCH, history=History((claim,), dropped=2))

    # When its timeline is made
    events = timeline(run, [record])

    # Then the dropped entries are counted first, then every entry in time order, each in words
    assert [event.text for event in events][:5] == [
        "(5 earlier entries not kept)",
        "(created) -> SUBMITTING",
        "SUBMITTING -> RUNNING",
        "a.zip claimed (attempt 1) (call call-9)",
        "RUNNING -> TRANSFERRING",
    ]
    assert events[3].to_json() == {
        "at": "2026-03-01T08:05:00.000000Z", "what": "claim", "call_id": "call-9", "file": "a.zip",
        "attempt": 1, "event": "a.zip claimed (attempt 1) (call call-9)",
    }  # fmt: skip
