"""The Batch Processing REST API (saas-batch): job scheduler and job file manager (reference 1).

Every call needs a valid, unexpired bearer token (401 otherwise). Our choices where Oracle documents
nothing: the jobs list runs oldest first; outputFiles before the job succeeded answers 409 (an empty
list would read as "nothing changed"); see rest.py for errors, paging and ranges.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from fusion_extract.clock import Clock
from tests.emulators.fusion.archive import OutputFile
from tests.emulators.fusion.identity import IdentityDomain, Token
from tests.emulators.fusion.jobs import Job
from tests.emulators.fusion.outputs import job_outputs
from tests.emulators.fusion.rest import Refusal, byte_range, error, page_of
from tests.emulators.fusion.scenario import SUCCESS_STATUSES, BadLink, ExtractScenario, Redirect
from tests.emulators.fusion.submission import InvalidSubmission, Submission, parse_submission
from tests.emulators.fusion.versions import Revised, Version, modified_at
from tests.emulators.loopback import Request, Response

API = "/api/saas-batch/"
JOBS = "/api/saas-batch/jobscheduler/v1/jobRequests"
FILES = "/api/saas-batch/jobfilemanager/v1/jobRequests"
# Where Redirect.OTHER_HOST sends downloads: a pre-authenticated location that needs no token (our choice).
STORAGE = re.compile(r"/storage/(?P<job>[^/]+)/(?P<name>[^/]+)")
JOBS_PAGE = (25, 500)  # default and largest `limit` of the jobRequests list
FEATURE_DISABLED = "The requested feature is not enabled"


@dataclass
class ExtractState:
    """An extract's scenario and what has been counted against it since it was defined."""

    scenario: ExtractScenario
    jobs_submitted: int = 0
    faults_served: int = 0

    def next_fault(self) -> Response | None:
        """The answer the scenario's fault sequence gives the next request, if any (then counted)."""
        plan, served = self.scenario, self.faults_served
        if plan.feature_disabled:
            return error(404, FEATURE_DISABLED)
        throttled = plan.throttle_requests
        failed = throttled + plan.server_errors
        expired = failed + plan.expire_tokens
        if served >= expired:
            return None
        self.faults_served += 1
        if served < throttled:
            return error(429, "Too many requests", {"Retry-After": str(plan.retry_after)})
        if served < failed:
            return error(503, "The service is temporarily unavailable")
        return error(
            401, "The access token has expired", {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )


Handler = Callable[[Request, re.Match[str], Token], Response]


class BatchApi:
    def __init__(
        self, clock: Clock, identity: IdentityDomain, base_url: Callable[[], str], first_job_id: int
    ) -> None:
        self._clock = clock
        self._identity = identity
        self._base_url = base_url
        self._ids = itertools.count(first_job_id)
        self._extracts: dict[str, ExtractState] = {}
        self._jobs: dict[int, Job] = {}
        self._outputs: dict[int, list[OutputFile]] = {}
        self._drops: dict[tuple[int, str], int] = {}
        self._revisions: dict[tuple[int, str], int] = {}
        self._sent: dict[str, int] = {}  # file name -> body bytes handed to connections
        self._lock = threading.RLock()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(JOBS + "/?"), self._submit),
            ("GET", re.compile(JOBS + "/?"), self._list_jobs),
            ("GET", re.compile(JOBS + "/(?P<job>[^/]+)"), self._job_status),
            ("GET", re.compile(FILES + "/(?P<job>[^/]+)/outputFiles/?"), self._list_files),
            ("GET", re.compile(FILES + "/(?P<job>[^/]+)/outputFiles/(?P<name>[^/]+)"), self._file_item),
            ("GET", re.compile(FILES + "/(?P<job>[^/]+)/outputFiles/(?P<name>[^/]+)/content"), self._content),
        ]

    # State, for the emulator's public API.

    def define(self, name: str, scenario: ExtractScenario) -> None:
        if not name.strip():
            raise ValueError("an extract needs a non-empty name")
        with self._lock:
            self._extracts[name] = ExtractState(scenario)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def bytes_sent(self, name: str) -> int:
        with self._lock:
            return self._sent.get(name, 0)

    def revise(self, job_id: int | str, name: str) -> None:
        """The output file changes in place (versions.Revised); revised again, it is as it was."""
        job = self.job(job_id)
        with self._lock:
            files = self._files_of(job)
            [index] = [at for at, file in enumerate(files) if file.name == name]
            files[index] = Revised(files[index])
            self._revisions[(job.id, name)] = self._revisions.get((job.id, name), 0) + 1

    def job(self, job_id: int | str) -> Job:
        with self._lock:
            found = self._jobs.get(int(job_id)) if str(job_id).isdigit() else None
        if found is None:
            raise KeyError(f"no job request {job_id}")
        return found

    # HTTP.

    def dispatch(self, request: Request) -> Response:
        storage = STORAGE.fullmatch(request.path)
        if storage is not None:
            try:
                job = self._job_of(storage)
                return self._serve_file(request, job, self._file_of(job, storage)[1])
            except Refusal as refusal:
                return refusal.response
        if not request.path.startswith(API):
            return error(404, f"no resource at {request.path}")
        token = self._identity.bearer(request.headers.get("authorization"))
        if token is None:
            bad_token = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            return error(401, "a valid, unexpired bearer token is required", bad_token)
        allowed = False
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            allowed = True
            if method == request.method:
                try:
                    return handler(request, match, token)
                except Refusal as refusal:
                    return refusal.response
        if allowed:
            return error(405, f"{request.method} is not allowed on {request.path}")
        return error(404, f"no resource at {request.path}")

    def _submit(self, request: Request, match: re.Match[str], token: Token) -> Response:
        try:
            submission = parse_submission(request.headers.get("content-type"), request.body)
        except InvalidSubmission as invalid:
            return error(400, str(invalid))
        self._guard(submission.extract)
        job = self._create(submission, token)
        base = self._base_url()
        if job.scenario.location_foreign_host:
            base = base.replace("127.0.0.1", "localhost")
        return Response(202, b"", {"Location": f"{base}{JOBS}/{job.id}"})

    def _create(self, submission: Submission, token: Token) -> Job:
        with self._lock:
            job_id = next(self._ids)
            state = self._extracts.get(submission.extract)
            failure = None
            if state is None:
                scenario = ExtractScenario(outcome="ERROR")
                failure = f"extract definition {submission.extract!r} does not exist"
            else:
                scenario = state.scenario
                state.jobs_submitted += 1
                if state.jobs_submitted <= scenario.fail_first_jobs:
                    failure = "the extract failed (scenario fail_first_jobs)"
            echo = {
                "serviceName": "boss",
                "jobDefinitionName": "DataExport",
                "systemDerivedVersion": "1260",
                "jobSubmitter": token.subject,
                **submission.echo,
                "jobRetryNumber": 0,
                "timeoutThreshold": 36000,
                "type": "BATCH",
            }
            outcome = "ERROR" if failure else scenario.outcome
            job = Job(
                job_id, submission.extract, echo, self._clock.now(), scenario, outcome, failure, self._clock
            )
            self._jobs[job_id] = job
            return job

    def _list_jobs(self, request: Request, match: re.Match[str], token: Token) -> Response:
        jobs = self.jobs()
        return Response.json(200, page_of(request, [job.summary() for job in jobs], *JOBS_PAGE))

    def _job_status(self, request: Request, match: re.Match[str], token: Token) -> Response:
        job = self._job_of(match)
        self._guard(job.extract)
        return Response.json(200, job.document())

    def _list_files(self, request: Request, match: re.Match[str], token: Token) -> Response:
        job = self._job_of(match)
        self._guard(job.extract)
        files = self._files_of(job)
        size = job.scenario.page_size
        page = page_of(request, list(enumerate(files)), size, size)
        page["items"] = [self._item(job, file, index) for index, file in page["items"]]
        return Response.json(200, page)

    def _file_item(self, request: Request, match: re.Match[str], token: Token) -> Response:
        job = self._job_of(match)
        self._guard(job.extract)
        index, file = self._file_of(job, match)
        return Response.json(200, self._item(job, file, index))

    def _content(self, request: Request, match: re.Match[str], token: Token) -> Response:
        job = self._job_of(match)
        self._guard(job.extract)
        _, file = self._file_of(job, match)
        redirect = job.scenario.redirect_downloads
        hop = int(request.query.get("hop", "0") or 0)
        if redirect is Redirect.SAME_HOST and hop == 0:
            return Response(307, b"", {"Location": f"{request.path}?hop=1"})
        if redirect is Redirect.LOOP:
            return Response(302, b"", {"Location": f"{request.path}?hop={hop + 1}"})
        if redirect is Redirect.OTHER_HOST:
            other = self._base_url().replace("127.0.0.1", "localhost")
            return Response(302, b"", {"Location": f"{other}/storage/{job.id}/{quote(file.name, safe='')}"})
        return self._serve_file(request, job, file)

    def _serve_file(self, request: Request, job: Job, file: OutputFile) -> Response:
        size = file.digest().size
        with self._lock:
            revisions = self._revisions.get((job.id, file.name), 0)
        version = Version.of(file, modified_at(job.ended_at, revisions), dated_only=job.scenario.dated_only)
        if version.precondition_failed(request.headers):
            return error(412, f"{file.name} is not the version the request names", version.headers())
        ranges = not job.scenario.ignore_range and version.range_applies(request.headers)
        span = byte_range(request.headers.get("range"), size) if ranges else None
        start, stop = span or (0, size)
        accept = "none" if job.scenario.ignore_range else "bytes"
        headers = {"Content-Type": file.content_type, "Accept-Ranges": accept, **version.headers()}
        if span is not None:
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        drop_after = self._drop_point(job, file.name, stop - start)
        body = self._counted(file.name, file.read(start, stop))
        return Response(206 if span else 200, body, headers, stop - start, drop_after)

    def _counted(self, name: str, body: Iterator[bytes]) -> Iterator[bytes]:
        """The body, each block counted as it is handed to the connection (sent, whether read or not)."""
        try:
            for block in body:
                with self._lock:
                    self._sent[name] = self._sent.get(name, 0) + len(block)
                yield block
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    # Helpers.

    def _guard(self, extract: str) -> None:
        with self._lock:
            state = self._extracts.get(extract)
            fault = state.next_fault() if state is not None else None
        if fault is not None:
            raise Refusal(fault)

    def _job_of(self, match: re.Match[str]) -> Job:
        try:
            return self.job(match["job"])
        except KeyError:
            raise Refusal(error(404, f"job request {match['job']} does not exist")) from None

    def _files_of(self, job: Job) -> list[OutputFile]:
        status = job.status
        if status not in SUCCESS_STATUSES:
            raise Refusal(error(409, f"job request {job.id} has not succeeded: its status is {status}"))
        with self._lock:
            if job.id not in self._outputs:
                self._outputs[job.id] = job_outputs(job)
            return self._outputs[job.id]

    def _file_of(self, job: Job, match: re.Match[str]) -> tuple[int, OutputFile]:
        name = unquote(match["name"])
        for index, file in enumerate(self._files_of(job)):
            if file.name == name:
                return index, file
        raise Refusal(error(404, f"job request {job.id} has no output file {name!r}"))

    def _item(self, job: Job, file: OutputFile, index: int) -> dict[str, Any]:
        digest = file.digest()
        checksum = digest.sha256
        plan = job.scenario
        first = index == 0
        if first and plan.wrong_checksum:
            checksum = checksum[:-1] + ("1" if checksum[-1] == "0" else "0")
        base = self._base_url()
        path = f"{FILES}/{job.id}/outputFiles/{quote(file.name, safe='')}"
        enclosure = f"{base}{path}/content"
        if first and plan.bad_link is not None:
            enclosure = _bad_link(plan.bad_link, base, path)
        return {
            "fileName": file.name,
            "fileSize": digest.size,
            "timeCreated": _time_created(job.ended_at),
            "checksum": f"sha-256={checksum}",
            "$context": {"links": {"$self": {"href": f"{base}{path}"}, "enclosure": {"href": enclosure}}},
        }

    def _drop_point(self, job: Job, name: str, length: int) -> int | None:
        """Where to cut this download, while the scenario still has drops to spend on this file."""
        after = job.scenario.drop_download_after_bytes
        if after is None or after >= length:
            return None
        with self._lock:
            done = self._drops.get((job.id, name), 0)
            if done >= job.scenario.drop_download_times:
                return None
            self._drops[(job.id, name)] = done + 1
        return after


def _bad_link(kind: BadLink, base: str, path: str) -> str:
    if kind is BadLink.FOREIGN_HOST:
        return f"{base.replace('127.0.0.1', 'localhost')}{path}/content"
    if kind is BadLink.PLAIN_HTTP:
        return f"{base.replace('https://', 'http://')}{path}/content"
    outside = f"{path.replace('/api/saas-batch/jobfilemanager/v1', '/download')}/content"
    if kind is BadLink.FOREIGN_OUTSIDE_API:
        return base.replace("127.0.0.1", "localhost") + outside
    return base + outside


def _time_created(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d}"
