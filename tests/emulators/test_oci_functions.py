"""The Functions invoke API, reached with the real oci SDK, runs functions under the real fdk runtime."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import oci
import pytest

from tests.emulators import pool
from tests.emulators.fdk_runtime import FdkFunction
from tests.emulators.oci import OciHttpServer
from tests.emulators.oci.functions import FunctionsService
from tests.emulators.test_fdk_runtime import ECHO, RAISES, write_function

ECHO_ID = "ocid1.fnfunc.oc1..echo"
RAISES_ID = "ocid1.fnfunc.oc1..raises"


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FdkFunction, FdkFunction]]:
    """The echo and raises functions, started once for the module: they keep no state between calls,
    and each test gets its own FunctionsService (and so its own record of invocations)."""
    directory = tmp_path_factory.mktemp("functions")
    echo = FdkFunction(write_function(directory / "echo", ECHO), env={}, name="echo")
    raises = FdkFunction(write_function(directory / "raises", RAISES), env={}, name="raises")
    with ThreadPoolExecutor(max_workers=2) as starting:  # two processes start side by side
        starts = [starting.submit(function.start) for function in (echo, raises)]
    with echo, raises:  # started already (a no-op then), or started again; both stopped at the end
        for start in starts:
            start.result()
        yield echo, raises


@pytest.fixture
def functions(runtimes: tuple[FdkFunction, FdkFunction]) -> Iterator[FunctionsService]:
    service = FunctionsService()
    echo, raises = runtimes
    service.register(ECHO_ID, echo)
    service.register(RAISES_ID, raises)
    yield service
    assert service.wait_idle(30)


@pytest.fixture
def client(tmp_path: Path, functions: FunctionsService) -> Iterator[Any]:
    with pool.OCI.lend() as emulator:
        emulator.reset(tmp_path / "oci")
        emulator.add_service(functions)
        yield oci.functions.FunctionsInvokeClient(
            emulator.api_key_config(), service_endpoint=emulator.endpoint
        )


def test_invoke_sync_answers_the_function_body(client: Any, functions: FunctionsService) -> None:
    # Given a registered echo function
    # When it is invoked synchronously through the SDK
    response = client.invoke_function(ECHO_ID, invoke_function_body=b'{"k": 1}')

    # Then the caller gets the function's answer, and the function saw a sync invocation
    assert response.status == 200
    seen = json.loads(response.data.content)
    assert seen["body"] == '{"k": 1}'
    assert seen["headers"]["fn-invoke-type"] == "sync"
    assert [(i.function_id, i.invoke_type, i.status) for i in functions.invocations] == [
        (ECHO_ID, "sync", 200)
    ]


def test_invoke_sync_handler_raises_answers_502_execution_failed(client: Any) -> None:
    # Given a function whose handler raises
    # When it is invoked synchronously
    with pytest.raises(oci.exceptions.ServiceError) as raised:
        client.invoke_function(RAISES_ID, invoke_function_body=b"bad input")

    # Then the SDK reports the platform's error with the handler's message
    assert (raised.value.status, raised.value.code) == (502, "FunctionInvokeExecutionFailed")
    assert "kaboom: bad input" in raised.value.message


def test_invoke_detached_answers_202_and_runs_in_background(client: Any, functions: FunctionsService) -> None:
    # Given a registered echo function
    # When it is invoked detached
    response = client.invoke_function(ECHO_ID, invoke_function_body=b"later", fn_invoke_type="detached")

    # Then the caller gets 202 at once, and the function runs to completion on its own
    assert response.status == 202
    assert functions.wait_idle(30)
    [invocation] = functions.invocations
    assert (invocation.invoke_type, invocation.status, invocation.body) == ("detached", 200, b"later")
    assert json.loads(invocation.response)["headers"]["fn-invoke-type"] == "detached"


def test_invoke_detached_handler_raises_still_answers_202(client: Any, functions: FunctionsService) -> None:
    # Given a function whose handler raises
    # When it is invoked detached
    response = client.invoke_function(RAISES_ID, invoke_function_body=b"x", fn_invoke_type="detached")

    # Then the caller only learns it was accepted; the failure is the function's own business
    assert response.status == 202
    assert functions.wait_idle(30)
    assert [i.status for i in functions.invocations] == [502]


def test_invoke_unknown_function_answers_404(client: Any) -> None:
    # Given no function with this OCID
    # When it is invoked
    with pytest.raises(oci.exceptions.ServiceError) as raised:
        client.invoke_function("ocid1.fnfunc.oc1..nobody", invoke_function_body=b"{}")

    # Then the SDK reports it as not found
    assert raised.value.status == 404


def test_invoke_body_over_6_mb_answers_413(client: Any, functions: FunctionsService) -> None:
    # Given a body one byte over the 6 MB limit
    body = b"x" * (6 * 1024 * 1024 + 1)

    # When it is sent
    with pytest.raises(oci.exceptions.ServiceError) as raised:
        client.invoke_function(ECHO_ID, invoke_function_body=body)

    # Then it is refused before the function runs
    assert (raised.value.status, raised.value.code) == (413, "FunctionInvokeRequestContentTooLarge")
    assert functions.invocations == []


def test_invoke_detached_unreachable_function_answers_502(tmp_path: Path) -> None:
    # Given a registered function whose process is not running
    functions = FunctionsService()
    functions.register(ECHO_ID, FdkFunction(write_function(tmp_path / "echo", ECHO), env={}, name="echo"))

    # When it is invoked detached
    result = functions.invoke(ECHO_ID, b"{}", invoke_type="detached")

    # Then the invocation is refused: the platform could not hand it over
    assert (result.status, result.code) == (502, "FunctionInvokeExecutionError")
    assert functions.wait_idle(30)


def test_invoke_older_api_version_path_is_served(functions: FunctionsService) -> None:
    # Given the invoke API on a bare server (no signature checks)
    server = OciHttpServer(functions.routes).start()
    try:
        # When a client of the older API version (Terraform, older SDKs) invokes a function
        host, port = server.endpoint.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("POST", f"/20181201/functions/{ECHO_ID}/actions/invoke", body=b"old")
        response = connection.getresponse()

        # Then it is served like the current version
        assert response.status == 200
        assert json.loads(response.read())["body"] == "old"
        connection.close()
    finally:
        server.stop()


def test_invoke_unknown_invoke_type_answers_400(functions: FunctionsService) -> None:
    # Given a registered function
    # When it is invoked with an invoke type the API does not know
    result = functions.invoke(ECHO_ID, b"{}", invoke_type="eventually")

    # Then the request is refused and nothing runs
    assert (result.status, result.code) == (400, "InvalidParameter")
    assert functions.invocations == []
