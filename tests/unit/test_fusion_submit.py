"""Submitting DataExport jobs: the documented body, validation before sending, and never two jobs
for one run token, even when the POST fails after it may have reached Fusion."""

from datetime import date
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from fusion_extract.errors import MessageError, TransientError, UnsafeInputError, UpstreamError
from fusion_extract.fusion.batch import DESCRIPTION_LIMIT
from fusion_extract.models import ExtractRequest, Mode, Phase, RunAtTimes
from tests.unit.fusion_support import BASE, IDCS, JOBS, add_token, json_body, stack

TOKEN = "run-5f3a9c"
IDCS_PREFIX = IDCS + "/"
CREATED = {"Location": JOBS + "/44046"}


@pytest.fixture
def fake():
    with responses.RequestsMock() as mock:
        yield mock


def listing(*items: dict[str, Any], **paging: Any) -> dict[str, Any]:
    return {"items": list(items), **paging}


def job_item(job_id: int, description: str) -> dict[str, Any]:
    return {
        "jobRequestId": job_id,
        "jobRequest": {"jobDefinitionName": "DataExport", "description": description},
    }


def posts(fake: responses.RequestsMock) -> list[Any]:
    return [call for call in fake.calls if call.request.method == "POST" and call.request.url == JOBS]


def test_submit_posts_documented_body_and_returns_id_from_location(fake):
    # Given Fusion accepts the job
    add_token(fake)
    fake.add(responses.POST, JOBS, status=202, headers=CREATED)
    client = stack()

    # When an incremental extract is submitted
    job_id = client.batch.submit(ExtractRequest("SalesExtract", Mode.INCREMENTAL), TOKEN)

    # Then the body is the documented DataExport request, carrying the run token
    assert job_id == "44046"
    assert json_body(posts(fake)[0]) == {
        "serviceName": "boss",
        "jobDefinitionName": "DataExport",
        "description": f"fusion-extract-{TOKEN}::SalesExtract::Incremental::Immediate",
        "requestParameters": {
            "submit.argument1": "SalesExtract",
            "submit.argument2": "Incremental Data Extract",
        },
    }


def test_submit_with_run_at_times_sends_us_dates_and_hhmm_times(fake):
    add_token(fake)
    fake.add(responses.POST, JOBS, status=202, headers=CREATED)
    window = RunAtTimes(1, "HOUR", date(2025, 12, 16), date(2025, 12, 17), "1930", "0230")

    stack().batch.submit(ExtractRequest("SalesExtract", Mode.FULL, window), TOKEN)

    body = json_body(posts(fake)[0])
    assert body["requestParameters"]["submit.argument2"] == "Full Data Extract"
    assert body["runAtTimes"] == {
        "fixedInterval": {"interval": 1, "timeUnit": "HOUR"},
        "startDate": "12/16/2025",
        "endDate": "12/17/2025",
        "startTime": "1930",
        "endTime": "0230",
    }


@pytest.mark.parametrize(
    ("unit", "word"), [("MINUTE", "Minutely"), ("HOUR", "Hourly"), ("DAY", "Daily"), ("WEEK", "Weekly")]
)
def test_submit_recurring_job_names_its_recurrence_in_the_fourth_part(fake, unit, word):
    add_token(fake)
    fake.add(responses.POST, JOBS, status=202, headers=CREATED)
    window = RunAtTimes(2, unit, date(2025, 12, 16), date(2025, 12, 17), "1930", "0230")

    stack().batch.submit(ExtractRequest("SalesExtract", Mode.FULL, window), TOKEN)

    assert json_body(posts(fake)[0])["description"] == f"fusion-extract-{TOKEN}::SalesExtract::Full::{word}"


