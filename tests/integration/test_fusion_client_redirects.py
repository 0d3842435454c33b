"""Downloads redirected by the emulated Fusion over HTTPS: followed on the Fusion API with the token, to a
host of DOWNLOAD_HOSTS without it (a second name of the loopback server, `localhost`), never elsewhere,
and never more than three times."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from fusion_extract.errors import UnsafeInputError, UpstreamError
from fusion_extract.fusion.batch import BatchClient, build_batch_client
from tests.emulators.fusion import ExtractScenario, Redirect, ServedRequest
from tests.integration.fusion_stack import FusionStack, fusion_stack, settings_for


def client_allowing(stack: FusionStack, hosts: str) -> BatchClient:
    """A client like the stack's, configured with DOWNLOAD_HOSTS."""
    settings = settings_for(stack.fusion, DOWNLOAD_HOSTS=hosts)
    return build_batch_client(settings, stack.credentials, stack.clock, session=requests.Session())


def localhost(stack: FusionStack) -> str:
    return f"localhost:{urlsplit(stack.fusion.base_url).port}"


def storage_requests(stack: FusionStack) -> list[ServedRequest]:
    return [served for served in stack.fusion.requests_to("fusion") if served.path.startswith("/storage/")]


def test_download_redirected_on_the_fusion_host_keeps_the_token_and_verifies(tmp_path: Path) -> None:
    # Given a job whose downloads redirect once on the Fusion host
    with fusion_stack(tmp_path, ExtractScenario(redirect_downloads=Redirect.SAME_HOST)) as stack:
        job = stack.finished_job()
        first = stack.client.output_files(job)[0]

        # When the first file is downloaded
        data = b"".join(stack.client.download(first))

        # Then both requests carried the token, and the bytes match the listed checksum
        assert hashlib.sha256(data).hexdigest() == first.sha256
        bearers = stack.bearers("/content")
        assert len(bearers) == 2 and all(bearer.startswith("Bearer ") for bearer in bearers)
        assert stack.stray_requests() == []


def test_download_redirected_to_an_allowed_host_is_followed_without_the_token(tmp_path: Path) -> None:
    # Given downloads redirect to another host, which DOWNLOAD_HOSTS lists
    with fusion_stack(tmp_path, ExtractScenario(redirect_downloads=Redirect.OTHER_HOST)) as stack:
        job = stack.finished_job()
        client = client_allowing(stack, localhost(stack))
        first = client.output_files(job)[0]

        # When the first file is downloaded
        data = b"".join(client.download(first))

        # Then it came from the other host, which never saw the token
        assert hashlib.sha256(data).hexdigest() == first.sha256
        [served] = storage_requests(stack)
        assert served.host == localhost(stack)
        assert "authorization" not in served.headers


def test_download_redirected_to_a_host_not_allowed_is_refused_before_any_request(tmp_path: Path) -> None:
    # Given downloads redirect to another host, and DOWNLOAD_HOSTS is empty
    with fusion_stack(tmp_path, ExtractScenario(redirect_downloads=Redirect.OTHER_HOST)) as stack:
        job = stack.finished_job()
        first = stack.client.output_files(job)[0]

        # When the file is downloaded, Then it is refused and nothing reached the other host
        with pytest.raises(UnsafeInputError, match="neither the Fusion host nor in DOWNLOAD_HOSTS"):
            b"".join(stack.client.download(first))
        assert storage_requests(stack) == []


def test_download_redirected_for_ever_stops_after_three_hops(tmp_path: Path) -> None:
    with fusion_stack(tmp_path, ExtractScenario(redirect_downloads=Redirect.LOOP)) as stack:
        job = stack.finished_job()
        first = stack.client.output_files(job)[0]

        with pytest.raises(UpstreamError, match="more than 3 redirects"):
            b"".join(stack.client.download(first))
        assert len(stack.to_fusion("/content")) == 4
