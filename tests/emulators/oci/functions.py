"""OCI Functions for the emulator: a registry of running functions and the invoke API over HTTP.

    functions = FunctionsService()
    functions.register("ocid1.fnfunc.oc1..poll", FdkFunction(...).start())
    OciHttpServer(functions.routes).start()       # or OciEmulator.add_service(functions)
    FunctionsInvokeClient(..., service_endpoint=endpoint).invoke_function(ocid, invoke_function_body=b"{}")

`POST /<any version>/functions/{functionId}/actions/invoke` (oci 2.189.0 sends /20260325, older SDKs
and Terraform /20181201), header `fn-invoke-type`:

- sync (default): 200 with the function's body; 502 FunctionInvokeExecutionFailed when the handler
  raised (message = what it answered); 504 FunctionInvokeTimeout.
- detached: 202 as soon as the request is handed to the function process ("processing has begun");
  the function runs on in a background thread. Its outcome only lands in `invocations`.
- Either: 404 for an unknown function, 413 FunctionInvokeRequestContentTooLarge over 6 MB,
  502 FunctionInvokeExecutionError when the function process cannot be reached.

Notifications and the scheduler call `invoke()` in-process; it answers what the HTTP API would.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from fusion_extract.errors import TransientError
from tests.emulators.fdk_runtime import FnResult
from tests.emulators.oci.http import Request, Response, Route

MAX_BODY_BYTES = 6 * 1024 * 1024
ACCEPT_SECONDS = 30.0  # how long a detached invoke waits for the function process to take the request
INVOKE_PATH = re.compile(r"/(?P<version>\d{8})/functions/(?P<function_id>[^/]+)/actions/invoke")

InvokeType = Literal["sync", "detached"]


class Invocable(Protocol):
    """What the registry runs: FdkFunction, or anything that answers like it."""

    name: str

    def call(
        self,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        deadline_seconds: float = 300,
        *,
        on_sent: Callable[[], None] | None = None,
    ) -> FnResult: ...


class RecordingFunction:
    """An in-process function that keeps every call: a stand-in for a subscriber such as an e-mail
    inbox. It answers `answer(body)` (by default an empty JSON object)."""

    def __init__(self, name: str, answer: Callable[[bytes], bytes] = lambda body: b"{}") -> None:
        self.name = name
        self.answer = answer
        self.calls: list[tuple[bytes, dict[str, str]]] = []
        self._lock = threading.Lock()

    def call(
        self,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        deadline_seconds: float = 300,
        *,
        on_sent: Callable[[], None] | None = None,
    ) -> FnResult:
        if on_sent is not None:
            on_sent()
        with self._lock:
            self.calls.append((body, dict(headers or {})))
        return FnResult(200, {"content-type": "application/json"}, self.answer(body))


@dataclass(frozen=True)
class InvokeResult:
    """The Functions API's answer: 200/202 or an OCI error (body is then `{"code","message"}`)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    code: str | None = None

    @classmethod
    def error(cls, status: int, code: str, message: str) -> InvokeResult:
        return cls(status, json.dumps({"code": code, "message": message}).encode(), code=code)


@dataclass(frozen=True)
class Invocation:
    """One finished run: what the function got and what it answered (200/502/504), or, when the
    process could not be reached or timed out, the status of that error and `error` set."""

    function_id: str
    invoke_type: InvokeType
    headers: dict[str, str]
    body: bytes
    status: int
    response: bytes = b""
    error: str | None = None


@dataclass(frozen=True)
class _Registration:
    function: Invocable
    timeout_seconds: float
    detached_timeout_seconds: float
    config: Mapping[str, str]
    image: str


@dataclass
class _Handoff:
    """A detached call's progress: set once the request is on the socket or could not be sent."""

    sent: threading.Event = field(default_factory=threading.Event)
    failure: TransientError | None = None


