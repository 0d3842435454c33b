"""ports.Publisher over OCI Notifications.

A message is compact JSON in MessageDetails.body; an alert (publish_text) is text for people ending in
its JSON (chain/alerts.py). ONS refuses messages over 64 KB, so the size is checked
before anything is sent. Publishing is not idempotent: the client (clients.py) retries it once only, on
throttling, a 5xx or a failed connection. A duplicate is harmless (every step dedupes); a message lost
for good would stall a run until the sweep re-drives it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from fusion_extract.errors import MessageError
from fusion_extract.oci.calls import translated

MAX_MESSAGE_BYTES = 64 * 1024
DEFAULT_TITLE = "fusion-extract"


class OciPublisher:
    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client  # built on the first publish: most transfers publish nothing

    @cached_property
    def client(self) -> Any:
        return self._client()

    def publish(self, topic_id: str, message: Mapping[str, Any], *, title: str = DEFAULT_TITLE) -> str:
        """Publish one JSON message; returns the message id. MessageError if it exceeds 64 KB."""
        body = json.dumps(message, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        return self.publish_text(topic_id, title, body)

    def publish_text(self, topic_id: str, title: str, body: str) -> str:
        """Publish a title and a text body as they are (alerts: read by people)."""
        size = len(body.encode()) + len(title.encode())
        if size > MAX_MESSAGE_BYTES:
            raise MessageError(
                f"message for topic {topic_id} is {size} bytes; Notifications accepts {MAX_MESSAGE_BYTES}"
            )
        from oci.ons.models import MessageDetails  # with the client: a step that publishes nothing skips both

        with translated(f"publish to topic {topic_id}"):
            result = self.client.publish_message(topic_id, MessageDetails(title=title, body=body)).data
        return str(result.message_id)
