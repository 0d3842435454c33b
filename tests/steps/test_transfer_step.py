"""transfer: land one file per invocation, visible only once the whole archive verified; finish the run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import pytest

from fusion_extract.chain.ledger.codec import run_to_doc
from fusion_extract.chain.ledger.records import FileState, Run, RunState
from fusion_extract.chain.ledger.store import encode
from tests.emulators.fusion import ExtractScenario, Hostile
from tests.emulators.oci.http import Request, Response, error
from tests.steps.conftest import EXTRACT, MakeSteps, Steps, is_zip


def zips(steps: Steps, run: Run) -> list[str]:
    return [f.name for f in steps.planned(run) if is_zip(f.name)]


def manifest_file(steps: Steps, run: Run) -> str:
    [name] = [f.name for f in steps.planned(run) if f.name.endswith(".mf")]
    return name


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_transfer_stages_every_member_before_making_any_visible(steps: Steps) -> None:
    # Given a run whose job succeeded; its last ZIP holds a data file and the metadata file
    run = steps.until_transferring()
    last_zip = zips(steps, run)[-1]
    served_before = len(steps.oci.served)

    # When that ZIP is transferred
    outcome = steps.transfer(run.run_id, last_zip)

    # Then both members were uploaded to staging before the first was renamed into the landing folder
    assert outcome["outcome"] == "landed" and outcome["members"] == 2
    requests = steps.oci.served[served_before:]
    staged = [i for i, (method, path, _) in enumerate(requests) if method == "PUT" and "members" in path]
    promoted = [i for i, (method, path, _) in enumerate(requests) if path.endswith("/actions/renameObject")]
    assert len(staged) == 2 and len(promoted) == 2
    assert max(staged) < min(promoted)
    # And the landed members are the verified ones the file record lists
    record = steps.file(run.run_id, last_zip)
    assert record.state is FileState.LANDED and record.attempts == 1
    for member in record.members:
        assert sha256(steps.read(steps.deps.layout.member(run, member.path))) == member.sha256
    assert sorted(steps.landed(run)) == sorted(m.path for m in record.members)


@pytest.mark.parametrize(
    "hostile",
    [Hostile.ZIP_SLIP, Hostile.SYMLINK, Hostile.DUPLICATE_NAMES, Hostile.ZIP_BOMB, Hostile.ENCRYPTED],
)
def test_transfer_hostile_archive_fails_the_run_and_leaves_nothing_under_the_landing_prefix(
    steps: Steps, hostile: Hostile
) -> None:
    # Given a job whose ZIP carries, after its data file, an entry a safe unpacker must refuse
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(chunks=1, hostile=hostile))
    run = steps.until_transferring()
    [bad_zip] = zips(steps, run)

    # When that ZIP is transferred
    outcome = steps.transfer(run.run_id, bad_zip)

    # Then it was refused from its directory, before any member was unpacked; nothing is visible, and
    # staging is gone
    assert outcome["outcome"] == "failed"
    assert not any(method == "PUT" and "carriers_1.csv" in path for method, path, _ in steps.oci.served)
    assert steps.objects("landing/") == [] and steps.objects("_staging/") == []
    # And the file and the run failed, naming the archive, without a retry; people were told; lease free
    record = steps.file(run.run_id, bad_zip)
    assert record.state is FileState.FAILED and record.attempts == 1
    after = steps.run(run.run_id)
    assert after.state is RunState.FAILED and bad_zip in (after.reason or "")
    assert steps.alerts() == ["failed"]
    assert steps.deps.ledger.lease_holder(EXTRACT) is None
    assert len(steps.published("transfer")) == 2  # only the two of the fan-out


def test_transfer_wrong_checksum_retries_then_fails_the_run_after_file_max_attempts(
    make_steps: MakeSteps,
) -> None:
    # Given a ZIP listed with a checksum it does not have, 3 attempts per file, retries due at once
    steps = make_steps(FILE_MAX_ATTEMPTS="3", FILE_RETRY_SECONDS="0")
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(chunks=1, wrong_checksum=True))
    run = steps.until_transferring()

    # When its transfer messages are delivered (the retries included)
    outcomes = steps.deliver("transfer", keep=lambda message: is_zip(message["files"][0]))

    # Then it was tried 3 times, and the run failed naming the checksum; nothing became visible
    assert [o["outcome"] for o in outcomes] == ["retry_scheduled", "retry_scheduled", "failed"]
    [bad_zip] = zips(steps, run)
    record = steps.file(run.run_id, bad_zip)
    assert (record.state, record.attempts) == (FileState.FAILED, 3)
    assert "SHA-256" in (record.reason or "") and "after 3 attempts" in (record.reason or "")
    assert steps.run(run.run_id).state is RunState.FAILED
    assert steps.objects("landing/") == [] and steps.objects("_staging/") == []
    assert steps.alerts() == ["failed"]


def test_transfer_duplicate_message_for_a_landed_file_does_no_work(steps: Steps) -> None:
    # Given the first ZIP of a run landed, the others not yet
    run = steps.until_transferring()
    first = zips(steps, run)[0]
    steps.transfer(run.run_id, first)
    record = steps.deps.ledger.load_file(run.run_id, first)
    downloads = steps.fusion_calls(r"/content$")
    writes = [r for r in steps.oci.served if r[0] != "GET"]

    # When its message is delivered again
    outcome = steps.transfer(run.run_id, first)

    # Then nothing was downloaded or written
    assert outcome["outcome"] == "nothing_to_do"
    assert steps.fusion_calls(r"/content$") == downloads
    assert [r for r in steps.oci.served if r[0] != "GET"] == writes
    assert steps.deps.ledger.load_file(run.run_id, first) == record


def test_transfer_duplicate_message_after_the_run_landed_is_stale(steps: Steps) -> None:
    # Given a run that landed
    run = steps.until_transferring()
    steps.deliver("transfer")
    landed = steps.deps.ledger.load_run(run.run_id)
    assert landed.value.state is RunState.LANDED

    # When a transfer message of it is delivered again, Then it is stale and changes nothing
    assert steps.transfer(run.run_id, zips(steps, run)[0])["outcome"] == "stale"
    assert steps.deps.ledger.load_run(run.run_id) == landed
    assert steps.alerts() == ["landed"]


def test_transfer_claim_left_by_a_crashed_invocation_is_taken_over_once_stale(steps: Steps) -> None:
    # Given the first ZIP claimed (TRANSFERRING, attempt 1) by an invocation that then died
    run = steps.until_transferring()
    first = zips(steps, run)[0]
    current = steps.deps.ledger.load_file(run.run_id, first)
    claim = current.value.but(state=FileState.TRANSFERRING, attempts=1, claimed_at=steps.clock.now())
    steps.deps.ledger.save_file(current, claim)

    # When its message arrives while the claim is fresh, Then it is left to the claimant
    assert steps.transfer(run.run_id, first)["outcome"] == "nothing_to_do"
    assert steps.file(run.run_id, first).state is FileState.TRANSFERRING

    # When it arrives once the claim is older than STEP_OVERDUE_SECONDS
    steps.clock.advance(steps.deps.settings.step_overdue_seconds + 1)
    outcome = steps.transfer(run.run_id, first)

    # Then this invocation takes the file over as attempt 2 and lands it
    assert outcome["outcome"] == "landed"
    record = steps.file(run.run_id, first)
    assert (record.state, record.attempts) == (FileState.LANDED, 2)
    assert all(m.path in steps.landed(run) for m in record.members)


def test_transfer_of_the_last_file_writes_the_manifest_then_success_and_lands_the_run(steps: Steps) -> None:
    # Given a run of 2 ZIPs and the .mf, transfers published
    run = steps.until_transferring()

    # When every transfer message is delivered
    outcomes = steps.deliver("transfer")

    # Then every file landed, and the run LANDED with _manifest.json written before _SUCCESS
    assert [o["outcome"] for o in outcomes] == ["landed"] * 3
    after = steps.run(run.run_id)
    assert after.state is RunState.LANDED and after.landed_at == steps.clock.now()
    written = [path.rsplit("%2F", 1)[-1] for method, path, _ in steps.oci.served if method == "PUT"]
    assert [name for name in written if name in ("_manifest.json", "_SUCCESS")] == [
        "_manifest.json",
        "_SUCCESS",
    ]
    assert steps.read(steps.deps.layout.success(after)) == b""  # _SUCCESS is empty (docs/landing.md)
    # And the manifest accounts for every landed object, each of which verifies
    manifest = json.loads(steps.read(steps.deps.layout.manifest(after)))
    assert (manifest["run_id"], manifest["job_id"], manifest["extract"]) == (
        run.run_id,
        after.job_id,
        EXTRACT,
    )
    members = [m for f in manifest["files"] for m in f["members"]]
    for member in members:
        assert sha256(steps.read(member["object"])) == member["sha256"]
    expected = sorted(
        [*(m["path"] for m in members), manifest_file(steps, after), "_SUCCESS", "_manifest.json"]
    )
    assert steps.landed(after) == expected
    assert manifest["totals"]["rows"] == 100 and manifest["totals"]["files"] == 3
    assert manifest["checks"] == {"fusion_manifest": "verified", "row_counts": "verified", "notes": []}
    # And the lease is free, staging is empty, and people were told once
    assert steps.deps.ledger.lease_holder(EXTRACT) is None
    assert steps.objects("_staging/") == []
    assert steps.alerts() == ["landed"]
    [alert] = steps.published("alerts")
    assert alert["folder"] == steps.deps.layout.run_folder(after) and alert["rows"] == 100


def test_transfer_with_keep_raw_zips_lands_each_zip_under_raw_too(make_steps: MakeSteps) -> None:
    # Given KEEP_RAW_ZIPS=true
    steps = make_steps(KEEP_RAW_ZIPS="true")
    run = steps.until_transferring()

    # When the run's files are transferred
    steps.deliver("transfer")

    # Then each ZIP is kept, byte for byte as listed, under raw/
    assert steps.run(run.run_id).state is RunState.LANDED
    for planned in steps.planned(run):
        if is_zip(planned.name):
            assert sha256(steps.read(steps.deps.layout.raw(run, planned.name))) == planned.sha256
    assert [name for name in steps.landed(run) if name.startswith("raw/")] == [
        f"raw/{z}" for z in zips(steps, run)
    ]


@pytest.mark.parametrize(
    ("status", "code", "answer"),
    [(503, "ServiceUnavailable", "deferred"), (400, "InvalidParameter", "retry_scheduled")],
)
def test_transfer_whose_zip_cannot_be_kept_under_raw_puts_the_landing_off_or_starts_the_file_over(
    make_steps: MakeSteps, status: int, code: str, answer: str
) -> None:
    # Given KEEP_RAW_ZIPS=true, and Object Storage refusing the first move of a ZIP under raw/, for a moment
    # (503) or for good (400)
    steps = make_steps(KEEP_RAW_ZIPS="true", HTTP_MAX_ATTEMPTS="1")
    run = steps.until_transferring()
    refused: list[str] = []

    def refuse_raw(request: Request, serve: Callable[[Request], Response]) -> Response:
        if refused or b"/raw/" not in request.body:
            return serve(request)
        refused.append(str(json.loads(request.body)["newName"]).rsplit("/", 1)[-1])
        return error(status, code, "refused")

    steps.oci.intercept("POST", r".*/actions/renameObject$", refuse_raw)

    # When the run's files are transferred
    outcomes = steps.deliver("transfer")

    # Then that ZIP's answer says which: an outage puts its landing off (every member is visible; the sweep
    # lands it), anything else fails its attempt (it starts over)
    [name] = refused
    [refusal] = [o for o in outcomes if o.get("file") == name and o["outcome"] != "landed"]
    assert refusal["outcome"] == answer
    record = steps.file(run.run_id, name)
    assert steps.run(run.run_id).state is RunState.TRANSFERRING
    if status == 503:
        assert record.state is FileState.UNPACKING and record.attempts == 1
        # And the landing put off goes on once asked again (as the sweep asks)
        assert steps.transfer_unit(run.run_id, name, 0)["outcome"] == "landed"
        assert steps.run(run.run_id).state is RunState.LANDED
    else:
        assert (record.state, record.fetch, record.attempts) == (FileState.PENDING, None, 1)


def test_transfer_manifest_disagreeing_with_a_zip_fails_the_run_naming_the_file(steps: Steps) -> None:
    # Given the .mf landed first, saying the first ZIP has another SHA-256 than it has
    # (the emulator always writes a consistent .mf, so its parsed form is altered in the file record)
    run = steps.until_transferring()
    first, second = zips(steps, run)
    steps.transfer(run.run_id, manifest_file(steps, run))
    current = steps.deps.ledger.load_file(run.run_id, manifest_file(steps, run))
    assert current.value.manifest is not None and first in current.value.manifest
    claimed = {**current.value.manifest, first: "0" * 64}
    steps.deps.ledger.save_file(current, current.value.but(manifest=claimed))

    # When both ZIPs land (they verify against the listing)
    assert steps.transfer(run.run_id, first)["outcome"] == "landed"
    steps.transfer(run.run_id, second)

    # Then the run FAILED naming the ZIP and the manifest; no _manifest.json, no _SUCCESS; people told
    after = steps.run(run.run_id)
    assert after.state is RunState.FAILED
    assert first in (after.reason or "") and manifest_file(steps, run) in (after.reason or "")
    assert not {"_SUCCESS", "_manifest.json"} & set(steps.landed(run))
    assert steps.alerts() == ["failed"]
    assert steps.deps.ledger.lease_holder(EXTRACT) is None


def test_transfer_manifest_naming_a_file_the_listing_lacks_lands_the_run_with_a_note_and_an_alert(
    steps: Steps,
) -> None:
    # Given the .mf landed first, naming beside the listed ZIPs one the listing does not have
    run = steps.until_transferring()
    steps.transfer(run.run_id, manifest_file(steps, run))
    current = steps.deps.ledger.load_file(run.run_id, manifest_file(steps, run))
    assert current.value.manifest is not None
    claimed = {**current.value.manifest, "GHOST.zip": "0" * 64}
    steps.deps.ledger.save_file(current, current.value.but(manifest=claimed))

    # When the ZIPs land
    steps.deliver("transfer")

    # Then the run LANDED (a name on one side only is not a wrong byte), its _manifest.json says so, and
    # people were told of the landing and of the disagreement, naming the file
    after = steps.run(run.run_id)
    assert after.state is RunState.LANDED
    written = json.loads(steps.read(steps.deps.layout.manifest(after)))
    assert written["checks"]["fusion_manifest"] == "disagrees on names (see notes)"
    assert steps.alerts() == ["landed", "manifest_disagrees"]
    assert "'GHOST.zip' is in the manifest but not listed" in steps.published("alerts")[1]["reason"]
    # And the run's record says both alerts went out (its history shows them)
    assert after.alerts == ("landed", "manifest_disagrees")


def test_transfer_of_a_file_outside_the_plan_is_ignored(steps: Steps) -> None:
    # Given a run transferring; When a message names a file the job did not output
    run = steps.until_transferring()
    outcome = steps.transfer(run.run_id, "injected.zip")

    # Then nothing is done
    assert outcome["outcome"] == "nothing_to_do"
    assert steps.objects("landing/") == [] and steps.objects("_staging/") == []
    assert steps.run(run.run_id).updated_at == run.updated_at


def test_transfer_batch_lands_its_first_file_and_hands_the_rest_on(steps: Steps) -> None:
    # Given a run transferring, with its files sent as one batch (as past 50 files)
    run = steps.until_transferring()
    steps.forget("transfer")
    names = [f.name for f in steps.planned(run)]

    # When the batch is delivered
    outcome = steps.transfer(run.run_id, *names)

    # Then the first file landed, the answer saying what it landed, and the rest travel on in one message
    assert (outcome["outcome"], outcome["file"]) == ("landed", names[0])
    assert (outcome["members"], outcome["bytes"]) == (0, steps.planned(run)[0].size)  # the .mf: no member
    assert steps.published("transfer")[-1]["files"] == names[1:]
    steps.deliver("transfer")
    assert steps.run(run.run_id).state is RunState.LANDED


def test_transfer_of_a_job_that_ended_with_warnings_lands_it_and_says_so_in_the_manifest(
    steps: Steps,
) -> None:
    # Given a job that ends WARNING (success, flagged)
    assert steps.fusion is not None
    steps.fusion.define_extract(EXTRACT, ExtractScenario(outcome="WARNING"))
    run = steps.until_transferring()

    # When every file lands
    steps.deliver("transfer")

    # Then the run landed, and its manifest records the job's status
    after = steps.run(run.run_id)
    assert after.state is RunState.LANDED
    manifest = json.loads(steps.read(steps.deps.layout.manifest(after)))
    assert manifest["job_status"] == "WARNING"


def test_transfer_of_a_file_whose_retry_is_not_due_leaves_it_for_later(steps: Steps) -> None:
    # Given a file whose first transfer failed, with its retry due in a minute
    steps.fusion.define_extract(
        EXTRACT, ExtractScenario(chunks=1, wrong_checksum=True)
    ) if steps.fusion else None
    run = steps.until_transferring()
    first = next(f.name for f in steps.planned(run) if is_zip(f.name))
    assert steps.transfer(run.run_id, first)["outcome"] == "retry_scheduled"
    assert steps.file(run.run_id, first).next_at > steps.clock.now()

    # When a message naming it arrives before then
    outcome = steps.transfer(run.run_id, first)

    # Then it is left alone until due
    assert outcome["outcome"] == "nothing_to_do"
    assert steps.file(run.run_id, first).attempts == 1


def test_transfer_lands_a_run_planned_before_plan_pages_from_its_document(steps: Steps) -> None:
    # Given a run whose success was saved by the build before plan pages: its planned files in its run
    # document (v1), its files' records without their plan
    run = steps.until_transferring()
    plan = steps.planned(run)
    current = steps.deps.ledger.load_run(run.run_id)
    old = run_to_doc(current.value.but(plan=None, files=tuple(plan)))
    steps.deps.store.put_bytes(f"_state/runs/{run.run_id}.json", encode(old), if_match=current.etag)
    for planned in plan:
        name = f"_state/files/{run.run_id}/{planned.name}.json"
        record = json.loads(steps.read(name))
        del record["planned"]
        steps.deps.store.put_bytes(name, encode(record))
    for name in steps.objects(f"_state/plans/{run.run_id}/"):
        steps.deps.store.delete(name)

    # When its transfer messages are delivered
    steps.deliver("transfer")

    # Then the run landed every file of the plan in its document
    landed = steps.run(run.run_id)
    assert landed.state is RunState.LANDED and landed.plan is None
    assert all(steps.file(run.run_id, p.name).state is FileState.LANDED for p in plan)
