"""Faults: throttling, 5xx bursts, spurious 401s, a disabled feature, dropped downloads, wrong checksums,
hostile archives and links, and the one-off faults armed with fail_next."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from collections.abc import Callable

import pytest
import requests

from tests.clocks import ManualClock
from tests.emulators.fusion import BadLink, ExtractScenario, FusionEmulator, Hostile
from tests.emulators.fusion.batch import JOBS
from tests.emulators.fusion.plain_client import PlainClient


def finished_job(client: PlainClient, clock: ManualClock, extract: str = "Sales") -> int:
    client.authorize()
    job_id = client.submit_job(extract)
    clock.advance(60)
    return job_id


def test_scenario_faults_throttle_then_fail_then_expire_then_serve(
    fusion: FusionEmulator, client: PlainClient
) -> None:
    # Given an extract whose requests are throttled twice, then fail once, then see a spurious 401 once
    fusion.define_extract(
        "Busy", ExtractScenario(throttle_requests=2, retry_after=7, server_errors=1, expire_tokens=1)
    )
    client.authorize()
    # When the same valid submission is sent five times
    answers = [client.submit("Busy") for _ in range(5)]
    # Then the faults come in order, each with its headers, and only the last creates a job
    assert [answer.status_code for answer in answers] == [429, 429, 503, 401, 202]
    assert answers[0].headers["Retry-After"] == "7"
    assert answers[3].headers["WWW-Authenticate"].startswith("Bearer")
    assert len(fusion.jobs) == 1
    assert client.status(fusion.jobs[0].id).status_code == 200


def test_scenario_feature_disabled_returns_404_not_enabled(
    fusion: FusionEmulator, client: PlainClient
) -> None:
    # Given an extract on a pod where Data Extraction is not enabled
    fusion.define_extract("Off", ExtractScenario(feature_disabled=True))
    client.authorize()
    # When a job is submitted
    response = client.submit("Off")
    # Then the answer is a 404 JSON saying so
    assert response.status_code == 404
    assert response.json()["detail"] == "The requested feature is not enabled"


def test_scenario_dropped_download_resumes_with_range_to_the_listed_checksum(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock
) -> None:
    # Given archives whose download is cut after 300 bytes, once per file
    fusion.define_extract("Sales", ExtractScenario(rows_per_chunk=200, drop_download_after_bytes=300))
    job_id = finished_job(client, clock)
    item = client.all_files(job_id)[0]
    received = bytearray()
    # When the download breaks off, and the client resumes from what it has
    with (
        pytest.raises(requests.exceptions.ChunkedEncodingError),
        client.download(item, stream=True) as response,
    ):
        for piece in response.iter_content(100):
            received += piece
    resumed = client.download(item, {"Range": f"bytes={len(received)}-"})
    # Then the first attempt got exactly 300 bytes, and the resumed whole matches the listing
    assert len(received) == 300
    assert resumed.status_code == 206
    assert f"sha-256={hashlib.sha256(received + resumed.content).hexdigest()}" == item["checksum"]
    # And a later whole download is not cut again
    assert len(client.download(item).content) == item["fileSize"]


def test_scenario_wrong_checksum_lists_a_checksum_the_bytes_do_not_have(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock
) -> None:
    # Given an extract whose first archive is listed with a wrong checksum
    fusion.define_extract("Sales", ExtractScenario(wrong_checksum=True))
    job_id = finished_job(client, clock)
    first, second, manifest = client.all_files(job_id)
    # When the archives are downloaded
    actual = [hashlib.sha256(client.download(item).content).hexdigest() for item in (first, second)]
    # Then only the first differs from its listing; the manifest has the true checksums
    assert first["checksum"] != f"sha-256={actual[0]}"
    assert second["checksum"] == f"sha-256={actual[1]}"
    assert [line.split(";")[2] for line in client.download(manifest).text.splitlines()] == actual


HOSTILE_CHECKS: dict[Hostile, Callable[[list[zipfile.ZipInfo]], bool]] = {
    Hostile.ZIP_SLIP: lambda infos: any(info.filename.startswith("../") for info in infos),
    Hostile.ABSOLUTE_PATH: lambda infos: any(info.filename.startswith("/") for info in infos),
    Hostile.BACKSLASH: lambda infos: any("\\" in info.filename for info in infos),
    Hostile.DRIVE_LETTER: lambda infos: any(info.filename.startswith("C:/") for info in infos),
    Hostile.SYMLINK: lambda infos: any(stat.S_ISLNK(info.external_attr >> 16) for info in infos),
    Hostile.ENCRYPTED: lambda infos: any(info.flag_bits & 0x1 for info in infos),
    Hostile.DUPLICATE_NAMES: lambda infos: len({info.filename for info in infos}) < len(infos),
    Hostile.ZIP_BOMB: lambda infos: any(info.file_size > 500 * info.compress_size for info in infos),
}


@pytest.mark.parametrize("kind", list(Hostile))
def test_scenario_hostile_archive_carries_the_hostile_entry_and_stays_a_valid_zip(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock, kind: Hostile
) -> None:
    # Given an extract whose first archive carries one hostile entry
    fusion.define_extract("Sales", ExtractScenario(hostile=kind, bomb_bytes=4 * 1024 * 1024))
    job_id = finished_job(client, clock)
    first, second, _ = client.all_files(job_id)
    # When the archives are downloaded and opened
    body = client.download(first).content
    infos = zipfile.ZipFile(io.BytesIO(body)).infolist()
    clean = zipfile.ZipFile(io.BytesIO(client.download(second).content)).infolist()
    # Then the first holds the data member and the hostile entry, matches its listing; the second is clean
    assert infos[0].filename == "carriers_1.csv"
    assert HOSTILE_CHECKS[kind](infos)
    assert not HOSTILE_CHECKS[kind](clean)
    assert f"sha-256={hashlib.sha256(body).hexdigest()}" == first["checksum"]


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [
        (BadLink.FOREIGN_HOST, "https://localhost:"),
        (BadLink.PLAIN_HTTP, "http://127.0.0.1:"),
        (BadLink.OUTSIDE_API, "https://127.0.0.1:"),
    ],
)
def test_scenario_bad_link_points_the_first_enclosure_elsewhere(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock, kind: BadLink, prefix: str
) -> None:
    # Given an extract whose first file's download link is hostile
    fusion.define_extract("Sales", ExtractScenario(bad_link=kind))
    job_id = finished_job(client, clock)
    # When the output is listed
    first, second, _ = (item["$context"]["links"]["enclosure"]["href"] for item in client.all_files(job_id))
    # Then only the first link is bad, in the way asked for
    assert first.startswith(prefix)
    assert ("/api/saas-batch/" in first) is (kind is not BadLink.OUTSIDE_API)
    assert second.startswith(f"{fusion.base_url}/api/saas-batch/")


def test_scenario_foreign_link_followed_is_recorded_with_its_host_and_token(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock
) -> None:
    # Given a listing whose first link names another host (localhost reaches the emulator too)
    fusion.define_extract("Sales", ExtractScenario(bad_link=BadLink.FOREIGN_HOST))
    job_id = finished_job(client, clock)
    link = client.all_files(job_id)[0]["$context"]["links"]["enclosure"]["href"]
    # When a careless client follows it with its token
    client.get(link)
    # Then the record shows the token arriving on the foreign host: a test can catch such a leak
    leaked = [served for served in fusion.requests if served.host.startswith("localhost:")]
    assert [served.headers["authorization"].startswith("Bearer ") for served in leaked] == [True]


def test_scenario_location_on_foreign_host(fusion: FusionEmulator, client: PlainClient) -> None:
    # Given an extract whose submit answers with a Location on another host
    fusion.define_extract("Sales", ExtractScenario(location_foreign_host=True))
    client.authorize()
    # When a job is submitted
    location = client.submit("Sales").headers["Location"]
    # Then the Location names localhost instead of the configured 127.0.0.1
    assert location.startswith("https://localhost:")
    assert location.endswith(f"{JOBS}/{fusion.jobs[0].id}")


def test_fail_next_answers_matching_requests_then_gets_out_of_the_way(
    fusion: FusionEmulator, client: PlainClient, clock: ManualClock
) -> None:
    # Given a finished job, and two throttled answers armed for its output listing
    job_id = finished_job(client, clock)
    fusion.fail_next(r"/outputFiles$", 429, count=2, retry_after=3)
    # When the status and then the listing are requested three times
    status = client.status(job_id)
    listings = [client.files(job_id) for _ in range(3)]
    # Then the status was untouched, and the listing throttled twice before it answered
    assert status.status_code == 200
    assert [listing.status_code for listing in listings] == [429, 429, 200]
    assert listings[0].headers["Retry-After"] == "3"


def test_fail_next_on_token_endpoint_and_by_method(fusion: FusionEmulator, client: PlainClient) -> None:
    # Given a 503 armed for the token endpoint, and a 500 for POSTs to jobRequests only
    fusion.fail_next("/oauth2/v1/token", 503)
    fusion.fail_next(r"/jobRequests/?$", 500, method="POST")
    # When a token is asked for twice, then the job list is read and a job submitted
    first, second = client.token(), client.token()
    client.session.headers["Authorization"] = f"Bearer {second.json()['access_token']}"
    listed, submitted = client.get(JOBS), client.submit("Sales")
    # Then each fault fired once, where it was aimed
    assert (first.status_code, first.json()["error"]) == (503, "temporarily_unavailable")
    assert second.status_code == 200
    assert (listed.status_code, submitted.status_code) == (200, 500)


def test_fail_next_without_an_error_status_is_refused(fusion: FusionEmulator) -> None:
    # Given the emulator
    # When a fault is armed with a success status
    # Then it is refused with a clear error
    with pytest.raises(ValueError, match="error status"):
        fusion.fail_next("/", 200)


def test_scenario_with_invalid_values_names_every_problem() -> None:
    # Given nonsense settings
    # When a scenario is built from them
    # Then one error names each problem
    with pytest.raises(ValueError, match=r"outcome.*format.*counts"):
        ExtractScenario(outcome="DONE", format="xml", chunks=-1)
