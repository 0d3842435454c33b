"""Run a function under the real fdk runtime, the way the Fn agent does in OCI Functions.

    with FdkFunction(Path("functions/poll"), env={"BUCKET_NAME": "b"}, name="poll") as fn:
        result = fn.call(b'{"v": 1}', headers={"X-OCI-NS-MessageId": "m1"})
        result.status, result.headers["content-type"], result.body

`start()` spawns `fdk <func_dir>/func.py handler` (the console script of this virtualenv, or the
`fdk_script` given, e.g. that of a clean environment built from a staged folder's requirements) with the
platform's variables (FN_FORMAT=http-stream, FN_LISTENER=unix:<abs path>, FN_APP_*, FN_FN_*) plus
the function config as environment variables, and waits until fdk publishes its socket symlink.
`call()` POSTs /call over the unix socket with a chunked body, Fn-Call-Id and Fn-Deadline, as the Go
agent does. On this socket fdk only ever answers 200, 502 (the handler raised) or 504 (TimeoutError).

The child gets a clean environment, like a container: PATH, HOME, PYTHONPATH=<func_dir>, the FN_*
variables and `env`. Nothing else leaks from the test process (no OCI_SDK_* switches, no CA bundles).
A `Container` starts it as an image would instead (tests/deploy/image_runtime.py): the command wrapped
(another user, a read-only root), more variables, more folders on PYTHONPATH.
A call that cannot reach the process raises TransientError(status=502). One that outlives its
deadline raises TransientError(status=504), and, as the platform does, the container is killed and
the next call cold-starts a new one (calls in flight on it fail with 502). One process runs one
handler at a time (a sync handler blocks fdk's event loop), as one container does.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO

from fusion_extract.clock import IdFactory, isoformat, new_id
from fusion_extract.errors import ConfigError, TransientError

FDK_SCRIPT = Path(sys.executable).with_name("fdk")
SOCKET_PATH_LIMIT = 100  # sun_path holds 108 bytes; fdk also binds "phony" + the name beside it
CHUNK = 64 * 1024
GRACE_SECONDS = 5.0  # how long past Fn-Deadline the caller waits before calling it a timeout
STOP_GRACE_SECONDS = 5.0  # SIGTERM first; fdk cannot act on it while a handler blocks its loop


@dataclass(frozen=True)
class FnResult:
    """What the function answered: status (200, 502 or 504), lower-cased headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Container:
    """How an image starts the function: `wrap` turns the fdk command into the one run, `env` is added to
    the child's, `python_path` follows the function's folder on PYTHONPATH, and the user `uid` is handed
    what the platform gives the function (the socket's folder, its resource principal's files)."""

    wrap: Callable[[list[str]], list[str]] = list
    env: Mapping[str, str] = field(default_factory=dict)
    python_path: tuple[Path, ...] = ()
    uid: int | None = None


