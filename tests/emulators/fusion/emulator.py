"""FusionEmulator: a Fusion pod (saas-batch) and its identity domain (IDCS), two HTTPS servers on loopback."""

from __future__ import annotations

import re
import shutil
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from fusion_extract.clock import Clock, SystemClock
from tests.emulators.fusion.batch import BatchApi
from tests.emulators.fusion.faults import FailRules
from tests.emulators.fusion.identity import IdentityDomain, OAuthClient
from tests.emulators.fusion.jobs import Job
from tests.emulators.fusion.rest import error
from tests.emulators.fusion.scenario import ExtractScenario
from tests.emulators.fusion.tls import TlsFiles, write_tls_files
from tests.emulators.loopback import LoopbackServer, Request, Response, ServedRequest

Dispatch = Callable[[Request], Response]
# A test's hook around matching requests: called with the request and `serve` (the emulator's own
# handling, fail_next faults included); it may answer instead, or run a callback before answering.
Intercept = Callable[[Request, Dispatch], Response]


class FusionEmulator:
    """Start it (or use `with`), point a client at `base_url` / `idcs_url` trusting `ca_path`, stop it.

    `reset()` forgets everything a test did while the servers keep running, so that one emulator can
    serve test after test (see tests.emulators.pool)."""

    def __init__(
        self,
        clock: Clock | None = None,
        workdir: Path | None = None,
        *,
        environment: str = "emu",
        port: int = 0,
        idcs_port: int = 0,
        first_job_id: int = 44046,
    ) -> None:
        self.scope = f"urn:opc:resource:fusion:{environment}:saas-batch/"
        self.requests: list[ServedRequest] = []  # every request either server answered, in order
        self._workdir = workdir
        self._ports = (port, idcs_port)
        self._first_job_id = first_job_id
        self._temporary: Path | None = None
        self._tls: TlsFiles | None = None
        self._servers: tuple[LoopbackServer, LoopbackServer] | None = None
        self.reset(clock)

    def reset(self, clock: Clock | None = None) -> FusionEmulator:
        """Start afresh, as a new emulator would, on the running servers (same URLs, same CA): no client,
        token, extract, job or armed fault; job ids from the first again; no request recorded; time from
        `clock` (real time by default)."""
        self.clock = clock or SystemClock()
        self._rules = FailRules()
        self._intercepts: list[tuple[str | None, re.Pattern[str], Intercept]] = []
        self._identity = IdentityDomain(self.scope, self.clock)
        self._batch = BatchApi(self.clock, self._identity, lambda: self.base_url, self._first_job_id)
        self.requests.clear()
        return self

    # Lifecycle.

    def start(self) -> FusionEmulator:
        directory = self._workdir
        if directory is None:
            directory = self._temporary = Path(tempfile.mkdtemp(prefix="fusion-emulator-"))
        self._tls = write_tls_files(directory / "fusion-emulator-tls")
        context = self._tls.server_context()
        record = self.requests.append
        fusion = LoopbackServer(
            "fusion", self._serve_fusion, on_served=record, tls=context, port=self._ports[0]
        )
        try:
            idcs = LoopbackServer(
                "idcs", self._serve_idcs, on_served=record, tls=context, port=self._ports[1]
            )
        except OSError:
            fusion.stop()
            raise
        self._servers = (fusion.start(), idcs.start())
        return self

    def stop(self) -> None:
        servers, self._servers = self._servers, None
        for server in servers or ():
            server.stop()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    def __enter__(self) -> FusionEmulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The Fusion pod, e.g. https://127.0.0.1:40123."""
        return self._running()[0].url

    @property
    def idcs_url(self) -> str:
        """The identity domain: another server, another port."""
        return self._running()[1].url

    @property
    def ca_path(self) -> Path:
        """PEM of the throwaway CA that signed the servers' certificate (SANs 127.0.0.1, localhost)."""
        if self._tls is None:
            raise RuntimeError("the Fusion emulator is not started")
        return self._tls.ca_path

    # Set-up.

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        username: str | None = None,
        password: str | None = None,
        token_lifetime: int = 3600,
    ) -> None:
        """An OAuth client; with a username and password it may also use the password grant."""
        self._identity.add_client(OAuthClient(client_id, client_secret, username, password, token_lifetime))

    def define_extract(self, name: str, scenario: ExtractScenario | None = None) -> None:
        """What jobs of this extract do from now on (fault counters start afresh)."""
        self._batch.define(name, scenario or ExtractScenario())

    def revise_output(self, job_id: int | str, name: str) -> None:
        """The job's output file changes in place, as a file rewritten under a download would: the byte in
        its middle flipped (same size; new ETag, Last-Modified and listed checksum). Again: as it was."""
        self._batch.revise(job_id, name)

    def fail_next(
        self,
        path_regex: str,
        status: int,
        count: int = 1,
        *,
        retry_after: int | None = None,
        method: str | None = None,
        after_handling: bool = False,
        body: bytes | None = None,
    ) -> None:
        """Answer the next `count` requests whose path matches (re.search) with `status`, on either server.

        `after_handling`: handle the request first (a submit creates its job), then answer `status`.
        `body`: answer these bytes (as text/html) instead of an error document, whatever the status.
        """
        self._rules.add(path_regex, status, count, retry_after, method, after_handling, body)

    def intercept(self, path_regex: str, hook: Intercept, *, method: str | None = None) -> None:
        """Hand every request (either server) whose path matches (re.search) to `hook(request, serve)`
        until reset: a seeded storm of errors, or a callback (kill a process) before the answer."""
        self._intercepts.append((method.upper() if method else None, re.compile(path_regex), hook))

    def restart(self) -> None:
        """Stop both servers (open connections cut) and start them again on the same ports and the same
        certificate, keeping clients, tokens and jobs: the pod restarted, its database did not."""
        assert self._tls is not None
        old = self._running()
        ports = tuple(int(server.url.rsplit(":", 1)[1]) for server in old)
        for server in old:
            server.stop()
        context, record = self._tls.server_context(), self.requests.append
        fusion = LoopbackServer("fusion", self._serve_fusion, on_served=record, tls=context, port=ports[0])
        idcs = LoopbackServer("idcs", self._serve_idcs, on_served=record, tls=context, port=ports[1])
        self._servers = (fusion.start(), idcs.start())

    # Inspection.

    @property
    def jobs(self) -> list[Job]:
        return self._batch.jobs()

    def job(self, job_id: int | str) -> Job:
        return self._batch.job(job_id)

    @property
    def issued_tokens(self) -> list[str]:
        """Every access token the identity domain minted since the last reset."""
        return self._identity.issued()

    def bytes_sent(self, name: str) -> int:
        """Bytes of output file `name`'s bodies handed to connections, every download together: a byte
        sent twice counts twice, whether or not the client read it."""
        return self._batch.bytes_sent(name)

    def requests_to(self, server: str) -> list[ServedRequest]:
        return [served for served in self.requests if served.server == server]

    # Dispatch.

    def _running(self) -> tuple[LoopbackServer, LoopbackServer]:
        if self._servers is None:
            raise RuntimeError("the Fusion emulator is not running")
        return self._servers

    def _serve_fusion(self, request: Request) -> Response:
        return self._intercepted(request, lambda r: self._faulty(r, self._batch.dispatch, _fusion_error))

    def _serve_idcs(self, request: Request) -> Response:
        return self._intercepted(request, lambda r: self._faulty(r, self._identity.dispatch, _oauth_error))

    def _intercepted(self, request: Request, serve: Dispatch) -> Response:
        for method, pattern, hook in list(self._intercepts):
            if method in (None, request.method) and pattern.search(request.path):
                return hook(request, serve)
        return serve(request)

    def _faulty(
        self, request: Request, dispatch: Dispatch, failure: Callable[[int, dict[str, str]], Response]
    ) -> Response:
        """`dispatch`, preceded by the faults armed with fail_next."""
        try:
            rule = self._rules.take(request)
            if rule is None:
                return dispatch(request)
            if rule.after_handling:
                dispatch(request)  # its effects stay; only the answer is lost
        except Exception as bug:  # an emulator bug: answer it plainly rather than drop the line
            traceback.print_exc()
            return Response.json(500, {"title": "emulator error", "detail": repr(bug)})
        if rule.body is not None:
            return Response(rule.status, rule.body, {"Content-Type": "text/html"})
        retry = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
        return failure(rule.status, retry)


def _fusion_error(status: int, headers: dict[str, str]) -> Response:
    return error(status, "injected failure", headers)


def _oauth_error(status: int, headers: dict[str, str]) -> Response:
    body = {"error": "temporarily_unavailable", "error_description": "injected failure"}
    return Response.json(status, body, headers)
