"""docs/security.md's URL rules: the token goes only to https on the Fusion host under /api/saas-batch/,
and remote names become safe single path segments."""

import pytest

from fusion_extract.errors import UnsafeInputError
from fusion_extract.fusion.urls import (
    api_url,
    endpoint,
    job_id,
    job_id_from_location,
    rebased_api_url,
    safe_file_name,
)

BASE = "https://fa-abc.fa.example.com"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (BASE + "/api/saas-batch/jobscheduler/v1/jobRequests/44046", None),
        (
            "/api/saas-batch/jobscheduler/v1/jobRequests/44046",
            BASE + "/api/saas-batch/jobscheduler/v1/jobRequests/44046",
        ),
        ("api/saas-batch/x?offset=10", BASE + "/api/saas-batch/x?offset=10"),
        (
            "https://FA-ABC.fa.example.com:443/api/saas-batch/x",
            "https://FA-ABC.fa.example.com:443/api/saas-batch/x",
        ),
        (BASE + "/api/saas-batch/x#fragment", BASE + "/api/saas-batch/x"),
    ],
)
def test_api_url_when_link_on_fusion_api_returns_resolved_url(link, expected):
    assert api_url(BASE, link) == (expected or link)


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        ("https://evil.example.com/api/saas-batch/x", "not on the Fusion host"),
        ("//evil.example.com/api/saas-batch/x", "not on the Fusion host"),
        ("https://fa-abc.fa.example.com.evil.com/api/saas-batch/x", "not on the Fusion host"),
        ("https://fa-abc.fa.example.com:8443/api/saas-batch/x", "not on the Fusion host"),
        ("http://fa-abc.fa.example.com/api/saas-batch/x", "not https"),
        ("ftp://fa-abc.fa.example.com/api/saas-batch/x", "not https"),
        (BASE + "/fscmRestApi/resources/x", "not under /api/saas-batch/"),
        (BASE + "/api/saas-batch-other/x", "not under /api/saas-batch/"),
        (BASE + "/api/saas-batch/../admin", "not under /api/saas-batch/"),
        (BASE + "/api/saas-batch/%2e%2e/%2e%2e/admin", "not under /api/saas-batch/"),
        (BASE + "/api/saas-batch/a\\b", "not under /api/saas-batch/"),
        ("https://user:pw@fa-abc.fa.example.com/api/saas-batch/x", "user information"),
        ("https://fa-abc.fa.example.com:99999/api/saas-batch/x", "port is invalid"),
        (BASE + "/api/saas-batch/a b", "spaces or control characters"),
        (BASE + "/api/saas-batch/a\r\nHost: evil", "spaces or control characters"),
    ],
)
def test_api_url_when_link_breaks_a_rule_refuses_naming_the_url(link, reason):
    with pytest.raises(UnsafeInputError) as caught:
        api_url(BASE, link)

    assert reason in str(caught.value)
    assert repr(link[:40])[:-1] in str(caught.value)


def test_endpoint_keeps_each_variable_part_one_segment():
    url = endpoint(BASE, "jobfilemanager", "v1", "jobRequests", "7", "outputFiles", "a/b c.zip", "content")

    assert url == BASE + "/api/saas-batch/jobfilemanager/v1/jobRequests/7/outputFiles/a%2Fb%20c.zip/content"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("44055_S_Test_carriersExtract_1763985379675_20251218_074210.849135_1.zip", None),
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\system32\\evil.zip", "evil.zip"),
        ("/abs/path/file.csv", "file.csv"),
        ("bad\x00na\x1bme\n.zip", "badname.zip"),
        ("résumé data (1).zip", "r_sum__data__1_.zip"),
        ("...", "..."),
        ("a" * 300, "a" * 255),
    ],
)
def test_safe_file_name_reduces_remote_name_to_one_plain_segment(name, safe):
    assert safe_file_name(name) == (safe or name)


@pytest.mark.parametrize("name", ["", ".", "..", "dir/", "a/..", "\x00\x01", "x\\.."])
def test_safe_file_name_when_nothing_safe_remains_refuses(name):
    with pytest.raises(UnsafeInputError, match="refused file name"):
        safe_file_name(name)


@pytest.mark.parametrize("value", ["44046", "job-1_a.b"])
def test_job_id_when_plain_accepts(value):
    assert job_id(value) == value


@pytest.mark.parametrize("value", ["", ".", "..", "../44046", "44/46", "4 4", "a" * 65, ".hidden"])
def test_job_id_when_not_plain_refuses_naming_it(value):
    with pytest.raises(UnsafeInputError, match="refused job request id"):
        job_id(value)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (BASE + "/api/saas-batch/jobscheduler/v1/jobRequests/44046", "44046"),
        ("https://other.example.com:8443/api/saas-batch/jobscheduler/v1/jobRequests/44046/", "44046"),
        ("http://lb/x/44046?trace=1#f", "44046"),
        ("/api/saas-batch/jobscheduler/v1/jobRequests/7", "7"),
        ("jobRequests/job-1_a.b", "job-1_a.b"),
    ],
)
def test_job_id_from_location_takes_the_last_path_segment_whatever_the_host(location, expected):
    assert job_id_from_location(location) == expected


@pytest.mark.parametrize(
    "location", ["", "https://h/", "https://h/x/..%2Fadmin", "https://h/x/a%20b", "https://h/x/a\r\nb"]
)
def test_job_id_from_location_without_a_plain_last_segment_refuses(location):
    with pytest.raises(UnsafeInputError, match="refused"):
        job_id_from_location(location)


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example.com/api/saas-batch/a/b?x=1",
        "http://fa-abc.fa.example.com/api/saas-batch/a/b?x=1",
        "https://user:pw@evil.example.com:9/api/saas-batch/a/b?x=1#frag",
        BASE + "/api/saas-batch/a/b?x=1",
    ],
)
def test_rebased_api_url_moves_an_api_path_onto_the_fusion_host(link):
    assert rebased_api_url(BASE, link) == BASE + "/api/saas-batch/a/b?x=1"


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        ("https://evil.example.com/download/a", "not on the Fusion host"),
        ("https://evil.example.com/api/saas-batch/../admin", "not on the Fusion host"),
        ("https://evil.example.com/api/saas-batch/%2e%2e/admin", "not on the Fusion host"),
        ("ftp://evil.example.com/api/saas-batch/a", "not https"),
        (BASE + "/elsewhere", "not under /api/saas-batch/"),
        ("https://evil.example.com/api/saas-batch/a b", "spaces or control characters"),
    ],
)
def test_rebased_api_url_refuses_what_is_not_an_api_path(link, reason):
    with pytest.raises(UnsafeInputError, match=reason):
        rebased_api_url(BASE, link)
