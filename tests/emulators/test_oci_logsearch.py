"""Logging Search in the OCI emulator, with the real LogSearchClient: the invoke log's entries, filtered by
time window, stream and `where`, ordered, and paged with opc-next-page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import oci
import pytest
from oci.loggingsearch.models import SearchLogsDetails

from tests.emulators import pool
from tests.emulators.oci import COMPARTMENT, OciEmulator
from tests.emulators.oci.logsearch import InvokeLog, Line, LogSearch

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LOG = InvokeLog(
    COMPARTMENT, "ocid1.loggroup.oc1.emu.g", "ocid1.log.oc1.emu.l", "ocid1.fnapp.oc1.emu.a", "app"
)
STREAM = f'"{COMPARTMENT}/{LOG.log_group_id}/{LOG.log_id}"'


def written(minute: int, run_id: str, message: str = "step done") -> Line:
    text = json.dumps({"timestamp": f"{T0 + timedelta(minutes=minute):%Y-%m-%dT%H:%M:%S}.000Z",
                       "message": message, "run_id": run_id})  # fmt: skip
    return Line(T0 + timedelta(minutes=minute), "ocid1.fnfunc.oc1.emu.poll", "fusion-extract-poll", text)


@pytest.fixture
def lines() -> list[Line]:
    return [written(minute, "r1" if minute % 2 else "r2") for minute in range(10)]


@pytest.fixture
def emu(tmp_path, lines) -> Iterator[OciEmulator]:
    with pool.OCI.lend() as emu:
        emu.reset(tmp_path / "oci", "emuns")
        emu.add_service(LogSearch(LOG, lambda: lines))
        yield emu


@pytest.fixture
def client(emu: OciEmulator) -> oci.loggingsearch.LogSearchClient:
    return oci.loggingsearch.LogSearchClient(
        emu.api_key_config(), service_endpoint=emu.endpoint, retry_strategy=oci.retry.NoneRetryStrategy()
    )


def search(query: str, start: datetime = T0, end: datetime = T0 + timedelta(hours=1)) -> SearchLogsDetails:
    return SearchLogsDetails(time_start=start, time_end=end, search_query=query, is_return_field_info=False)


def messages(response: oci.response.Response) -> list[dict[str, object]]:
    return [json.loads(result.data["logContent"]["data"]["message"]) for result in response.data.results]


def test_logsearch_returns_the_entries_of_the_stream_whose_field_matches_in_time_order(client) -> None:
    # When the log is searched for the lines naming r1, newest first
    query = f"search {STREAM} | where data.message = '*\"r1\"*' | sort by datetime desc"
    response = client.search_logs(search(query))

    # Then the five lines of r1 come back, newest first, each an invoke log entry of the function's line
    assert [line["run_id"] for line in messages(response)] == ["r1"] * 5
    datetimes = [result.data["datetime"] for result in response.data.results]
    assert datetimes == sorted(datetimes, reverse=True) and datetimes[0] == int(
        (T0 + timedelta(minutes=9)).timestamp() * 1000
    )
    content = response.data.results[0].data["logContent"]
    assert content["type"] == "com.oraclecloud.functions.application.functioninvoke"
    assert (content["oracle"]["logid"], content["subject"]) == (LOG.log_id, "fusion-extract-poll")
    assert response.data.summary.result_count == 5


def test_logsearch_keeps_to_the_time_window_and_the_stream(client) -> None:
    # When the window covers minutes 2 to 4 (the end excluded)
    window = client.search_logs(
        search(f"search {STREAM}", T0 + timedelta(minutes=2), T0 + timedelta(minutes=4))
    )
    # Then only their lines come back
    assert len(window.data.results) == 2
    # And another log of the compartment holds none of them
    other = client.search_logs(search(f'search "{COMPARTMENT}/{LOG.log_group_id}/ocid1.log.oc1.emu.other"'))
    assert other.data.results == []


def test_logsearch_pages_with_opc_next_page(client) -> None:
    # When the ten lines are asked three at a time, following opc-next-page
    pages, page = [], None
    while True:
        response = client.search_logs(search(f"search {STREAM}"), limit=3, page=page)
        pages.append(len(response.data.results))
        page = response.headers.get("opc-next-page")
        if not page:
            break

    # Then four pages hold them all, the last without a next page
    assert pages == [3, 3, 3, 1] and response.next_page is None


@pytest.mark.parametrize(
    ("details", "problem"),
    [
        ({"search_query": f"search {STREAM}", "time_start": T0 + timedelta(hours=1), "time_end": T0},
         "timeStart must be before timeEnd"),
        ({"search_query": f"search {STREAM} | stats count"}, "does not evaluate"),
        ({"search_query": "where data.message = 'x'"}, "starts with search"),
    ],
)  # fmt: skip
def test_logsearch_refuses_what_it_cannot_search_with_400(client, details, problem) -> None:
    # Given a request the service refuses, When it is sent, Then 400 InvalidParameter names the problem
    request = {"time_start": T0, "time_end": T0 + timedelta(hours=1), **details}
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        client.search_logs(SearchLogsDetails(**request))
    assert (refused.value.status, refused.value.code) == (400, "InvalidParameter")
    assert problem in refused.value.message
