"""Where the bearer token may go (docs/security.md), against the emulated Fusion over HTTPS: nothing
is ever sent to a host Fusion names other than the configured one. Links with a Batch Processing API path
on another host or over http are rebuilt on the configured host; anything else is refused before any
request, and the emulator's record shows the token reached nothing but the Batch Processing API."""

from pathlib import Path

import pytest

from fusion_extract.errors import UnsafeInputError
from tests.emulators.fusion import BadLink, ExtractScenario
from tests.integration.fusion_stack import FULL_SALES, fusion_stack


@pytest.mark.parametrize(
    ("bad_link", "reason"),
    [
        (BadLink.OUTSIDE_API, "its path is not under /api/saas-batch/"),
        (BadLink.FOREIGN_OUTSIDE_API, "it is not on the Fusion host"),
    ],
)
def test_output_files_with_a_download_link_breaking_a_url_rule_raise_unsafe_input_and_send_no_token(
    tmp_path: Path, bad_link: BadLink, reason: str
) -> None:
    # Given a finished job whose first file's download link breaks a URL rule and is no API path
    with fusion_stack(tmp_path, ExtractScenario(bad_link=bad_link)) as stack:
        job = stack.finished_job()

        # When its output files are listed
        with pytest.raises(UnsafeInputError, match=f"refused URL .*: {reason}"):
            stack.client.output_files(job)

        # Then nothing was downloaded and every request, with its token, went to the Fusion API only
        assert stack.to_fusion("/content") == []
        assert stack.stray_requests() == []


@pytest.mark.parametrize("bad_link", [BadLink.FOREIGN_HOST, BadLink.PLAIN_HTTP])
def test_output_files_with_an_api_link_elsewhere_download_from_the_configured_host(
    tmp_path: Path, bad_link: BadLink
) -> None:
    # Given a finished job whose first file's link names another host, or http, with an API path
    with fusion_stack(tmp_path, ExtractScenario(bad_link=bad_link)) as stack:
        job = stack.finished_job()

        # When its files are listed and the first one downloaded
        first = stack.client.output_files(job)[0]
        data = b"".join(stack.client.download(first))

        # Then it came whole from the configured host over https, and nothing went anywhere else
        assert len(data) == first.size
        assert first.url.startswith(stack.fusion.base_url + "/api/saas-batch/")
        assert stack.stray_requests() == []


def test_submit_answered_with_a_location_on_another_host_takes_the_id_and_sends_nothing_there(
    tmp_path: Path,
) -> None:
    # Given Fusion answers the submit with a Location on another host
    with fusion_stack(tmp_path, ExtractScenario(location_foreign_host=True)) as stack:
        # When a job is submitted and its status read
        job = stack.client.submit(FULL_SALES, "run-1")
        status = stack.client.job_status(job)

        # Then the id is the Location's last segment, and both calls went to the configured host only
        assert job == str(stack.fusion.jobs[0].id)
        assert status.job_id == job
        assert [served.method for served in stack.fusion.requests_to("fusion")] == ["POST", "GET"]
        assert stack.stray_requests() == []