def test_submit_description_of_the_longest_names_stays_within_the_limit(fake):
    # Given the longest run token and an extract name of 100 characters (what messages allow)
    add_token(fake)
    fake.add(responses.POST, JOBS, status=202, headers=CREATED)
    token, extract = "t" * 64, "E" * 100

    # When it is submitted
    stack().batch.submit(ExtractRequest(extract, Mode.INCREMENTAL), token)

    # Then the four-part description fits
    description = json_body(posts(fake)[0])["description"]
    assert description.split("::") == [f"fusion-extract-{token}", extract, "Incremental", "Immediate"]
    assert len(description) <= DESCRIPTION_LIMIT


@pytest.mark.parametrize(
    ("request_", "token", "problem"),
    [
        (ExtractRequest("", Mode.FULL), TOKEN, "extract name '' must be non-empty"),
        (ExtractRequest("   ", Mode.FULL), TOKEN, "must be non-empty"),
        (ExtractRequest("Sales\nExtract", Mode.FULL), TOKEN, "without control characters"),
        (ExtractRequest("Sales::x", Mode.FULL), TOKEN, "must not contain '::'"),
        (ExtractRequest("E" * 200, Mode.FULL), TOKEN, "too long for the job description"),
        (ExtractRequest("Sales", Mode.FULL), "", "run token '' must be"),
        (ExtractRequest("Sales", Mode.FULL), "bad token::x", "run token 'bad token::x' must be"),
    ],
)
def test_submit_invalid_request_raises_message_error_before_any_call(fake, request_, token, problem):
    with pytest.raises(MessageError, match=problem):
        stack().batch.submit(request_, token)

    assert len(fake.calls) == 0


def test_submit_when_post_times_out_finds_the_job_instead_of_posting_again(fake):
    # Given the POST reaches Fusion but the answer is lost to a read timeout
    add_token(fake)
    fake.add(responses.POST, JOBS, body=requests.exceptions.ReadTimeout("read timed out"))
    fake.add(
        responses.GET,
        JOBS,
        json=listing(
            job_item(44045, "Other::full::run-other"), job_item(44046, f"SalesExtract::full::{TOKEN}")
        ),
    )
    client = stack()

    # When the extract is submitted
    job_id = client.batch.submit(ExtractRequest("SalesExtract", Mode.FULL), TOKEN)

    # Then, after one backoff, the listing found the job by its run token, and no second POST went out
    assert job_id == "44046"
    assert len(posts(fake)) == 1
    assert client.clock.sleeps == [0.5]


def test_submit_when_5xx_and_no_job_listed_posts_again(fake):
    # Given Fusion fails the first POST with 503 and created nothing
    add_token(fake)
    fake.add(responses.POST, JOBS, status=503, headers={"Retry-After": "5"})
    fake.add(responses.GET, JOBS, json=listing())
    fake.add(responses.POST, JOBS, status=202, headers=CREATED)
    client = stack()

    # When the extract is submitted
    job_id = client.batch.submit(ExtractRequest("SalesExtract", Mode.FULL), TOKEN)

    # Then it waited as asked, looked, found nothing, and posted once more
    assert job_id == "44046"
    assert len(posts(fake)) == 2
    assert client.clock.sleeps == [5.0]


def test_submit_when_every_post_fails_raises_transient_error(fake):
    add_token(fake)
    for _ in range(3):
        fake.add(responses.POST, JOBS, body=requests.ConnectionError("connection reset"))
    for _ in range(2):
        fake.add(responses.GET, JOBS, json=listing())
    client = stack(max_attempts=3)

    with pytest.raises(TransientError, match=r"POST .* failed: ConnectionError"):
        client.batch.submit(ExtractRequest("SalesExtract", Mode.FULL), TOKEN)

    assert len(posts(fake)) == 3


def test_submit_with_resume_returns_existing_job_without_posting(fake):
    add_token(fake)
    fake.add(responses.GET, JOBS, json=listing(job_item(44046, f"SalesExtract::full::{TOKEN}")))

    job_id = stack().batch.submit(ExtractRequest("SalesExtract", Mode.FULL), TOKEN, resume=True)

    assert job_id == "44046"
    assert posts(fake) == []


