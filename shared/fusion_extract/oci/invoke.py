"""Invoke another function directly (manual fan-out, operator tools), detached or synchronously.

Detached is the normal way: the call returns 202 once the platform accepted it, and the function then has
its detached timeout (up to an hour). The body limit (6 MB) is checked before sending. Like publishing,
invoking is retried once at most (clients.py): the steps dedupe a duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fusion_extract.errors import MessageError
from fusion_extract.oci.calls import translated

MAX_BODY_BYTES = 6 * 1000 * 1000


class OciInvoker:
    def __init__(self, client: Any) -> None:
        self.client = client

    def invoke_detached(self, function_id: str, payload: Mapping[str, Any]) -> str:
        """Start the function and return at once; returns the request id to find it in the logs."""
        response = self._invoke(function_id, payload, "detached")
        response.data.close()
        return str(response.headers.get("opc-request-id", ""))

    def invoke(self, function_id: str, payload: Mapping[str, Any]) -> bytes:
        """Run the function and return its response body (for short work only: sync calls time out)."""
        response = self._invoke(function_id, payload, "sync")
        with translated(f"read the response of function {function_id}"):
            return bytes(response.data.content)

    def _invoke(self, function_id: str, payload: Mapping[str, Any], kind: str) -> Any:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        if len(body) > MAX_BODY_BYTES:
            raise MessageError(
                f"payload for function {function_id} is {len(body)} bytes; limit {MAX_BODY_BYTES}"
            )
        with translated(f"invoke function {function_id} ({kind})"):
            return self.client.invoke_function(function_id, invoke_function_body=body, fn_invoke_type=kind)