# The platform's files that belong to the function's user, named by these variables.
PLATFORM_FILES = ("OCI_RESOURCE_PRINCIPAL_RPST", "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM")


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class FdkFunction:
    """One function container: the fdk runtime in a child process, called over its unix socket."""

    def __init__(
        self,
        func_dir: Path,
        env: Mapping[str, str],
        name: str,
        log_path: Path | None = None,
        *,
        app_name: str = "fusion-extract",
        fn_id: str | None = None,
        new_call_id: IdFactory = new_id,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        start_timeout: float = 30.0,
        fdk_script: Path = FDK_SCRIPT,
        container: Container | None = None,
    ) -> None:
        self.func_dir = Path(func_dir).resolve()
        self.fdk_script = fdk_script
        self.container = container or Container()
        self.env = dict(env)
        self.name = name
        self.log_path = log_path
        self.app_name = app_name
        self.fn_id = fn_id or f"ocid1.fnfunc.oc1..{name}"
        self.start_timeout = start_timeout
        self._new_call_id = new_call_id
        self._now = now
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None
        self._log: IO[bytes] | None = None
        self._cold_start_due = False

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def socket_path(self) -> Path | None:
        return self._socket_dir / "lsnr.sock" if self._socket_dir else None

    def start(self) -> FdkFunction:
        """Spawn the runtime and wait (bounded) until it listens. Starting a running function is a no-op."""
        with self._lock:
            self._spawn()
        return self

    def stop(self) -> None:
        """Terminate the runtime (by its pid) and wait for it; safe to call twice."""
        with self._lock:
            self._cold_start_due = False
            self._end_process(kill=False)

    def __enter__(self) -> FdkFunction:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- calls ---------------------------------------------------------------------------------------

    def call(
        self,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        deadline_seconds: float = 300,
        *,
        on_sent: Callable[[], None] | None = None,
        grace_seconds: float = GRACE_SECONDS,
    ) -> FnResult:
        """POST /call like the Fn agent; `on_sent` runs once the whole request is on the socket.
        Waits for the answer until the deadline plus `grace_seconds`. Thread-safe: every call has its
        own connection."""
        process, socket_path = self._running()
        deadline = self._now() + timedelta(seconds=deadline_seconds)
        connection = _UnixHTTPConnection(str(socket_path), timeout=deadline_seconds + grace_seconds)
        try:
            connection.request("POST", "/call", body=_chunks(body), headers=self._headers(deadline, headers))
            if on_sent is not None:
                on_sent()
            response = connection.getresponse()
            return FnResult(
                response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
            )
        except TimeoutError as exc:
            self._kill_timed_out(process)
            raise TransientError(
                f"function {self.name} did not answer within {deadline_seconds:g} s",
                status=504,
                code="FunctionInvokeTimeout",
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(
                f"function {self.name} could not be reached: {exc!r}",
                status=502,
                code="FunctionInvokeExecutionError",
            ) from exc
        finally:
            connection.close()

    # -- internals -----------------------------------------------------------------------------------

    def _child_env(self, socket_path: Path) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONPATH": os.pathsep.join(map(str, (self.func_dir, *self.container.python_path))),
            "PYTHONUNBUFFERED": "1",
            **self.container.env,
            **self.env,
            "FN_FORMAT": "http-stream",
            "FN_LISTENER": f"unix:{socket_path}",  # absolute: fdk strips "unix:" with lstrip
            "FN_APP_ID": f"ocid1.fnapp.oc1..{self.app_name}",
            "FN_APP_NAME": self.app_name,
            "FN_FN_ID": self.fn_id,
            "FN_FN_NAME": self.name,
        }

    def _headers(self, deadline: datetime, extra: Mapping[str, str] | None) -> dict[str, str]:
        merged = {
            "fn-call-id": ("Fn-Call-Id", self._new_call_id()),
            "fn-deadline": ("Fn-Deadline", isoformat(deadline)),
            "content-type": ("Content-Type", "application/json"),
            "user-agent": ("User-Agent", "Go-http-client/1.1"),
        }
        for name, value in (extra or {}).items():
            merged[name.lower()] = (name, value)
        return dict(merged.values())

    def _spawn(self) -> None:
        """With the lock held: start the process unless it runs, and wait until it listens."""
        if self._process is not None:
            return
        func_py = self.func_dir / "func.py"
        if not func_py.is_file():
            raise ConfigError(f"function {self.name}: {func_py} does not exist")
        self._socket_dir = Path(tempfile.mkdtemp(prefix="fn-"))
        socket_path = self._socket_dir / "lsnr.sock"
        if len(str(socket_path)) > SOCKET_PATH_LIMIT:
            self._end_process(kill=True)
            raise ConfigError(f"socket path {socket_path} is too long for AF_UNIX; set a shorter TMPDIR")
        log_file = self.log_path or self._socket_dir / "fn.log"
        self._log = log_file.open("ab")
        if self.container.uid is not None:
            owned = [self._socket_dir, *(Path(self.env[name]) for name in PLATFORM_FILES if name in self.env)]
            for path in owned:
                os.chown(path, self.container.uid, -1)
        self._process = subprocess.Popen(
            self.container.wrap([str(self.fdk_script), str(func_py), "handler"]),
            cwd=self.func_dir,
            env=self._child_env(socket_path),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        give_up = time.monotonic() + self.start_timeout
        while not socket_path.is_symlink():
            exited = self._process.poll() is not None
            if exited or time.monotonic() > give_up:
                code, tail = self._process.returncode, _tail(log_file)
                self._end_process(kill=True)
                if exited:
                    raise ConfigError(f"function {self.name} exited at start (code {code}): {tail}")
                raise TransientError(f"function {self.name} did not listen within {self.start_timeout:g} s")
            time.sleep(0.02)

    def _running(self) -> tuple[subprocess.Popen[bytes], Path]:
        """The live process and its socket; cold-starts a process the platform killed."""
        with self._lock:
            if self._process is None and self._cold_start_due:
                self._cold_start_due = False
                self._spawn()
            if self._process is None or self._socket_dir is None:
                raise TransientError(
                    f"function {self.name} is not running", status=502, code="FunctionInvokeExecutionError"
                )
            return self._process, self._socket_dir / "lsnr.sock"

    def _kill_timed_out(self, process: subprocess.Popen[bytes]) -> None:
        """What the platform does to a call past its deadline: kill the container; the next call
        starts a fresh one."""
        with self._lock:
            if self._process is process:
                self._end_process(kill=True)
                self._cold_start_due = True

    def _end_process(self, *, kill: bool) -> None:
        """With the lock held: end the process by its pid (SIGTERM, SIGKILL after a grace)."""
        if self._process is not None:
            if kill:
                self._process.kill()
            else:
                self._process.terminate()
            try:
                self._process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None


def _chunks(body: bytes) -> Iterator[bytes]:
    """An iterable body makes http.client send Transfer-Encoding: chunked, as the Go agent does."""
    for offset in range(0, len(body), CHUNK):
        yield body[offset : offset + CHUNK]


def _tail(log_file: Path, size: int = 2000) -> str:
    try:
        return log_file.read_bytes()[-size:].decode(errors="replace").strip()
    except OSError:
        return "(no output)"
