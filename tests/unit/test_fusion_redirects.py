"""Downloads follow redirects, at most three, https only: on the Fusion host's API with the bearer token,
to a host listed in DOWNLOAD_HOSTS without it, anywhere else not at all. Other calls never follow."""

from __future__ import annotations

import pytest
import requests
import responses

from fusion_extract.config import Settings
from fusion_extract.errors import ConfigError, TransientError, UnsafeInputError, UpstreamError
from fusion_extract.fusion.batch import BatchClient
from fusion_extract.fusion.http import Bearer, HttpClient
from fusion_extract.models import OutputFile
from fusion_extract.retry import RetryPolicy
from tests.unit.fusion_support import BASE, FILES, TIMEOUT, add_token, bearer_of, settings_env, stack

URL = FILES + "/44046/outputFiles/part_1.zip/content"
OTHER = FILES + "/44046/outputFiles/part_1.zip/content?node=2"
STORAGE = "https://objectstorage.example.com/p/signed/part_1.zip"
CONTENT = b"PK\x03\x04" + bytes(range(256)) * 4


@pytest.fixture
def fake():
    with responses.RequestsMock() as mock:
        add_token(mock, "secret-token")
        yield mock


def client(download_hosts: frozenset[tuple[str, int]] = frozenset()) -> BatchClient:
    """The stack's client, with the extra hosts downloads may be redirected to."""
    base = stack()
    retry = RetryPolicy(base.clock, max_attempts=3, max_seconds=300.0, rand=lambda: 0.5)
    http = HttpClient(
        requests.Session(),
        timeout=TIMEOUT,
        ca_bundle=None,
        retry=retry,
        bearer=Bearer(base.tokens, BASE),
        download_hosts=download_hosts,
    )
    return BatchClient(http, base_url=BASE)


def listed() -> OutputFile:
    return OutputFile("part_1.zip", len(CONTENT), None, URL)


def redirect(fake, url: str, to: str, status: int = 302) -> None:
    fake.add(responses.GET, url, status=status, headers={"Location": to})


def calls_to(fake, prefix: str) -> list[responses.Call]:
    return [call for call in fake.calls if call.request.url.startswith(prefix)]


def test_download_redirected_on_the_fusion_api_keeps_the_token(fake):
    # Given /content redirects (307) to another API URL on the Fusion host
    redirect(fake, URL, OTHER, 307)
    fake.add(responses.GET, OTHER, body=CONTENT)

    # When the file is downloaded
    data = b"".join(client().download(listed()))

    # Then the redirect was followed, with the token both times
    assert data == CONTENT
    assert [bearer_of(call) for call in calls_to(fake, BASE)] == ["Bearer secret-token"] * 2


def test_download_redirected_to_an_allowed_host_follows_without_the_token(fake):
    # Given /content redirects to a storage host listed in DOWNLOAD_HOSTS
    redirect(fake, URL, STORAGE)
    fake.add(responses.GET, STORAGE, body=CONTENT)

    # When the file is downloaded
    data = b"".join(client(frozenset({("objectstorage.example.com", 443)})).download(listed()))

    # Then it came from the storage host, which never saw the token
    assert data == CONTENT
    [storage] = calls_to(fake, STORAGE)
    assert "Authorization" not in storage.request.headers
    assert storage.request.headers["Accept-Encoding"] == "identity"


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("https://evil.example.com/steal", "redirected to another host"),
        ("https://objectstorage.example.com:8443/p/part_1.zip", "redirected to another host"),
        ("http://objectstorage.example.com/p/part_1.zip", "not https"),
        ("http://" + BASE.removeprefix("https://") + "/api/saas-batch/x", "not https"),
        (BASE + "/fscmRestApi/resources/latest/workers", "not under /api/saas-batch/"),
        ("https://user:pw@objectstorage.example.com/p", "user information"),
    ],
)
def test_download_redirect_anywhere_else_is_refused_and_sends_nothing_there(fake, target, problem):
    # Given /content redirects somewhere neither Fusion's API nor on the allow-list (nor https)
    redirect(fake, URL, target)

    # When the file is downloaded
    with pytest.raises(UnsafeInputError, match=problem):
        b"".join(client(frozenset({("objectstorage.example.com", 443)})).download(listed()))

    # Then only the token request and the first GET went out
    assert len(fake.calls) == 2


def test_download_follows_three_redirects(fake):
    hops = [f"{URL}?hop={n}" for n in range(1, 4)]
    for source, target in zip([URL, *hops[:-1]], hops, strict=True):
        redirect(fake, source, target)
    fake.add(responses.GET, hops[-1], body=CONTENT)

    assert b"".join(client().download(listed())) == CONTENT


def test_download_with_a_fourth_redirect_is_refused_permanently(fake):
    # Given a chain of redirects longer than three
    hops = [f"{URL}?hop={n}" for n in range(1, 5)]
    for source, target in zip([URL, *hops[:-1]], hops, strict=True):
        redirect(fake, source, target)

    # When the file is downloaded
    with pytest.raises(UpstreamError, match="more than 3 redirects") as caught:
        b"".join(client().download(listed()))

    # Then it gave up after four requests, and not as a transient failure
    assert not isinstance(caught.value, TransientError)
    assert len(calls_to(fake, BASE)) == 4


def test_download_redirect_to_an_allowed_host_that_redirects_relatively_stays_tokenless(fake):
    redirect(fake, URL, STORAGE)
    redirect(fake, STORAGE, "/p/signed/part_1.zip?retry=1")
    fake.add(responses.GET, STORAGE.replace("signed/part_1.zip", "signed/part_1.zip?retry=1"), body=CONTENT)

    data = b"".join(client(frozenset({("objectstorage.example.com", 443)})).download(listed()))

    assert data == CONTENT
    assert [bearer_of(call) for call in calls_to(fake, "https://objectstorage.")] == ["", ""]


def test_status_reads_still_never_follow_redirects(fake):
    status_url = BASE + "/api/saas-batch/jobscheduler/v1/jobRequests/44046"
    redirect(fake, status_url, status_url + "?again=1")

    with pytest.raises(UpstreamError, match="redirects are not followed"):
        client(frozenset({("objectstorage.example.com", 443)})).job_status("44046")


def test_settings_download_hosts_read_as_host_and_port():
    env = settings_env()

    assert Settings.from_mapping(env).download_hosts == ()
    hosts = Settings.from_mapping(env | {"DOWNLOAD_HOSTS": " Storage.Example.com, files.example.net:8443,"})
    assert hosts.download_hosts == (("storage.example.com", 443), ("files.example.net", 8443))
    for bad in ("https://storage.example.com", "host/path", "host:99999", "a b"):
        with pytest.raises(ConfigError, match="DOWNLOAD_HOSTS"):
            Settings.from_mapping(env | {"DOWNLOAD_HOSTS": bad})
