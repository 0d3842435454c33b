"""FusionEmulator: a Fusion pod (saas-batch) and its identity domain (IDCS), two HTTPS servers on loopback."""

from __future__ import annotations

import shutil
import tempfile
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
from tests.emulators.fusion.server import Dispatch, HttpsServer, Request, Response, ServedRequest
from tests.emulators.fusion.tls import TlsFiles, create_tls_files


class FusionEmulator:
    """Start it (or use `with`), point a client at `base_url` / `idcs_url` trusting `ca_path`, stop it."""

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
        self.clock = clock or SystemClock()
        self.scope = f"urn:opc:resource:fusion:{environment}:saas-batch/"
        self.requests: list[ServedRequest] = []  # every request either server answered, in order
        self._workdir = workdir
        self._ports = (port, idcs_port)
        self._temporary: Path | None = None
        self._tls: TlsFiles | None = None
        self._rules = FailRules()
        self._identity = IdentityDomain(self.scope, self.clock)
        self._batch = BatchApi(self.clock, self._identity, lambda: self.base_url, first_job_id)
        self._fusion = HttpsServer(
            "fusion", self._faulty(self._batch.dispatch, _fusion_error), self.requests.append
        )
        self._idcs = HttpsServer(
            "idcs", self._faulty(self._identity.dispatch, _oauth_error), self.requests.append
        )

    # Lifecycle.

    def start(self) -> FusionEmulator:
        directory = self._workdir
        if directory is None:
            directory = self._temporary = Path(tempfile.mkdtemp(prefix="fusion-emulator-"))
        self._tls = create_tls_files(directory / "fusion-emulator-tls")
        context = self._tls.server_context()
        self._fusion.start(context, self._ports[0])
        try:
            self._idcs.start(context, self._ports[1])
        except OSError:
            self._fusion.stop()
            raise
        return self

    def stop(self) -> None:
        self._fusion.stop()
        self._idcs.stop()
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
        return self._fusion.url

    @property
    def idcs_url(self) -> str:
        """The identity domain: another server, another port."""
        return self._idcs.url

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

    # Inspection.

    @property
    def jobs(self) -> list[Job]:
        return self._batch.jobs()

    def job(self, job_id: int | str) -> Job:
        return self._batch.job(job_id)

    def requests_to(self, server: str) -> list[ServedRequest]:
        return [served for served in self.requests if served.server == server]

    # Dispatch.

    def _faulty(self, dispatch: Dispatch, failure: Callable[[int, dict[str, str]], Response]) -> Dispatch:
        """`dispatch`, preceded by the faults armed with fail_next."""

        def serve(request: Request) -> Response:
            rule = self._rules.take(request)
            if rule is None:
                return dispatch(request)
            if rule.after_handling:
                dispatch(request)  # its effects stay; only the answer is lost
            if rule.body is not None:
                return Response(rule.status, rule.body, {"Content-Type": "text/html"})
            retry = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
            return failure(rule.status, retry)

        return serve


def _fusion_error(status: int, headers: dict[str, str]) -> Response:
    return error(status, "injected failure", headers)


def _oauth_error(status: int, headers: dict[str, str]) -> Response:
    body = {"error": "temporarily_unavailable", "error_description": "injected failure"}
    return Response.json(status, body, headers)