class FunctionsService:
    """Registry of functions plus the invoke API. `invocations` records every finished run."""

    def __init__(self) -> None:
        self.invocations: list[Invocation] = []
        self.activity = 0  # invocations ever started; see wait_settled
        self._functions: dict[str, _Registration] = {}
        self._running = 0
        self._changed = threading.Condition()

    @property
    def routes(self) -> list[Route]:
        return [("POST", INVOKE_PATH, self._handle_invoke)]

    def register(
        self,
        function_id: str,
        function: Invocable,
        *,
        timeout_seconds: float = 300,
        detached_timeout_seconds: float = 3600,
        config: Mapping[str, str] | None = None,
        image: str | None = None,
    ) -> None:
        """Make `function_id` invocable; a second registration replaces the first (a redeploy). `config`
        and `image` are what GetFunction reports (the configuration Terraform set, the image deployed)."""
        registration = _Registration(
            function,
            timeout_seconds,
            detached_timeout_seconds,
            dict(config or {}),
            image or f"emu/{function.name}:latest",
        )
        with self._changed:
            self._functions[function_id] = registration

    def registered(self) -> dict[str, str]:
        """Every invocable function: OCID -> name (GetFunction and ListFunctions, management.py)."""
        with self._changed:
            return {fid: reg.function.name for fid, reg in self._functions.items()}

    def deployed(self, function_id: str) -> tuple[str, Mapping[str, str], str] | None:
        """A registered function's name, configuration and image (GetFunction); None if unknown."""
        with self._changed:
            registration = self._functions.get(function_id)
        if registration is None:
            return None
        return registration.function.name, registration.config, registration.image

    def invoke(
        self,
        function_id: str,
        body: bytes,
        *,
        invoke_type: str = "sync",
        headers: Mapping[str, str] | None = None,
    ) -> InvokeResult:
        """Invoke as the API would, in-process; never raises for an invocation that went wrong."""
        if invoke_type not in ("sync", "detached"):
            return InvokeResult.error(400, "InvalidParameter", "fn-invoke-type must be sync or detached")
        with self._changed:
            registration = self._functions.get(function_id)
        if registration is None:
            return InvokeResult.error(404, "NotAuthorizedOrNotFound", f"function {function_id} not found")
        if len(body) > MAX_BODY_BYTES:
            return InvokeResult.error(
                413, "FunctionInvokeRequestContentTooLarge", "the request body exceeds 6 MB"
            )
        call_headers = {"Fn-Invoke-Type": invoke_type, **(headers or {})}
        if invoke_type == "sync":
            return self._run_sync(function_id, registration, body, call_headers)
        return self._run_detached(function_id, registration, body, call_headers)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no invocation (sync or detached) is running; False if `timeout` ran out first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._running == 0, timeout)

    # -- runs ----------------------------------------------------------------------------------------

    def _run_sync(
        self, function_id: str, registration: _Registration, body: bytes, headers: dict[str, str]
    ) -> InvokeResult:
        self._begin()
        try:
            outcome = self._call(function_id, "sync", registration, body, headers, None)
        finally:
            self._end()
        if isinstance(outcome, TransientError):
            return InvokeResult.error(
                outcome.status or 502, outcome.code or "FunctionInvokeExecutionError", str(outcome)
            )
        if outcome.status == 200:
            return InvokeResult(200, outcome.body, outcome.headers.get("content-type", "application/json"))
        if outcome.status == 504:
            return InvokeResult.error(504, "FunctionInvokeTimeout", "the function timed out")
        return InvokeResult.error(
            502, "FunctionInvokeExecutionFailed", outcome.body.decode(errors="replace") or "function failed"
        )

    def _run_detached(
        self, function_id: str, registration: _Registration, body: bytes, headers: dict[str, str]
    ) -> InvokeResult:
        handoff = _Handoff()

        def run() -> None:
            try:
                self._call(function_id, "detached", registration, body, headers, handoff)
            finally:
                handoff.sent.set()
                self._end()

        self._begin()
        threading.Thread(target=run, name=f"detached-{registration.function.name}", daemon=True).start()
        if not handoff.sent.wait(ACCEPT_SECONDS):
            return InvokeResult.error(504, "FunctionInvokeContainerInitTimeout", "the function did not start")
        if handoff.failure is not None:
            return InvokeResult.error(
                502, handoff.failure.code or "FunctionInvokeExecutionError", str(handoff.failure)
            )
        return InvokeResult(202)

    def _call(
        self,
        function_id: str,
        invoke_type: InvokeType,
        registration: _Registration,
        body: bytes,
        headers: dict[str, str],
        handoff: _Handoff | None,
    ) -> FnResult | TransientError:
        deadline = registration.timeout_seconds
        if invoke_type == "detached":
            deadline = registration.detached_timeout_seconds
        try:
            result = registration.function.call(
                body, headers, deadline, on_sent=handoff.sent.set if handoff else None
            )
        except TransientError as exc:
            if handoff is not None and not handoff.sent.is_set():
                handoff.failure = exc
            status = exc.status or 502
            self._record(Invocation(function_id, invoke_type, headers, body, status, error=str(exc)))
            return exc
        self._record(Invocation(function_id, invoke_type, headers, body, result.status, result.body))
        return result

    def _begin(self) -> None:
        with self._changed:
            self._running += 1
            self.activity += 1

    def _end(self) -> None:
        with self._changed:
            self._running -= 1
            self._changed.notify_all()

    def _record(self, invocation: Invocation) -> None:
        with self._changed:
            self.invocations.append(invocation)
            self._changed.notify_all()

    # -- HTTP ----------------------------------------------------------------------------------------

    def _handle_invoke(self, request: Request, match: re.Match[str]) -> Response:
        declared = request.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            result = InvokeResult.error(
                413, "FunctionInvokeRequestContentTooLarge", "the request body exceeds 6 MB"
            )
        elif request.headers.get("is-dry-run", "").lower() == "true":
            result = InvokeResult(200)
        else:
            headers = {"Content-Type": request.headers.get("Content-Type") or "application/json"}
            for name in ("fn-intent", "opc-request-id"):
                if request.headers.get(name):
                    headers[name] = request.headers[name]
            result = self.invoke(
                match["function_id"],
                request.body,
                invoke_type=request.headers.get("fn-invoke-type") or "sync",
                headers=headers,
            )
        return Response(result.status, result.body, {"content-type": result.content_type})


class Settling(Protocol):
    """A service that does work in the background: FunctionsService, NotificationsService."""

    @property
    def activity(self) -> int: ...

    def wait_idle(self, timeout: float) -> bool: ...


def wait_settled(services: Sequence[Settling], timeout: float) -> bool:
    """Wait until all services are idle at once. A function may publish a message and a message
    invokes a function, so wait round after round until a whole round started nothing new."""
    give_up = time.monotonic() + timeout
    while True:
        before = [service.activity for service in services]
        for service in services:
            if not service.wait_idle(max(0.0, give_up - time.monotonic())):
                return False
        if [service.activity for service in services] == before:
            return True
