"""Withheld grants: the emulator refuses chosen operations as OCI refuses a call no policy allows.

    emu.withhold("PutObject")                                         # to anyone, in any bucket
    emu.withhold("PublishMessage", resource=topic_id)                  # on one topic
    emu.withhold("GetSecretBundle", principal=function_ocid("poll"))   # to one function's principal
    emu.withhold("InvokeFunction", principal=schedule_ocid("sweep"))   # a schedule may not start its function

OCI answers a call that no policy allows as it answers a missing resource, so a caller cannot tell them
apart: 404 NotAuthorizedOrNotFound ("Authorization failed or requested resource not found."), and in
Object Storage 404 BucketNotFound ("Either the bucket ... does not exist in the namespace ... or you are not
authorized to access it"). `resource` is what a policy's where-clause names: the bucket of an object
operation, the topic, the secret, the function. `principal` is the caller: a resource principal's
resource id (a function, a schedule) or an API key's user OCID; None matches any.

Resource Scheduler invokes in-process (scheduler.py): it asks `refuses("InvokeFunction", ...)` itself.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from urllib.parse import unquote

from tests.emulators.oci.http import Request, Response, error

_OBJECT = r"/n/(?P<namespace>[^/]+)/b/(?P<resource>[^/]+)/o/.+"
_UPLOAD = r"/n/(?P<namespace>[^/]+)/b/(?P<resource>[^/]+)/u/.+"
# The operations a grant can be withheld from: (method, raw path), `resource` as a policy names it.
OPERATIONS: dict[str, tuple[str, re.Pattern[str]]] = {
    name: (method, re.compile(path))
    for name, method, path in (
        ("GetSecretBundle", "GET", r"/20190301/secretbundles/(?P<resource>[^/]+)"),
        ("GetSecret", "GET", r"/20180608/secrets/(?P<resource>[^/]+)"),
        ("PutObject", "PUT", _OBJECT),
        ("GetObject", "GET", _OBJECT),
        ("HeadObject", "HEAD", _OBJECT),
        ("DeleteObject", "DELETE", _OBJECT),
        ("ListObjects", "GET", r"/n/(?P<namespace>[^/]+)/b/(?P<resource>[^/]+)/o/?"),
        ("CreateMultipartUpload", "POST", r"/n/(?P<namespace>[^/]+)/b/(?P<resource>[^/]+)/u/?"),
        ("ListMultipartUploads", "GET", r"/n/(?P<namespace>[^/]+)/b/(?P<resource>[^/]+)/u/?"),
        ("UploadPart", "PUT", _UPLOAD),
        ("CommitMultipartUpload", "POST", _UPLOAD),
        ("AbortMultipartUpload", "DELETE", _UPLOAD),
        ("GetObjectLifecyclePolicy", "GET", r"/n/(?P<namespace>[^/]+)/b/(?P<resource>[^/]+)/l"),
        ("PublishMessage", "POST", r"/20181201/topics/(?P<resource>[^/]+)/messages"),
        ("GetTopic", "GET", r"/20181201/topics/(?P<resource>[^/]+)"),
        ("ListSubscriptions", "GET", r"/20181201/subscriptions"),
        ("PostMetricData", "POST", r"/20180401/metrics"),
        ("ListAlarms", "GET", r"/20180401/alarms"),
        ("InvokeFunction", "POST", r"/\d{8}/functions/(?P<resource>[^/]+)/actions/invoke"),
        ("GetFunction", "GET", r"/\d{8}/functions/(?P<resource>[^/]+)"),
        ("ListSchedules", "GET", r"/20240430/schedules"),
        ("SearchLogs", "POST", r"/20190909/search"),
    )
}


@dataclass(frozen=True)
class Withheld:
    operation: str
    principal: str | None
    resource: str | None

    def covers(self, operation: str, principal: str | None, resource: str | None) -> bool:
        return (
            self.operation == operation
            and self.principal in (None, principal)
            and self.resource in (None, resource)
        )


class Grants:
    """What the tenancy's policies do not allow; everything else is allowed."""

    def __init__(self) -> None:
        self._withheld: list[Withheld] = []
        self._lock = threading.Lock()

    def withhold(self, operation: str, *, principal: str | None = None, resource: str | None = None) -> None:
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; known: {', '.join(sorted(OPERATIONS))}")
        with self._lock:
            self._withheld.append(Withheld(operation, principal, resource))

    def restore(self) -> None:
        """Every grant given back (a fresh emulator)."""
        with self._lock:
            self._withheld.clear()

    def refuses(self, operation: str, principal: str | None, resource: str | None) -> bool:
        with self._lock:
            return any(w.covers(operation, principal, resource) for w in self._withheld)

    def refusal(self, request: Request, principal: str | None) -> Response | None:
        """OCI's answer to the request when a withheld grant covers it; None when it is allowed."""
        for operation, (method, pattern) in OPERATIONS.items():
            match = pattern.fullmatch(request.path) if method == request.method else None
            if match is None:
                continue
            resource = unquote(match["resource"]) if "resource" in pattern.groupindex else None
            if not self.refuses(operation, principal, resource):
                return None
            if "namespace" in pattern.groupindex:
                return error(
                    404,
                    "BucketNotFound",
                    f"Either the bucket named '{resource}' does not exist in the namespace "
                    f"'{unquote(match['namespace'])}' or you are not authorized to access it",
                )
            return error(
                404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found."
            )
        return None
