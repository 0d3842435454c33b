"""Listing a job's output files: every page in any paging style, safe names, checked links and checksums."""

from typing import Any
from urllib.parse import quote

import pytest
import responses
from responses import matchers

from fusion_extract.errors import UnsafeInputError, UpstreamError
from fusion_extract.models import OutputFile
from tests.unit.fusion_support import BASE, FILES, add_token, stack

LIST_URL = FILES + "/44046/outputFiles"
HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
NAME = "44055_S_Test_carriersExtract_1763985379675_20251218_074210.849135_1.zip"


@pytest.fixture
def fake():
    with responses.RequestsMock() as mock:
        add_token(mock)
        yield mock


def item(
    name: Any = NAME, size: Any = 1024, checksum: Any = f"sha-256={HEX}", link: bool = True, **extra: Any
) -> dict[str, Any]:
    """One item as Oracle documents it."""
    entry: dict[str, Any] = {
        "fileName": name,
        "fileSize": size,
        "timeCreated": "2025-12-18 07:42:13.287",
        "checksum": checksum,
    }
    if link:
        entry["$context"] = {
            "links": {
                "$self": {"href": f"{LIST_URL}/{quote(str(name))}"},
                "enclosure": {"href": f"{LIST_URL}/{quote(str(name))}/content"},
            }
        }
    entry.update(extra)
    return entry


