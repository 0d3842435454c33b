"""Where the bearer token may go, and what remote names may become (docs/security.md).

Fusion hands us URLs (`Location`, download links, next-page links) and file names. None of them is
trusted: a link must resolve to https on the configured Fusion host (netloc and port) under
/api/saas-batch/, and a file name is reduced to one plain path segment before anyone uses it.
Whether Fusion's links name the configured host is not documented, so nothing is ever sent to another
host: a `Location` gives only its last path segment (the job id), and a download link on another host or
over http is rebuilt on the configured host when its path is an API path (refused otherwise).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from fusion_extract.errors import UnsafeInputError

API_PREFIX = "/api/saas-batch/"
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_JOB_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")
_MAX_NAME = 255
_SHOWN = 200  # characters of a refused value quoted in the error


def api_url(base_url: str, link: str) -> str:
    """`link` resolved against the Fusion base URL, if it may receive our bearer token."""
    _printable(link)
    resolved = urlsplit(urljoin(base_url + "/", link))
    if resolved.scheme != "https":
        raise _refused(link, "it is not https")
    if _origin(resolved.geturl()) != _origin(base_url):
        raise _refused(link, f"it is not on the Fusion host {urlsplit(base_url).netloc}")
    if not _is_api_path(resolved.path):
        raise _refused(link, f"its path is not under {API_PREFIX}")
    return urlunsplit(resolved._replace(fragment=""))


def rebased_api_url(base_url: str, link: str) -> str:
    """A link Fusion handed out, on the configured host: an http(s) link whose path is an API path has
    its origin replaced by the base URL's (whatever host, port or scheme it named); any other link must
    pass `api_url` as it is."""
    _printable(link)
    resolved = urlsplit(urljoin(base_url + "/", link))
    if resolved.scheme in ("http", "https") and _is_api_path(resolved.path):
        base = urlsplit(base_url)
        return api_url(base_url, urlunsplit(base._replace(path=resolved.path, query=resolved.query)))
    return api_url(base_url, link)


def job_id_from_location(location: str) -> str:
    """The job request id in a submit's `Location`: its last path segment, whatever host it names
    (nothing is ever sent there: every call is built on the configured host)."""
    _printable(location)
    path = urlsplit(location).path.rstrip("/")
    return job_id(unquote(path.rsplit("/", 1)[-1]))


def endpoint(base_url: str, *segments: str) -> str:
    """An API URL from fixed and variable path segments; each segment stays one segment."""
    return base_url + API_PREFIX + "/".join(quote(segment, safe="") for segment in segments)


def safe_file_name(name: str) -> str:
    """A remote file name reduced to one segment of [A-Za-z0-9._-]; never empty, '.' or '..'."""
    last = re.split(r"[/\\]", name)[-1]
    printable = "".join(ch for ch in last if ch.isprintable())
    safe = _UNSAFE_NAME_CHARS.sub("_", printable)[:_MAX_NAME]
    if safe in ("", ".", ".."):
        raise UnsafeInputError(f"refused file name {name[:_SHOWN]!r}: nothing safe is left of it")
    return safe


def job_id(value: str) -> str:
    """A job request id as it may appear in a URL path: short, plain characters only."""
    if not _JOB_ID.match(value):
        raise UnsafeInputError(
            f"refused job request id {value[:_SHOWN]!r}: expected up to 64 of [A-Za-z0-9._-]"
        )
    return value


def _is_api_path(raw_path: str) -> bool:
    path = unquote(raw_path)
    segments = path.split("/")
    return path.startswith(API_PREFIX) and "." not in segments and ".." not in segments and "\\" not in path


def _printable(link: str) -> None:
    if any(not ch.isprintable() or ch.isspace() for ch in link):
        raise _refused(link, "it contains spaces or control characters")


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # a non-numeric or out-of-range port
        raise _refused(url, "its port is invalid") from exc
    if parts.username is not None or parts.password is not None:
        raise _refused(url, "it carries user information")
    return parts.scheme, (parts.hostname or "").lower(), port


def _refused(link: str, reason: str) -> UnsafeInputError:
    return UnsafeInputError(f"refused URL {link[:_SHOWN]!r}: {reason}")
