"""Landing one file, through the real store: members stay private until every unit is done, the run
folder's own names are never taken by a member, and a file that is not an archive lands as it is."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

import pytest

from fusion_extract.chain.budget import Budget
from fusion_extract.chain.ledger.records import Fetch, Run, RunState
from fusion_extract.chain.transfer.archive_source import BucketArchives
from fusion_extract.chain.transfer.landing import PROMOTE_AT_ONCE, SMALL_FILE_LIMIT, Landing
from fusion_extract.errors import IntegrityError, SupersededError, UnsafeInputError
from fusion_extract.models import OutputFile
from fusion_extract.ports import ObjectInfo, ObjectStore
from tests.steps.conftest import EXTRACT, Steps


def a_run(steps: Steps) -> Run:
    now = steps.clock.now()
    return Run("r1", EXTRACT, "full", RunState.TRANSFERRING, now, now, now, attempt=1, job_id="44046")


def offered(steps: Steps, name: str, data: bytes, *, listed_sha: str | None = None) -> OutputFile:
    """The file as Fusion would list it, its bytes served from the bucket (an archive source)."""
    steps.deps.store.put_bytes(f"incoming/{name}", data)
    sha = listed_sha or hashlib.sha256(data).hexdigest()
    return OutputFile(name, len(data), sha, url=f"incoming/{name}")


def zipped(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    return buffer.getvalue()


def landing(steps: Steps, planned: OutputFile) -> Landing:
    deps = steps.deps
    store, budget = deps.store, Budget(steps.clock, 240)
    run = a_run(steps)
    return Landing(
        deps.settings, deps.layout, store, BucketArchives(store), run, planned, lambda: (planned,), budget
    )


def fetched(landing: Landing) -> Fetch:
    return landing.fetch(Fetch(1, ""), lambda _: None)


@pytest.mark.parametrize(
    "reserved",
    [
        "_manifest.json",
        "_SUCCESS",
        "raw/other.zip",
        "_success",
        "_SUCCESS/x",
        "RAW/a.csv",
        "_Manifest.json.bak",
    ],
)
def test_landing_an_archive_with_a_member_named_like_the_runs_own_files_refuses_it_all(
    ledger_steps: Steps, reserved: str
) -> None:
    # Given an archive whose second member would take a name the run folder reserves
    planned = offered(ledger_steps, "a_1.zip", zipped(**{"data.csv": b"h\n1\n", reserved: b"{}"}))

    # When it is landed, Then it is refused, naming the member
    with pytest.raises(UnsafeInputError, match="a name the run reserves"):
        work = landing(ledger_steps, planned)
        work.entries(fetched(work))

    # And nothing of it is visible under the landing prefix
    assert ledger_steps.objects("landing/") == []


def test_landing_an_archive_with_a_member_named_like_another_file_of_the_run_refuses_it(
    ledger_steps: Steps,
) -> None:
    # Given a run that lists a plain file `extract_1.csv` beside an archive holding a member of that name
    planned = offered(ledger_steps, "a_1.zip", zipped(**{"extract_1.csv": b"h\n1\n"}))
    plain = OutputFile("extract_1.csv", 5, None, url="incoming/extract_1.csv")
    work = replace(landing(ledger_steps, planned), plain=lambda: (plain,))

    # When the archive's members are planned in units, Then it is refused, naming the member and the file
    entries = work.entries(fetched(work))
    with pytest.raises(
        UnsafeInputError, match=r"member 'extract_1\.csv' collides with the file extract_1\.csv"
    ):
        work.units(entries)


def test_landing_a_file_that_is_not_an_archive_lands_it_as_it_is_verified(ledger_steps: Steps) -> None:
    # Given an output file that is plain CSV
    data = b"ID,AMOUNT\n1,10\n2,20\n"
    planned = offered(ledger_steps, "extract_1.csv", data)

    # When it is landed
    work = landing(ledger_steps, planned)
    fetch = fetched(work)
    [member], manifest = work.promote_plain(fetch)

    # Then it is in the run folder with its own bytes, verified against the listing
    folder = ledger_steps.deps.layout.run_folder(a_run(ledger_steps))
    assert ledger_steps.objects("landing/") == [f"{folder}/extract_1.csv"]
    assert ledger_steps.read(f"{folder}/extract_1.csv") == data
    assert (member.sha256, member.size, manifest) == (hashlib.sha256(data).hexdigest(), len(data), None)


def test_landing_a_plain_file_whose_checksum_disagrees_leaves_it_invisible(ledger_steps: Steps) -> None:
    # Given a plain output file listed with another checksum
    planned = offered(ledger_steps, "extract_1.csv", b"ID\n1\n", listed_sha="0" * 64)

    # When it is landed, Then it is refused, and it never became visible
    with pytest.raises(IntegrityError, match="does not match the listed"):
        fetched(landing(ledger_steps, planned))
    assert ledger_steps.objects("landing/") == []


def test_landing_when_the_run_ended_meanwhile_makes_nothing_visible(ledger_steps: Steps) -> None:
    # Given a verified archive whose run was cancelled while it downloaded
    planned = offered(ledger_steps, "a_1.zip", zipped(**{"data.csv": b"h\n1\n"}))
    gone = replace(landing(ledger_steps, planned), still_wanted=lambda: False)
    fetch = fetched(gone)
    entries = gone.entries(fetch)
    units = [gone.unpack(fetch, index, unit)[0] for index, unit in enumerate(gone.units(entries))]

    # When it would be promoted, Then it is abandoned, and nothing of it is visible
    with pytest.raises(SupersededError, match="the run ended meanwhile"):
        gone.promote_unit(fetch, 0, units[0])
    assert ledger_steps.objects("landing/") == []


def test_landing_an_archive_costs_two_store_calls_per_small_member(ledger_steps: Steps) -> None:
    # Given an archive of twelve small members
    members = {f"part_{n:02}.csv": b"ID\n%d\n" % n for n in range(12)}
    planned = offered(ledger_steps, "a_1.zip", zipped(**members))

    # When it is fetched, unpacked and promoted
    work = landing(ledger_steps, planned)
    fetch = fetched(work)
    entries = work.entries(fetch)
    served = len(ledger_steps.oci.served)
    units = [work.unpack(fetch, index, unit)[0] for index, unit in enumerate(work.units(entries))]
    for index, unit in enumerate(units):
        work.promote_unit(fetch, index, unit)

    # Then each member cost one upload and one rename, the unit two ranged reads (its run of the directory,
    # then its members) and its list of staged members one write, never read back by the invocation that
    # wrote it: nothing was looked up again
    calls = [(method, path) for method, path, _ in ledger_steps.oci.served[served:]]
    lists = [c for c in calls if "/kept/" in unquote(c[1])]
    uploads = [c for c in calls if c[0] == "PUT" and "_staging" in c[1] and c not in lists]
    renames = [c for c in calls if c[1].endswith("/actions/renameObject")]
    heads = [c for c in calls if c[0] == "HEAD"]
    reads = [c for c in calls if c[0] == "GET" and c[1].endswith("fetched")]
    assert (len(uploads), len(renames), len(heads), len(reads)) == (12, 12, 0, 2)
    assert [method for method, _ in lists] == ["PUT"]
    folder = ledger_steps.deps.layout.run_folder(a_run(ledger_steps))
    assert ledger_steps.objects("landing/") == [f"{folder}/{name}" for name in sorted(members)]


@dataclass
class MeetingRenames:
    """A store whose renames wait until `together` of them are under way at once (or fail)."""

    inner: ObjectStore
    together: int
    met: threading.Barrier = field(init=False)

    def __post_init__(self) -> None:
        self.met = threading.Barrier(self.together, timeout=10)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def promote(self, source: str, target: str, staged: ObjectInfo | None = None) -> None:
        if not self.met.broken:
            self.met.wait()  # BrokenBarrierError: never that many at once
        self.inner.promote(source, target, staged)


def test_an_archive_s_members_are_renamed_ten_at_once(ledger_steps: Steps) -> None:
    # Given an archive of 30 small members, fetched and unpacked, and a store whose renames wait until ten
    # of them are under way at once (what the SDK's connection pool holds)
    assert PROMOTE_AT_ONCE == 10
    members = {f"part_{n:02}.csv": b"ID\n%d\n" % n for n in range(30)}
    work = landing(ledger_steps, offered(ledger_steps, "a_1.zip", zipped(**members)))
    fetch = fetched(work)
    [unit] = work.units(work.entries(fetch))
    unit, _ = work.unpack(fetch, 0, unit)
    store = MeetingRenames(ledger_steps.deps.store, together=PROMOTE_AT_ONCE)
    work.store = store

    # When its members are promoted
    unit, done = work.promote_unit(fetch, 0, unit)

    # Then every one is visible, and they were renamed ten at once all along
    assert (done, unit.promoted) == (True, 30)
    assert not store.met.broken
    folder = ledger_steps.deps.layout.run_folder(a_run(ledger_steps))
    assert ledger_steps.objects("landing/") == [f"{folder}/{name}" for name in sorted(members)]


def test_landing_a_plain_file_after_its_run_ended_makes_nothing_visible(ledger_steps: Steps) -> None:
    # Given a verified plain file whose run was cancelled while it downloaded
    planned = offered(ledger_steps, "extract_1.csv", b"ID\n1\n")
    gone = replace(landing(ledger_steps, planned), still_wanted=lambda: False)
    fetch = fetched(gone)

    # When it would be promoted, Then it is abandoned, and nothing of it is visible
    with pytest.raises(SupersededError, match="the run ended meanwhile"):
        gone.promote_plain(fetch)
    assert ledger_steps.objects("landing/") == []


def test_landing_a_plain_file_whose_run_ends_while_it_is_promoted_takes_it_back(ledger_steps: Steps) -> None:
    # Given a verified plain file whose run ends between the look before promoting and the one after
    planned = offered(ledger_steps, "extract_1.csv", b"ID\n1\n")
    answers = iter([True, False])
    ending = replace(landing(ledger_steps, planned), still_wanted=lambda: next(answers))
    fetch = fetched(ending)

    # When it is promoted, Then it is abandoned, and what it promoted is withdrawn
    with pytest.raises(SupersededError, match="while it was promoted; withdrawn"):
        ending.promote_plain(fetch)
    assert ledger_steps.objects("landing/") == []


def test_a_manifest_file_is_read_up_to_its_size_bound_and_refused_past_it(ledger_steps: Steps) -> None:
    # Given two `.mf` files of comment lines: one exactly SMALL_FILE_LIMIT bytes long, one a byte longer
    line = b"#" * 1023 + b"\n"
    at_limit = line * (SMALL_FILE_LIMIT // len(line))
    fits = landing(ledger_steps, offered(ledger_steps, "at_limit.mf", at_limit))
    over = landing(ledger_steps, offered(ledger_steps, "over_limit.mf", at_limit + b"\n"))

    # When each is landed, Then the first is read as a manifest (of no files), the second refused unread
    assert fits.promote_plain(fetched(fits)) == ((), {})
    with pytest.raises(IntegrityError, match=f"over_limit.mf is larger than {SMALL_FILE_LIMIT} bytes"):
        over.promote_plain(fetched(over))


def test_an_archive_named_in_capitals_is_unpacked(ledger_steps: Steps) -> None:
    # Given an output file named `.ZIP`, as some Fusion listings write it
    planned = offered(ledger_steps, "EXTRACT_1.ZIP", zipped(**{"data.csv": b"h\n1\n"}))

    # When it is landed, Then it is an archive, and its members are what lands
    work = landing(ledger_steps, planned)
    assert work.is_archive
    assert [entry.path for entry in work.entries(fetched(work))] == ["data.csv"]


def test_landing_an_archive_with_two_metadata_members_refuses_it(ledger_steps: Steps) -> None:
    # Given an archive holding two metadata members, which would disagree on the row counts to check
    planned = offered(
        ledger_steps,
        "a_1.zip",
        zipped(**{"data.csv": b"h\n1\n", "a_metadata.json": b"{}", "b_metadata.json": b"{}"}),
    )

    # When its directory is read, Then it is refused, naming them: neither is taken silently
    work = landing(ledger_steps, planned)
    with pytest.raises(UnsafeInputError, match=r"more than one metadata member: \['a_metadata\.json', 'b_"):
        work.entries(fetched(work))


def test_landing_a_file_listed_without_a_checksum_still_checks_its_size(ledger_steps: Steps) -> None:
    # Given a plain file of 5 bytes that the listing says is 6 bytes long, and gives no SHA-256
    offered(ledger_steps, "extract_1.csv", b"ID\n1\n")
    planned = OutputFile("extract_1.csv", 6, None, url="incoming/extract_1.csv")

    # When it is fetched, Then the size the listing gave is enforced, and nothing is visible
    with pytest.raises(IntegrityError, match=r"extract_1\.csv: 5 bytes, the listing said 6"):
        fetched(landing(ledger_steps, planned))
    assert ledger_steps.objects("landing/") == []
