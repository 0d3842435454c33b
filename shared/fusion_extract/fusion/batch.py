"""The Batch Processing REST API client (ports.FusionApi): submit, find, status, output files, download.

Submit is not idempotent, so the job carries the run token in its `description` (the documented
four-part form, the token in the schedule name: `fusion-extract-<token>::<extract>::Full::Immediate`),
and after any failure that may have happened after Fusion received the POST we look the job up by that
token before posting again: one run token never creates two jobs. Listings follow every page whatever
paging style Fusion uses (`links` rel=next, `hasMore` with offset/limit, or `totalItems`). Downloads
stream in bounded memory and resume with Range after a dropped connection.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterator, Mapping
from typing import Any

import requests

from fusion_extract.clock import Clock
from fusion_extract.config import Settings
from fusion_extract.errors import (
    MalformedResponseError,
    MessageError,
    UpstreamError,
)
from fusion_extract.fusion import urls
from fusion_extract.fusion.download import CHUNK_SIZE, ParallelDownload
from fusion_extract.fusion.http import Bearer, HttpClient
from fusion_extract.fusion.status import parse_job_status
from fusion_extract.fusion.tokens import TokenProvider
from fusion_extract.models import ExtractRequest, JobStatus, OutputFile, SourceVersion
from fusion_extract.ports import CredentialSource
from fusion_extract.retry import RandomSource, RetryPolicy

logger = logging.getLogger(__name__)

JOBS = ("jobscheduler", "v1", "jobRequests")
FILES = ("jobfilemanager", "v1", "jobRequests")
MAX_JSON_BYTES = 2**20  # a job status (FUSION_MAX_JSON_BYTES)
MAX_LISTING_BYTES = 16 * 2**20  # one page of a listing (FUSION_MAX_LISTING_BYTES)
MAX_PAGES = 10_000
_RUN_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SCHEDULE_PREFIX = "fusion-extract-"  # the description's first part: this prefix and the run token
# Oracle documents no limit on `description`; we keep it within 240 characters (a common width of Oracle
# description columns), our choice. The longest run token (64) and extract name (100) fit with room.
DESCRIPTION_LIMIT = 240
_RECURRENCE = {"MINUTE": "Minutely", "HOUR": "Hourly", "DAY": "Daily", "WEEK": "Weekly", "MONTH": "Monthly"}
_CHECKSUM = re.compile(r"^sha-256=([0-9a-f]{64})$", re.I)


class BatchClient:
    def __init__(
        self,
        http: HttpClient,
        *,
        base_url: str,
        chunk_size: int = CHUNK_SIZE,
        max_json_bytes: int = MAX_JSON_BYTES,
        max_listing_bytes: int = MAX_LISTING_BYTES,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._chunk_size = chunk_size
        self._max_json = max_json_bytes
        self._max_listing = max_listing_bytes

    def submit(self, request: ExtractRequest, run_token: str, *, resume: bool = False) -> str:
        """Submit the DataExport job for this run token; the job id. `resume`: look for it first."""
        body = submission(request, run_token)
        if resume and (found := self.find_job(run_token)) is not None:
            logger.info("job already submitted for this run", extra={"job_id": found, "run_token": run_token})
            return found
        url = urls.endpoint(self._base, *JOBS)
        # The POST may reach Fusion and still fail for us: before posting again, look for its job.
        job = self._http.retry.call(
            lambda: self._job_from_location(self._http.send_once("POST", url, json=body)),
            before_retry=lambda: self.find_job(run_token),
        )
        logger.info("submitted job", extra={"job_id": job, "extract": request.extract})
        return job

    def find_job(self, run_token: str) -> str | None:
        """The id of the job submitted with this run token, if Fusion lists one."""
        token = _run_token(run_token)
        for item in self._items(urls.endpoint(self._base, *JOBS)):
            request = _mapping(item.get("jobRequest"))
            descriptions = (item.get("description"), request.get("description"))
            if any(isinstance(text, str) and token in _tokens_of(text) for text in descriptions):
                job = item.get("jobRequestId", request.get("jobRequestId"))
                if job is None or isinstance(job, bool | dict | list):
                    raise UpstreamError(f"job request listing: the job of run {token} has no jobRequestId")
                return urls.job_id(str(job))
        return None

    def job_status(self, job_id: str) -> JobStatus:
        job = urls.job_id(job_id)
        return parse_job_status(job, self._get_json(urls.endpoint(self._base, *JOBS, job), self._max_json))

    def output_files(self, job_id: str) -> list[OutputFile]:
        job = urls.job_id(job_id)
        items = self._items(urls.endpoint(self._base, *FILES, job, "outputFiles"))
        files = [self._output_file(job, position, item) for position, item in enumerate(items)]
        names = [file.name for file in files]
        if duplicates := sorted({name for name in names if names.count(name) > 1}):
            raise UpstreamError(f"job {job}: output file names listed twice (as safe names): {duplicates}")
        return files

    def download(
        self, file: OutputFile, start: int = 0, version: SourceVersion | None = None
    ) -> ParallelDownload:
        """The file's bytes from `start` in bounded chunks, resumed with Range after a dropped connection,
        of `version` only, a large file over several ranged requests at once (download.py)."""
        return ParallelDownload(self._http, file, self._chunk_size, start=start, version=version)

    def _job_from_location(self, response: requests.Response) -> str:
        response.close()
        location = response.headers.get("Location")
        if not location:
            raise UpstreamError(
                f"submit answered {response.status_code} without a Location header; "
                "the job may exist: retry with resume",
                status=response.status_code,
            )
        return urls.job_id_from_location(location)

    def _output_file(self, job: str, position: int, item: Mapping[str, Any]) -> OutputFile:
        where = f"job {job} output file #{position}"
        name = item.get("fileName")
        if not isinstance(name, str) or not name:
            raise UpstreamError(f"{where}: fileName is missing or not text")
        where = f"{where} ({name[:100]!r})"
        size = item.get("fileSize")
        if isinstance(size, str) and size.isdigit():
            size = int(size)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise UpstreamError(f"{where}: fileSize {size!r} is not a number of bytes")
        href = _mapping(_mapping(_mapping(item.get("$context")).get("links")).get("enclosure")).get("href")
        if href is not None and not isinstance(href, str):
            raise UpstreamError(f"{where}: $context.links.enclosure.href is not text")
        link = href or urls.endpoint(self._base, *FILES, job, "outputFiles", name, "content")
        return OutputFile(
            name=urls.safe_file_name(name),
            size=size,
            sha256=_sha256(item.get("checksum"), where),
            url=urls.rebased_api_url(self._base, link),
            listed_name=name,
        )

    def _items(self, url: str) -> Iterator[Mapping[str, Any]]:
        """Every item of a listing, page after page."""
        params: dict[str, int] = {}
        seen = 0
        previous: list[Any] = []
        for _ in range(MAX_PAGES):
            body = self._get_json(url, self._max_listing, params)
            items = body.get("items", [])
            if not isinstance(items, list):
                raise MalformedResponseError(f"GET {url}: items is not a list")
            if items and items == previous:
                raise UpstreamError(f"GET {url}: a page repeated the previous one (paging not honoured)")
            for position, item in enumerate(items):
                if not isinstance(item, Mapping):
                    raise MalformedResponseError(f"GET {url}: item #{seen + position} is not an object")
                yield item
            seen, previous = seen + len(items), items
            next_link = _next_link(body)
            if next_link is not None:
                url, params = urls.api_url(self._base, next_link), {}
            elif items and _has_more(body, seen):
                limit = _count(body.get("limit")) or params.get("limit") or len(items)
                params = {"offset": seen, "limit": limit}
            else:
                return
        raise UpstreamError(f"GET {url}: more than {MAX_PAGES} pages")

    def _get_json(self, url: str, limit: int, params: Mapping[str, int] | None = None) -> Mapping[str, Any]:
        body = self._http.get_json(
            "GET", url, limit=limit, params=params or None, headers={"Accept": "application/json"}
        )
        if not isinstance(body, Mapping):
            raise MalformedResponseError(f"GET {url} answered without a JSON object (JSON of another type)")
        return body


def build_batch_client(
    settings: Settings,
    credentials: CredentialSource,
    clock: Clock,
    *,
    session: requests.Session | None = None,
    rand: RandomSource = random.random,
) -> BatchClient:
    """The client wired from configuration: one session, one retry policy, one token cache."""
    session = session or requests.Session()
    retry = RetryPolicy(
        clock=clock,
        max_attempts=settings.http_max_attempts,
        max_seconds=settings.http_max_retry_seconds,
        rand=rand,
    )
    timeout = (settings.connect_timeout, settings.read_timeout)
    idcs = HttpClient(session, timeout=timeout, ca_bundle=settings.ca_bundle, retry=retry)
    tokens = TokenProvider(
        idcs,
        idcs_url=settings.idcs_url,
        scope=settings.fusion_scope,
        grant=settings.fusion_grant,
        credentials=credentials,
        clock=clock,
        max_json_bytes=settings.max_json_bytes,
    )
    bearer = Bearer(tokens, settings.fusion_base_url)
    fusion = HttpClient(
        session,
        timeout=timeout,
        ca_bundle=settings.ca_bundle,
        retry=retry,
        bearer=bearer,
        download_hosts=settings.download_hosts,
    )
    return BatchClient(
        fusion,
        base_url=settings.fusion_base_url,
        max_json_bytes=settings.max_json_bytes,
        max_listing_bytes=settings.max_listing_bytes,
    )


def submission(request: ExtractRequest, run_token: str) -> dict[str, Any]:
    """The POST jobRequests body, validated first: MessageError names every problem."""
    extract = request.extract
    if not extract.strip() or any(not ch.isprintable() for ch in extract):
        raise MessageError(f"extract name {extract[:60]!r} must be non-empty text without control characters")
    body: dict[str, Any] = {
        "serviceName": "boss",
        "jobDefinitionName": "DataExport",
        "description": description(request, run_token),
        "requestParameters": {"submit.argument1": extract, "submit.argument2": request.mode.argument},
    }
    if request.run_at_times is not None:
        body["runAtTimes"] = request.run_at_times.to_fusion()
    return body


def description(request: ExtractRequest, run_token: str) -> str:
    """The documented four-part form `<schedule name>::<extract>::<Full|Incremental>::<recurrence>`, whose
    schedule name carries the run token: `fusion-extract-<run token>::Sales::Full::Immediate`."""
    extract = request.extract
    if "::" in extract:
        raise MessageError(
            f"extract name {extract[:60]!r} must not contain '::' (the description's separator)"
        )
    window = request.run_at_times
    recurrence = "Immediate" if window is None else _RECURRENCE[window.time_unit]
    text = f"{SCHEDULE_PREFIX}{_run_token(run_token)}::{extract}::{request.mode.label}::{recurrence}"
    if len(text) > DESCRIPTION_LIMIT:
        raise MessageError(
            f"extract name {extract[:60]!r}... is too long for the job description "
            f"({len(text)} of at most {DESCRIPTION_LIMIT} characters)"
        )
    return text


def _run_token(value: str) -> str:
    if not _RUN_TOKEN.match(value):
        raise MessageError(f"run token {value[:80]!r} must be 1-64 of [A-Za-z0-9_-]")
    return value


def _tokens_of(description: str) -> tuple[str | None, str]:
    """The run token of our schedule name (first part), and the last part (the previous release put the
    token there: `<extract>::<mode>::<token>`)."""
    first, last = description.split("::", 1)[0], description.rsplit("::", 1)[-1]
    return (first.removeprefix(SCHEDULE_PREFIX) if first.startswith(SCHEDULE_PREFIX) else None), last


def _sha256(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    match = _CHECKSUM.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise UpstreamError(f"{where}: checksum {str(value)[:100]!r} is not sha-256=<64 hex digits>")
    return match.group(1).lower()


def _next_link(body: Mapping[str, Any]) -> str | None:
    links = body.get("links")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, Mapping) and link.get("rel") == "next" and isinstance(link.get("href"), str):
            return str(link["href"])
    return None


def _has_more(body: Mapping[str, Any], seen: int) -> bool:
    more = body.get("hasMore")
    if more is not None:
        return str(more).lower() == "true"
    total = _count(body.get("totalItems"))
    return total is not None and seen < total


def _count(value: Any) -> int | None:
    """A positive whole number from a paging field, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
