"""The one HTTP path to Fusion and IDCS: a requests.Session with the rules applied on every call.

- explicit (connect, read) timeouts; `verify=<ca bundle>` on each request, because the REQUESTS_CA_BUNDLE
  environment variable would otherwise override Session.verify;
- redirects are not followed, except by a download (`follow_redirects=True`): at most three, https only,
  on the Fusion API with the token, to a host of DOWNLOAD_HOSTS without it, anywhere else UnsafeInputError;
- 429, 5xx, dropped connections and timeouts are retried with the backoff policy, honouring Retry-After;
- with a `Bearer`, the token is attached only to URLs that pass the URL rules, and a 401 gets one fresh
  token and one more try;
- any other error answer becomes an error from errors.py with the status and a masked body excerpt.

`send_once` is a single try that raises TransientError for a transient failure, for calls that are not
idempotent (submit retries it itself, looking before it posts again); `request` is the retried form.
`get_json` is `request` for a JSON answer: the body is streamed through a size cap and parsed, and one that
is too large, not JSON or cut short raises (MalformedResponseError; TransientError for a drop, retried).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests

from fusion_extract.errors import (
    AuthError,
    FusionExtractError,
    MalformedResponseError,
    NotFoundError,
    TransientError,
    UnsafeInputError,
    UpstreamError,
)
from fusion_extract.fusion import urls
from fusion_extract.logging import mask
from fusion_extract.retry import RetryPolicy, parse_retry_after

logger = logging.getLogger(__name__)

_BODY_READ = 4096  # bytes of an error body we read, at most
_EXCERPT = 300  # characters of it we quote
_JSON_READ = 64 * 1024  # bytes of a JSON body read at a time
_PREFIX = 60  # characters of a body that is not JSON we quote
MAX_REDIRECTS = 3  # hops a download follows (as UTL_HTTP does by default)
_REDIRECTS = (301, 302, 303, 307, 308)
_NOT_ENABLED = re.compile(r"not\s+(?:been\s+)?(?:enabled|provisioned|subscribed|licensed)|disabled", re.I)
# Exceptions after which the request may or may not have reached the server; all worth another try.
_DROPPED = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class TokenSource(Protocol):
    def token(self) -> str: ...

    def invalidate(self) -> None: ...


@dataclass(frozen=True)
class Bearer:
    """Our Fusion token, and the base URL it may be sent to (https, same host, /api/saas-batch/ only)."""

    tokens: TokenSource
    base_url: str


@dataclass(frozen=True)
class Rejection:
    """A final error answer: which call, its status, and the start of its body."""

    call: str
    status: int
    body: str

    @property
    def excerpt(self) -> str:
        return mask(" ".join(self.body.split()))[:_EXCERPT]


ErrorMapper = Callable[[Rejection], FusionExtractError]


def fusion_error(rejection: Rejection) -> FusionExtractError:
    """The error for a Fusion answer that retrying will not fix."""
    call, status, excerpt = rejection.call, rejection.status, rejection.excerpt
    if status == 404 and _NOT_ENABLED.search(rejection.body):
        return NotFoundError(
            f"Batch Processing / Data Extraction not enabled on this pod ({call} answered 404: {excerpt}); "
            "enable Data Extraction in Setup Manager and ask Oracle to provision Batch Processing",
            status=status,
        )
    if status == 404:
        return NotFoundError(f"{call} answered 404: {excerpt}", status=status)
    if status == 401:
        return AuthError(
            f"{call} refused a freshly issued token (401): check FUSION_SCOPE and that the OAuth client "
            "has the Batch Processing roles"
        )
    return UpstreamError(f"{call} answered {status}: {excerpt}", status=status)


class HttpClient:
    def __init__(
        self,
        session: requests.Session,
        *,
        timeout: tuple[float, float],
        ca_bundle: str | None,
        retry: RetryPolicy,
        bearer: Bearer | None = None,
        download_hosts: Collection[tuple[str, int]] = (),
    ) -> None:
        self._session = session
        self._timeout = timeout
        self._ca_bundle = ca_bundle
        self._bearer = bearer
        self._download_hosts = frozenset(download_hosts)  # (host, port) a download may be redirected to
        self.retry = retry

    def request(self, method: str, url: str, **options: Any) -> requests.Response:
        """`send_once`, retrying transient failures; TransientError once retries are spent."""
        return self.retry.call(lambda: self.send_once(method, url, **options))

    def get_json(
        self, method: str, url: str, *, limit: int, errors: ErrorMapper = fusion_error, **options: Any
    ) -> Any:
        """The JSON document of a 2xx answer, its body read in pieces up to `limit` bytes; retried like
        `request`, a body cut short included. MalformedResponseError when too large or not JSON."""
        call = f"{method} {url}"

        def once() -> Any:
            response = self.send_once(method, url, errors=errors, stream=True, **options)
            return read_json(response, call, limit)

        return self.retry.call(once)

    def send_once(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: ErrorMapper = fusion_error,
        follow_redirects: bool = False,
        **options: Any,
    ) -> requests.Response:
        """One try (plus one after a 401 with a fresh token): the 2xx response, or raise.

        `options` go to requests (params, data, json, auth, stream); `errors` maps a final error answer.
        `follow_redirects` (downloads): follow up to MAX_REDIRECTS redirects that `_redirect_target` allows.
        """
        call = f"{method} {url}"
        try:
            target, with_token = url, True
            for hop in range(MAX_REDIRECTS + 2):
                response = self._send_with_token(method, target, headers, options, with_token)
                if not follow_redirects or response.status_code not in _REDIRECTS:
                    break
                location = response.headers.get("Location", "")
                response.close()
                if hop == MAX_REDIRECTS:
                    raise UpstreamError(
                        f"{call}: more than {MAX_REDIRECTS} redirects", status=response.status_code
                    )
                target, with_token = self._redirect_target(call, target, location)
        except requests.exceptions.SSLError as exc:
            raise UpstreamError(f"{call}: TLS verification failed; check CA_BUNDLE ({_reason(exc)})") from exc
        except _DROPPED as exc:
            raise TransientError(f"{call} failed: {_reason(exc)}") from exc
        if response.status_code < 300:
            return response
        rejection = Rejection(call, response.status_code, _body_start(response))
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.retry.clock.now())
            raise TransientError(
                f"{call} answered {rejection.status}: {rejection.excerpt}",
                status=rejection.status,
                retry_after=retry_after,
            )
        if response.status_code < 400:
            raise _redirect_error(rejection, url, response.headers.get("Location", ""))
        raise errors(rejection)

    def _send_with_token(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        options: dict[str, Any],
        with_token: bool,
    ) -> requests.Response:
        response = self._send(method, url, headers, options, with_token)
        if response.status_code == 401 and self._bearer is not None and with_token:
            response.close()
            self._bearer.tokens.invalidate()  # expired or revoked early: one fresh token, one more try
            response = self._send(method, url, headers, options, with_token)
        return response

    def _redirect_target(self, call: str, current: str, location: str) -> tuple[str, bool]:
        """Where a download's redirect leads, and whether the token goes along; UnsafeInputError when
        the target is not https, or neither on the Fusion API nor on a host of DOWNLOAD_HOSTS."""
        shown = repr(location[:200])
        if not location or any(not ch.isprintable() or ch.isspace() for ch in location):
            raise UnsafeInputError(f"{call} redirected to {shown}: not a plain URL")
        target = urlsplit(urljoin(current, location))
        if target.scheme != "https":
            raise UnsafeInputError(f"{call} redirected to {shown}: it is not https")
        if target.username is not None or target.password is not None:
            raise UnsafeInputError(f"{call} redirected to {shown}: it carries user information")
        resolved = target._replace(fragment="").geturl()
        if self._bearer is not None and _origin(resolved) == _origin(self._bearer.base_url):
            return urls.api_url(self._bearer.base_url, resolved), True
        try:
            host = ((target.hostname or "").lower(), target.port or 443)
        except ValueError:  # a port out of range
            host = ("", 0)
        if host in self._download_hosts:
            return resolved, False
        raise UnsafeInputError(
            f"{call} redirected to another host ({shown}), neither the Fusion host nor in DOWNLOAD_HOSTS"
        )

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        options: dict[str, Any],
        with_token: bool = True,
    ) -> requests.Response:
        sent_headers = dict(headers or {})
        if self._bearer is not None and with_token:
            url = urls.api_url(self._bearer.base_url, url)  # the token never leaves the Fusion API
            sent_headers["Authorization"] = f"Bearer {self._bearer.tokens.token()}"
        if self._ca_bundle is not None:
            options = {**options, "verify": self._ca_bundle}
        return self._session.request(
            method, url, headers=sent_headers, timeout=self._timeout, allow_redirects=False, **options
        )


def _redirect_error(rejection: Rejection, url: str, location: str) -> FusionExtractError:
    target = urljoin(url, location)
    if _origin(target) != _origin(url):
        return UnsafeInputError(
            f"{rejection.call} redirected to another host ({location[:200]!r}); redirects are never followed"
        )
    return UpstreamError(
        f"{rejection.call} answered {rejection.status} redirect to {location[:200]!r}; "
        "redirects are not followed",
        status=rejection.status,
    )


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def read_json(response: requests.Response, call: str, limit: int) -> Any:
    """The response's JSON body, read `_JSON_READ` bytes at a time and never past `limit`; closes it.

    A Content-Length over the cap is refused before any byte is read; a body without one stops being
    read at the cap. Too large, not UTF-8 JSON, or nested too deep to parse: MalformedResponseError,
    quoting at most a short masked prefix. A connection dropped mid-body: TransientError.
    """
    status = response.status_code
    data = bytearray()
    try:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise MalformedResponseError(
                f"{call}: the body declares {declared} bytes, more than the {limit} allowed", status=status
            )
        for chunk in response.iter_content(min(_JSON_READ, limit + 1)):
            data += chunk
            if len(data) > limit:
                raise MalformedResponseError(
                    f"{call}: the body is larger than {limit} bytes (the most allowed)", status=status
                )
    except _DROPPED as exc:
        raise TransientError(f"{call}: the connection dropped mid-body ({_reason(exc)})") from exc
    finally:
        response.close()
    try:
        return json.loads(bytes(data))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; deep nesting recurses
        raise MalformedResponseError(
            f"{call} answered {status} without a JSON object (the body is not JSON): {prefix(data)}",
            status=status,
        ) from None


def prefix(data: bytes | bytearray | str) -> str:
    """The start of a remote value, masked and quoted, for an error message."""
    text = data[: _PREFIX * 4].decode("utf-8", "replace") if not isinstance(data, str) else data
    shown = mask(text[:_PREFIX])
    return repr(shown) + ("..." if len(text) > _PREFIX else "")


def _body_start(response: requests.Response) -> str:
    """The first few KB of an error body, without reading an unbounded stream; closes the response."""
    try:
        head = next(response.iter_content(_BODY_READ), b"")
    except requests.RequestException:
        head = b""
    finally:
        response.close()
    return head.decode("utf-8", "replace") if isinstance(head, bytes) else str(head)


def _reason(exc: Exception) -> str:
    return mask(f"{type(exc).__name__}: {exc}")[:_EXCERPT]