def test_submit_with_resume_and_no_job_posts(fake):
    add_token(fake)
    fake.add(responses.GET, JOBS, json=listing(job_item(1, "SalesExtract::full::run-older")))
    fake.add(responses.POST, JOBS, status=202, headers=CREATED)

    job_id = stack().batch.submit(ExtractRequest("SalesExtract", Mode.FULL), TOKEN, resume=True)

    assert job_id == "44046"
    assert len(posts(fake)) == 1


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example.com/api/saas-batch/jobscheduler/v1/jobRequests/44046",
        "http://fa-abc.fa.example.com/api/saas-batch/jobscheduler/v1/jobRequests/44046",
        "https://internal-lb.example.net:8443/elsewhere/jobRequests/44046/",
    ],
)
def test_submit_takes_the_job_id_from_any_location_and_sends_nothing_to_its_host(fake, location):
    # Given Fusion answers the submit with a Location on another host, scheme or path
    add_token(fake)
    fake.add(responses.POST, JOBS, status=202, headers={"Location": location})
    fake.add(responses.GET, JOBS + "/44046", json={"jobDetails": {"jobStatus": "RUNNING"}})
    client = stack()

    # When a job is submitted and its status read
    job_id = client.batch.submit(ExtractRequest("SalesExtract", Mode.FULL), TOKEN)
    client.batch.job_status(job_id)

    # Then the id came from the Location's last path segment, and every call went to the configured host
    assert job_id == "44046"
    assert all(call.request.url.startswith((BASE + "/", IDCS_PREFIX)) for call in fake.calls)


@pytest.mark.parametrize(
    "location", [JOBS + "/..%2F..%2Fx", JOBS + "/a%20b", JOBS + "/a b", "https://evil.example.com/"]
)
def test_submit_when_location_has_no_plain_job_id_raises_unsafe_input(fake, location):
    add_token(fake)
    fake.add(responses.POST, JOBS, status=202, headers={"Location": location})

    with pytest.raises(UnsafeInputError, match="refused"):
        stack().batch.submit(ExtractRequest("SalesExtract", Mode.FULL), TOKEN)


def test_submit_relative_location_is_resolved_against_the_base(fake):
    add_token(fake)
    fake.add(
        responses.POST,
        JOBS,
        status=202,
        headers={"Location": "/api/saas-batch/jobscheduler/v1/jobRequests/7/"},
    )

    assert stack().batch.submit(ExtractRequest("SalesExtract", Mode.FULL), TOKEN) == "7"


def test_submit_without_location_raises_upstream_error_suggesting_resume(fake):
    add_token(fake)
    fake.add(responses.POST, JOBS, status=202)

    with pytest.raises(
        UpstreamError, match="without a Location header; the job may exist: retry with resume"
    ):
        stack().batch.submit(ExtractRequest("SalesExtract", Mode.FULL), TOKEN)


def test_submit_when_fusion_rejects_the_request_is_not_retried(fake):
    add_token(fake)
    fake.add(responses.POST, JOBS, status=400, json={"detail": "Extract SalesExtract not found"})

    with pytest.raises(UpstreamError, match=r"answered 400: .*Extract SalesExtract not found"):
        stack().batch.submit(ExtractRequest("SalesExtract", Mode.FULL), TOKEN)

    assert len(posts(fake)) == 1


@pytest.mark.parametrize("status", [400, 404, 422])
def test_submit_of_an_extract_fusion_refuses_is_permanent_and_posted_once(fake, status):
    # Given a pod that refuses a mistyped extract at submit, instead of failing the job later
    add_token(fake)
    fake.add(responses.POST, JOBS, status=status, json={"detail": "extract definition Slaes does not exist"})

    # When it is submitted, Then the error is permanent and nothing was posted again
    with pytest.raises(UpstreamError, match=f"answered {status}: .*Slaes does not exist") as caught:
        stack().batch.submit(ExtractRequest("Slaes", Mode.FULL), TOKEN)

    assert not caught.value.retryable
    assert len(posts(fake)) == 1


