"""Landing one file, through the real store: members stay private until the whole archive verified, the
run folder's own names are never taken by a member, and a file that is not an archive lands as it is."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import replace

import pytest

from fusion_extract.chain.archive_source import BucketArchives
from fusion_extract.chain.landing import Lander
from fusion_extract.chain.records import PlannedFile, Run, RunState
from fusion_extract.errors import IntegrityError, SupersededError, UnsafeInputError
from tests.steps.conftest import EXTRACT, Steps


def a_run(steps: Steps) -> Run:
    now = steps.clock.now()
    return Run("r1", EXTRACT, "full", RunState.TRANSFERRING, now, now, now, attempt=1, job_id="44046")


def offered(steps: Steps, name: str, data: bytes, *, listed_sha: str | None = None) -> PlannedFile:
    """The file as Fusion would list it, its bytes served from the bucket (an archive source)."""
    steps.deps.store.put_bytes(f"incoming/{name}", data)
    sha = listed_sha or hashlib.sha256(data).hexdigest()
    return PlannedFile(name, len(data), sha, url=f"incoming/{name}")


def zipped(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    return buffer.getvalue()


def lander(steps: Steps, planned: PlannedFile) -> Lander:
    deps = steps.deps
    return Lander(
        deps.settings, deps.layout, deps.store, BucketArchives(deps.store), a_run(steps), planned, 1
    )


@pytest.mark.parametrize("reserved", ["_manifest.json", "_SUCCESS", "raw/other.zip"])
def test_landing_an_archive_with_a_member_named_like_the_runs_own_files_refuses_it_all(
    ledger_steps: Steps, reserved: str
) -> None:
    # Given an archive whose second member would take a name the run folder reserves
    planned = offered(ledger_steps, "a_1.zip", zipped(**{"data.csv": b"h\n1\n", reserved: b"{}"}))

    # When it is landed, Then it is refused, naming the member
    with pytest.raises(UnsafeInputError, match="would take a name the run reserves"):
        lander(ledger_steps, planned).land()

    # And nothing of it is visible under the landing prefix
    assert ledger_steps.objects("landing/") == []


def test_landing_a_file_that_is_not_an_archive_lands_it_as_it_is_verified(ledger_steps: Steps) -> None:
    # Given an output file that is plain CSV
    data = b"ID,AMOUNT\n1,10\n2,20\n"
    planned = offered(ledger_steps, "extract_1.csv", data)

    # When it is landed
    landed = lander(ledger_steps, planned).land()

    # Then it is in the run folder with its own bytes, verified against the listing
    folder = ledger_steps.deps.layout.run_folder(a_run(ledger_steps))
    assert ledger_steps.objects("landing/") == [f"{folder}/extract_1.csv"]
    assert ledger_steps.read(f"{folder}/extract_1.csv") == data
    assert (landed.sha256, landed.size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_landing_a_plain_file_whose_checksum_disagrees_leaves_it_invisible(ledger_steps: Steps) -> None:
    # Given a plain output file listed with another checksum
    planned = offered(ledger_steps, "extract_1.csv", b"ID\n1\n", listed_sha="0" * 64)

    # When it is landed, Then it is refused, and it never became visible
    with pytest.raises(IntegrityError, match="does not match the listed"):
        lander(ledger_steps, planned).land()
    assert ledger_steps.objects("landing/") == []


def test_landing_when_the_run_ended_meanwhile_makes_nothing_visible(ledger_steps: Steps) -> None:
    # Given a verified archive whose run was cancelled while it downloaded
    planned = offered(ledger_steps, "a_1.zip", zipped(**{"data.csv": b"h\n1\n"}))
    deps = ledger_steps.deps
    gone = Lander(
        deps.settings, deps.layout, deps.store, BucketArchives(deps.store), a_run(ledger_steps), planned, 1
    )
    gone = replace(gone, still_wanted=lambda: False)

    # When it would be promoted, Then it is abandoned, and nothing of it is visible
    with pytest.raises(SupersededError, match="the run ended meanwhile"):
        gone.land()
    assert ledger_steps.objects("landing/") == []


def test_landing_an_archive_costs_two_store_calls_per_small_member(ledger_steps: Steps) -> None:
    # Given an archive of twelve small members
    members = {f"part_{n:02}.csv": b"ID\n%d\n" % n for n in range(12)}
    planned = offered(ledger_steps, "a_1.zip", zipped(**members))
    served = len(ledger_steps.oci.served)

    # When it is landed
    lander(ledger_steps, planned).land()

    # Then each member cost one upload and one rename: nothing was looked up again
    calls = [(method, path) for method, path, _ in ledger_steps.oci.served[served:]]
    uploads = [c for c in calls if c[0] == "PUT" and "_staging" in c[1]]
    renames = [c for c in calls if c[1].endswith("/actions/renameObject")]
    heads = [c for c in calls if c[0] == "HEAD"]
    assert (len(uploads), len(renames), len(heads)) == (12, 12, 0)
    folder = ledger_steps.deps.layout.run_folder(a_run(ledger_steps))
    assert ledger_steps.objects("landing/") == [f"{folder}/{name}" for name in sorted(members)]