def page(url: str, params: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    return {"url": url, "match": [matchers.query_param_matcher(params)], "json": body}


def test_output_files_reads_the_documented_item(fake):
    fake.add(responses.GET, LIST_URL, json={"items": [item()], "totalItems": 1})

    files = stack().batch.output_files("44046")

    assert files == [
        OutputFile(
            name=NAME,
            size=1024,
            sha256=HEX,
            url=f"{LIST_URL}/{NAME}/content",
            listed_name=NAME,
        )
    ]


def test_output_files_of_a_job_with_no_output_is_empty(fake):
    fake.add(responses.GET, LIST_URL, json={"items": [], "totalItems": 0})

    assert stack().batch.output_files("44046") == []


def test_output_files_follows_has_more_with_offset_and_limit(fake):
    # Given three pages of two, one and one files, paged with hasMore/offset/limit
    fake.add(
        responses.GET, **page(LIST_URL, {}, {"items": [item("a"), item("b")], "hasMore": True, "limit": 2})
    )
    fake.add(
        responses.GET,
        **page(LIST_URL, {"offset": "2", "limit": "2"}, {"items": [item("c")], "hasMore": True, "count": 1}),
    )
    fake.add(
        responses.GET,
        **page(LIST_URL, {"offset": "3", "limit": "2"}, {"items": [item("d")], "hasMore": False}),
    )

    # When the files are listed
    files = stack().batch.output_files("44046")

    # Then every page was read, in order
    assert [file.name for file in files] == ["a", "b", "c", "d"]


def test_output_files_follows_next_links(fake):
    next_url = LIST_URL + "?cursor=abc"
    first = {
        "items": [item("a")],
        "links": [{"rel": "self", "href": LIST_URL}, {"rel": "next", "href": next_url}],
    }
    fake.add(responses.GET, **page(LIST_URL, {}, first))
    fake.add(responses.GET, **page(LIST_URL, {"cursor": "abc"}, {"items": [item("b")], "links": []}))

    files = stack().batch.output_files("44046")

    assert [file.name for file in files] == ["a", "b"]


def test_output_files_pages_by_total_items_when_that_is_all_there_is(fake):
    fake.add(responses.GET, **page(LIST_URL, {}, {"items": [item("a")], "totalItems": 2}))
    fake.add(
        responses.GET,
        **page(LIST_URL, {"offset": "1", "limit": "1"}, {"items": [item("b")], "totalItems": 2}),
    )

    assert [file.name for file in stack().batch.output_files("44046")] == ["a", "b"]


def test_output_files_when_server_ignores_offset_raises_instead_of_looping(fake):
    fake.add(responses.GET, LIST_URL, json={"items": [item("a")], "hasMore": True})
    fake.add(responses.GET, LIST_URL, json={"items": [item("a")], "hasMore": True})

    with pytest.raises(UpstreamError, match="paging not honoured"):
        stack().batch.output_files("44046")


def test_output_files_next_link_to_another_host_is_refused(fake):
    body = {
        "items": [item("a")],
        "links": [{"rel": "next", "href": "https://evil.example.com/api/saas-batch/x"}],
    }
    fake.add(responses.GET, LIST_URL, json=body)

    with pytest.raises(UnsafeInputError, match="not on the Fusion host"):
        stack().batch.output_files("44046")


def test_output_files_without_enclosure_link_builds_the_content_url(fake):
    fake.add(responses.GET, LIST_URL, json={"items": [item("part 1.zip", link=False)]})

    [file] = stack().batch.output_files("44046")

    assert file.name == "part_1.zip"
    assert file.url == f"{LIST_URL}/part%201.zip/content"


def test_output_files_reduces_hostile_names_and_keeps_the_checked_link(fake):
    fake.add(
        responses.GET,
        LIST_URL,
        json={
            "items": [
                item("../../etc/cron.d/evil.zip", link=False)
                | {"$context": {"links": {"enclosure": {"href": f"{LIST_URL}/evil.zip/content"}}}}
            ]
        },
    )

    [file] = stack().batch.output_files("44046")

    assert (file.name, file.url) == ("evil.zip", f"{LIST_URL}/evil.zip/content")
    assert file.listed_name == "../../etc/cron.d/evil.zip"  # as listed: what a manifest would name


def test_output_files_hostile_name_without_link_is_refused(fake):
    fake.add(responses.GET, LIST_URL, json={"items": [item("../../../admin", link=False)]})

    with pytest.raises(UnsafeInputError, match="not under /api/saas-batch/"):
        stack().batch.output_files("44046")


@pytest.mark.parametrize(
    "href",
    [
        "https://evil.example.com/api/saas-batch/jobfilemanager/v1/jobRequests/44046/outputFiles/f/content",
        "http://fa-abc.fa.example.com/api/saas-batch/jobfilemanager/v1/jobRequests/44046/outputFiles/f/content",
        "http://node7.internal:8080/api/saas-batch/jobfilemanager/v1/jobRequests/44046/outputFiles/f/content",
    ],
)
def test_output_files_download_link_with_an_api_path_elsewhere_is_rebuilt_on_the_fusion_host(fake, href):
    # Given a download link on another host, or over http, whose path is a Batch Processing API path
    fake.add(
        responses.GET,
        LIST_URL,
        json={"items": [item(link=False) | {"$context": {"links": {"enclosure": {"href": href}}}}]},
    )

    # When the output files are listed
    [file] = stack().batch.output_files("44046")

    # Then the link is the same path on the configured https host
    assert file.url == LIST_URL + "/f/content"


@pytest.mark.parametrize(
    ("href", "problem"),
    [
        ("https://evil.example.com/download/f.zip", "not on the Fusion host"),
        ("http://evil.example.com/content/f.zip", "not https"),
        ("https://evil.example.com/api/saas-batch/../../admin", "not on the Fusion host"),
        ("ftp://fa-abc.fa.example.com/api/saas-batch/f/content", "not https"),
        (BASE + "/content/f.zip", "not under /api/saas-batch/"),
    ],
)
def test_output_files_download_link_breaking_url_rules_is_refused(fake, href, problem):
    fake.add(
        responses.GET,
        LIST_URL,
        json={"items": [item(link=False) | {"$context": {"links": {"enclosure": {"href": href}}}}]},
    )

    with pytest.raises(UnsafeInputError, match=problem):
        stack().batch.output_files("44046")


@pytest.mark.parametrize(
    ("checksum", "expected"),
    [
        (f"SHA-256={HEX.upper()}", HEX),
        (None, None),
        ("", None),
    ],
)
def test_output_files_checksum_is_lower_case_hex_or_none(fake, checksum, expected):
    fake.add(responses.GET, LIST_URL, json={"items": [item(checksum=checksum)]})

    assert stack().batch.output_files("44046")[0].sha256 == expected


def test_output_files_size_as_digit_text_is_accepted(fake):
    fake.add(responses.GET, LIST_URL, json={"items": [item(size="2048")]})

    assert stack().batch.output_files("44046")[0].size == 2048


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"fileSize": 1}, "fileName is missing"),
        (item(name=""), "fileName is missing"),
        (item(name=7), "fileName is missing"),
        (item(size=None), "fileSize None is not a number of bytes"),
        (item(size=-1), "fileSize -1 is not a number"),
        (item(size=True), "fileSize True is not a number"),
        (item(size="1e3"), "fileSize '1e3' is not a number"),
        (item(checksum="md5=abc"), "checksum 'md5=abc' is not sha-256=<64 hex digits>"),
        (item(checksum="sha-256=" + HEX[:-1]), "checksum .* is not sha-256"),
        (item(checksum="sha-256=" + "g" * 64), "checksum .* is not sha-256"),
        (item(checksum=5), "checksum '5' is not sha-256"),
        (
            item(link=False) | {"$context": {"links": {"enclosure": {"href": 5}}}},
            r"\$context.links.enclosure.href",
        ),
        ("not an object", "item #0 is not an object"),
    ],
)
def test_output_files_malformed_item_raises_upstream_error_naming_field(fake, entry, problem):
    fake.add(responses.GET, LIST_URL, json={"items": [entry]})

    with pytest.raises(UpstreamError, match=problem):
        stack().batch.output_files("44046")


def test_output_files_items_not_a_list_raises(fake):
    fake.add(responses.GET, LIST_URL, json={"items": {"fileName": "a"}})

    with pytest.raises(UpstreamError, match="items is not a list"):
        stack().batch.output_files("44046")


def test_output_files_two_names_reducing_to_one_safe_name_raise(fake):
    fake.add(responses.GET, LIST_URL, json={"items": [item("a b.zip"), item("a_b.zip")]})

    with pytest.raises(UpstreamError, match=r"listed twice .*\['a_b.zip'\]"):
        stack().batch.output_files("44046")