def test_find_job_follows_pages_until_the_run_token_matches(fake):
    # Given the job of this run is on the second page, with the description at the top level
    add_token(fake)
    fake.add(
        responses.GET,
        JOBS,
        match=[matchers.query_param_matcher({})],
        json=listing(job_item(1, "A::full::run-a"), job_item(2, "B::full::run-b"), hasMore=True, limit=2),
    )
    fake.add(
        responses.GET,
        JOBS,
        match=[matchers.query_param_matcher({"offset": "2", "limit": "2"})],
        json=listing({"jobRequestId": 3, "description": f"C::full::{TOKEN}"}, hasMore=False),
    )

    # When the job is looked up by run token
    found = stack().batch.find_job(TOKEN)

    # Then it is found on the second page
    assert found == "3"


def test_find_job_finds_the_token_in_the_first_part_of_a_documented_description(fake):
    add_token(fake)
    fake.add(
        responses.GET,
        JOBS,
        json=listing(
            job_item(1, "fusion-extract-run-other::SalesExtract::Full::Immediate"),
            job_item(2, f"fusion-extract-{TOKEN}::SalesExtract::Full::Immediate"),
        ),
    )

    assert stack().batch.find_job(TOKEN) == "2"


def test_find_job_still_finds_a_job_submitted_by_the_previous_release(fake):
    # Given a job described the old way, the token as the last part
    add_token(fake)
    fake.add(responses.GET, JOBS, json=listing(job_item(7, f"SalesExtract::full::{TOKEN}")))

    assert stack().batch.find_job(TOKEN) == "7"


@pytest.mark.parametrize(
    "description",
    [
        f"fusion-extract-{TOKEN}-later::SalesExtract::Full::Immediate",
        f"fusion-extract-x{TOKEN}::SalesExtract::Full::Immediate",
        f"{TOKEN}::SalesExtract::Full::Immediate",
        f"nightly::{TOKEN}::Full::Immediate",
    ],
)
def test_find_job_does_not_match_the_token_elsewhere_or_partly(fake, description):
    add_token(fake)
    fake.add(responses.GET, JOBS, json=listing(job_item(1, description)))

    assert stack().batch.find_job(TOKEN) is None


def test_find_job_does_not_match_a_token_that_only_starts_the_same(fake):
    add_token(fake)
    fake.add(
        responses.GET, JOBS, json=listing(job_item(1, f"A::full::{TOKEN}-later"), job_item(2, "no token"))
    )

    assert stack().batch.find_job(TOKEN) is None


def test_find_job_match_without_job_id_raises_upstream_error(fake):
    add_token(fake)
    fake.add(responses.GET, JOBS, json=listing({"description": f"A::full::{TOKEN}"}))

    with pytest.raises(UpstreamError, match="has no jobRequestId"):
        stack().batch.find_job(TOKEN)


def test_job_status_reads_the_job_request(fake):
    add_token(fake)
    fake.add(
        responses.GET,
        JOBS + "/44046",
        json={
            "jobDetails": {"jobRequestId": 44046, "jobProgress": {"status": "SUCCEEDED", "completed": True}}
        },
    )

    status = stack().batch.job_status("44046")

    assert (status.job_id, status.status, status.phase) == ("44046", "SUCCEEDED", Phase.SUCCEEDED)


def test_job_status_of_unsafe_job_id_sends_nothing(fake):
    with pytest.raises(UnsafeInputError, match="refused job request id"):
        stack().batch.job_status("../../admin")

    assert len(fake.calls) == 0


def test_job_status_non_json_answer_raises_upstream_error(fake):
    add_token(fake)
    fake.add(responses.GET, JOBS + "/44046", body="<html>maintenance</html>")

    with pytest.raises(UpstreamError, match="without a JSON object"):
        stack().batch.job_status("44046")
