"""The fdk harness runs a throwaway func.py under the real fdk runtime and calls it like the Fn agent."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

import pytest

from fusion_extract.errors import ConfigError, TransientError
from tests.emulators.fdk_runtime import FdkFunction

ECHO = """
    import hashlib, json

    def handler(ctx, data=None):
        body = data.getvalue()
        return json.dumps({
            "headers": ctx.Headers(),
            "body": body.decode(errors="replace")[:1000],
            "sha256": hashlib.sha256(body).hexdigest(),
            "greeting": ctx.Config().get("GREETING"),
            "leaked": ctx.Config().get("FDK_TEST_LEAK"),
            "fn_name": ctx.FnName(),
            "fn_id": ctx.FnID(),
            "app_name": ctx.AppName(),
            "call_id": ctx.CallID(),
            "deadline": ctx.Deadline(),
        })
"""
RAISES = """
    def handler(ctx, data=None):
        raise ValueError("kaboom: " + data.getvalue().decode())
"""
HANGS_ON_REQUEST = """
    import threading

    def handler(ctx, data=None):
        if data.getvalue() == b"hang":
            threading.Event().wait()
        return "awake"
"""


def write_function(directory: Path, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "func.py").write_text(dedent(source))
    return directory


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[FdkFunction]:
    calls = iter(f"call-{n}" for n in range(1, 1000))
    function = FdkFunction(
        write_function(tmp_path / "echo", ECHO),
        env={"GREETING": "hello"},
        name="echo",
        log_path=tmp_path / "echo.log",
        new_call_id=lambda: next(calls),
        now=lambda: datetime(2026, 3, 10, 10, 0, tzinfo=UTC),
    )
    with function:
        yield function


def test_call_echo_function_receives_body_config_and_agent_headers(echo: FdkFunction) -> None:
    # Given a running echo function
    # When it is called with a body and an ONS-style header
    result = echo.call(b'{"v": 1}', headers={"X-OCI-NS-MessageId": "m-1"})

    # Then it answered 200, saw the body, its config and the headers the Fn agent sends
    assert result.status == 200
    seen = json.loads(result.body)
    assert seen["body"] == '{"v": 1}'
    assert seen["greeting"] == "hello"
    assert (seen["fn_name"], seen["app_name"], seen["fn_id"]) == ("echo", "fusion-extract", echo.fn_id)
    assert seen["call_id"] == "call-1"
    assert seen["deadline"] == "2026-03-10T10:05:00.000000Z"
    assert seen["headers"]["x-oci-ns-messageid"] == "m-1"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["transfer-encoding"] == "chunked"


def test_call_large_body_arrives_whole_in_chunks(echo: FdkFunction) -> None:
    # Given a body far larger than one chunk
    body = os.urandom(300_000)

    # When the function is called with it
    result = echo.call(body)

    # Then the function hashed exactly those bytes
    assert json.loads(result.body)["sha256"] == hashlib.sha256(body).hexdigest()


def test_call_extra_header_replaces_default_whatever_its_case(echo: FdkFunction) -> None:
    # Given a caller that sets its own content type in lower case
    # When the function is called
    result = echo.call(b"plain", headers={"content-type": "text/plain"})

    # Then the function saw that one content type only
    assert json.loads(result.body)["headers"]["content-type"] == "text/plain"


def test_call_child_environment_does_not_inherit_the_test_process(
    echo: FdkFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a variable set in the test process only after the function started, and a restart
    monkeypatch.setenv("FDK_TEST_LEAK", "leaked")
    echo.stop()
    echo.start()

    # When the function is called
    result = echo.call(b"{}")

    # Then it does not see the variable: like a container, it gets only its config
    assert json.loads(result.body)["leaked"] is None


def test_call_from_several_threads_each_gets_its_own_answer(echo: FdkFunction) -> None:
    # Given eight bodies
    bodies = [f"body-{n}".encode() for n in range(8)]

    # When they are sent at once from several threads
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(echo.call, bodies))

    # Then every call got the answer to its own body
    assert [json.loads(r.body)["body"] for r in results] == [b.decode() for b in bodies]


def test_call_handler_raises_answers_502_with_the_message(tmp_path: Path) -> None:
    # Given a function whose handler raises
    with FdkFunction(write_function(tmp_path / "bad", RAISES), env={}, name="bad") as function:
        # When it is called
        result = function.call(b"boom")

    # Then fdk answered 502 with the exception text
    assert result.status == 502
    assert b"kaboom: boom" in result.body


def test_call_past_deadline_raises_504_and_next_call_cold_starts(tmp_path: Path) -> None:
    # Given a function whose handler never returns when asked to hang
    directory = write_function(tmp_path / "hang", HANGS_ON_REQUEST)
    with FdkFunction(directory, env={}, name="hang") as function:
        first_pid = function.pid

        # When it is called with a short deadline and asked to hang
        with pytest.raises(TransientError) as raised:
            function.call(b"hang", deadline_seconds=0.2, grace_seconds=0.1)

        # Then the call timed out as the platform reports it, and the container was killed
        assert (raised.value.status, raised.value.code) == (504, "FunctionInvokeTimeout")
        assert function.pid is None

        # And the next call runs in a fresh container
        assert function.call(b"ping").body == b"awake"
        assert function.pid not in (None, first_pid)


def test_call_stopped_function_raises_transient_502(echo: FdkFunction) -> None:
    # Given a function that was stopped
    echo.stop()

    # When it is called
    with pytest.raises(TransientError) as raised:
        echo.call(b"{}")

    # Then the call failed as an unreachable function
    assert (raised.value.status, raised.value.code) == (502, "FunctionInvokeExecutionError")


def test_stop_ends_the_process_and_removes_the_socket(echo: FdkFunction) -> None:
    # Given a running function
    pid, socket_path = echo.pid, echo.socket_path
    assert pid is not None and socket_path is not None and socket_path.is_symlink()

    # When it is stopped
    echo.stop()

    # Then its process is gone and so is its socket
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not socket_path.exists()


def test_start_without_func_py_raises_config_error(tmp_path: Path) -> None:
    # Given a folder with no func.py
    function = FdkFunction(tmp_path, env={}, name="empty")

    # When it is started, Then the error names the missing file
    with pytest.raises(ConfigError, match=r"func\.py does not exist"):
        function.start()


def test_start_process_dies_raises_config_error_with_its_output(tmp_path: Path) -> None:
    # Given a function whose interpreter cannot even start
    directory = write_function(tmp_path / "dies", ECHO)
    function = FdkFunction(directory, env={"PYTHONHOME": str(tmp_path / "nowhere")}, name="dies")

    # When it is started
    with pytest.raises(ConfigError) as raised:
        function.start()

    # Then the error says it exited and carries what it printed
    assert "exited at start" in str(raised.value)
    assert "Python" in str(raised.value)
    assert function.pid is None
