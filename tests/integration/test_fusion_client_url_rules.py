"""Where the bearer token may go (README: Security rules), against the emulated Fusion over HTTPS: links
Fusion hands out that leave the configured host, drop TLS or leave /api/saas-batch/ are refused before
any request, and the emulator's record shows the token reached nothing but the Batch Processing API."""

from pathlib import Path

import pytest

from fusion_extract.errors import UnsafeInputError
from tests.emulators.fusion import BadLink, ExtractScenario
from tests.integration.fusion_stack import FULL_SALES, fusion_stack


@pytest.mark.parametrize(
    ("bad_link", "reason"),
    [
        (BadLink.FOREIGN_HOST, "it is not on the Fusion host"),
        (BadLink.PLAIN_HTTP, "it is not https"),
        (BadLink.OUTSIDE_API, "its path is not under /api/saas-batch/"),
    ],
)
def test_output_files_with_a_download_link_breaking_a_url_rule_raise_unsafe_input_and_send_no_token(
    tmp_path: Path, bad_link: BadLink, reason: str
) -> None:
    # Given a finished job whose first file's download link breaks a URL rule
    with fusion_stack(tmp_path, ExtractScenario(bad_link=bad_link)) as stack:
        job = stack.finished_job()

        # When its output files are listed
        with pytest.raises(UnsafeInputError, match=f"refused URL .*: {reason}"):
            stack.client.output_files(job)

        # Then nothing was downloaded and every request, with its token, went to the Fusion API only
        assert stack.to_fusion("/content") == []
        assert stack.stray_requests() == []


def test_submit_answered_with_a_location_on_another_host_raises_unsafe_input_and_sends_no_token(
    tmp_path: Path,
) -> None:
    # Given Fusion answers the submit with a Location on another host
    with fusion_stack(tmp_path, ExtractScenario(location_foreign_host=True)) as stack:
        # When a job is submitted
        with pytest.raises(UnsafeInputError, match=r"refused URL .*: it is not on the Fusion host"):
            stack.client.submit(FULL_SALES, "run-1")

        # Then the link was not followed: one POST, and no request reached the other host
        assert [served.method for served in stack.fusion.requests_to("fusion")] == ["POST"]
        assert stack.stray_requests() == []
