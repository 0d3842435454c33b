"""OCI Notifications (ONS) for the emulator: topics, function subscriptions, asynchronous delivery.

    ons = NotificationsService(functions)                 # functions: FunctionsService
    topic = ons.create_topic("poll")
    ons.subscribe(topic, "ocid1.fnfunc.oc1..poll")
    NotificationDataPlaneClient(..., service_endpoint=endpoint).publish_message(topic, MessageDetails(...))
    ons.wait_idle(30); ons.deliveries; ons.published   # published: every accepted message, by topic id

Data plane over HTTP: `POST /20181201/topics/{topicId}/messages` with `{"title", "body"}` answers
`{"messageId", "timeStamp"}`; 404 for an unknown topic, 400 for a malformed message or a body
over 64 KB. Control plane in-process only: `create_topic`, `subscribe`.

Delivery, one worker thread: each message goes to each subscribed function as an invocation whose
body is the message body, with the headers X-OCI-NS-MessageId, -TopicOcid, -TopicName,
-MessageType and Content-Type. At least once; ordering is not guaranteed (none is documented).

What counts as delivered. ONS "has no information about a function after it's invoked", and
submit and transfer run longer than a sync invocation may, so ONS here invokes *detached*: a
delivery succeeds when Functions accepts the invocation (202), whatever the handler then does.
A function that ran and raised is not redelivered (the docs imply the same). A delivery fails
when the invocation is refused: function unknown (404) or its process unreachable (502
FunctionInvokeExecutionError). A failed delivery is retried on the documented schedule:
immediately, then after 1, 2, 4, 8, 16 and 32 minutes (32 thereafter) until 2 hours passed since the
first attempt, then the message is discarded. One minute lasts `retry_unit_seconds` (60 by default).

Fault knobs, read when a message is published: `duplicate` (every delivery twice, same message
id), `delay_seconds` (before the first attempt), `drop_next` (lose the next N messages) and
`drop_if` (lose those a predicate picks). A lost message is recorded with outcome "dropped".

Time comes from a Timer: SystemTimer in the demo, ManualTimer in tests (time moves only when the
test calls `advance`, so retries happen exactly when due and no test sleeps).
"""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from fusion_extract.clock import IdFactory, isoformat
from fusion_extract.errors import ConflictError, NotFoundError
from tests.emulators.oci.functions import FunctionsService
from tests.emulators.oci.http import Request, Response, Route, ServiceError

MAX_BODY_BYTES = 64 * 1024
MAX_RETRY_MINUTES = 120  # maxRetryDuration, 7,200,000 ms by default
BACKOFF_MINUTES = (0, 1, 2, 4, 8, 16, 32)  # waits before each retry; the last one repeats
PUBLISH_PATH = re.compile(r"/20181201/topics/(?P<topic_id>[^/]+)/messages")

Outcome = Literal["delivered", "failed", "discarded", "dropped"]


def retry_offsets(max_retry_minutes: float = MAX_RETRY_MINUTES) -> list[float]:
    """Minutes after the first attempt at which each attempt happens, the first one included:
    [0, 0, 1, 3, 7, 15, 31, 63, 95] for the default 2 hours."""
    offsets = [0.0]
    for retry in itertools.count():
        wait = BACKOFF_MINUTES[min(retry, len(BACKOFF_MINUTES) - 1)]
        if offsets[-1] + wait > max_retry_minutes:
            return offsets
        offsets.append(offsets[-1] + wait)
    raise AssertionError("unreachable")


# -- time ------------------------------------------------------------------------------------------


class Timer(Protocol):
    def now(self) -> datetime: ...

    def wait(self, condition: threading.Condition, until: datetime | None) -> None:
        """With `condition` held: block until it is notified or the timer reaches `until`."""


class SystemTimer:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, condition: threading.Condition, until: datetime | None) -> None:
        condition.wait(None if until is None else max(0.0, (until - self.now()).total_seconds()))


class ManualTimer:
    """Time that moves only on `advance` (or `sleep`, so it also serves as a fusion_extract Clock)."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._waiters: set[threading.Condition] = set()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            waiters = list(self._waiters)
        for condition in waiters:  # outside our lock: a waiter holds its condition while it asks now()
            with condition:
                condition.notify_all()

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def wait(self, condition: threading.Condition, until: datetime | None) -> None:
        with self._lock:
            self._waiters.add(condition)
            if until is not None and until <= self._now:
                return
        condition.wait()  # advance() must take the condition to notify, so no wake-up is lost


# -- records ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    message_id: str
    topic_id: str
    title: str | None
    body: str
    published_at: datetime


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt (or a message lost by the `drop` knobs: attempt 0, status 0)."""

    message_id: str
    topic_id: str
    function_id: str
    attempt: int
    status: int  # what Functions answered: 202 accepted, else the refusal
    outcome: Outcome
    at: datetime


@dataclass(frozen=True)
class _Topic:
    topic_id: str
    name: str


@dataclass(frozen=True)
class _Pending:
    due: datetime
    message: Message
    function_id: str
    attempt: int
    first_attempt: datetime | None


class NotificationsService:
    """Topics and function subscriptions, delivering on a background thread (started on demand)."""

    def __init__(
        self,
        functions: FunctionsService,
        *,
        timer: Timer | None = None,
        retry_unit_seconds: float = 60.0,
        max_retry_minutes: float = MAX_RETRY_MINUTES,
        new_id: IdFactory = lambda: str(uuid.uuid4()),
    ) -> None:
        self.functions = functions
        self.timer: Timer = timer or SystemTimer()
        self.retry_unit_seconds = retry_unit_seconds
        self.max_retry_minutes = max_retry_minutes
        self.duplicate = False
        self.delay_seconds = 0.0
        self.drop_next = 0
        self.drop_if: Callable[[Message], bool] | None = None
        self.deliveries: list[Delivery] = []
        self.published: list[Message] = []  # every message accepted, whether any subscriber gets it or not
        self.activity = 0  # messages ever queued; see functions.wait_settled
        self._new_id = new_id
        self._topics: dict[str, _Topic] = {}
        self._subscriptions: dict[str, list[str]] = {}
        self._queue: list[_Pending] = []
        self._in_flight = 0
        self._changed = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closing = False

    @property
    def routes(self) -> list[Route]:
        return [("POST", PUBLISH_PATH, self._handle_publish)]

    # -- control plane ---------------------------------------------------------------------------

    def create_topic(self, name: str) -> str:
        """A new topic; names are unique in the tenancy. Returns the topic OCID."""
        with self._changed:
            if any(topic.name == name for topic in self._topics.values()):
                raise ConflictError(f"topic name {name!r} already exists")
            topic_id = f"ocid1.onstopic.oc1.emu.{self._new_id().replace('-', '')}"
            self._topics[topic_id] = _Topic(topic_id, name)
            self._subscriptions[topic_id] = []
        return topic_id

    def topic_name(self, topic_id: str) -> str | None:
        """The topic's name, or None if there is no such topic (GetTopic, management.py)."""
        with self._changed:
            topic = self._topics.get(topic_id)
        return None if topic is None else topic.name

    def subscribe(self, topic_id: str, function_id: str) -> None:
        """An ORACLE_FUNCTIONS subscription (active at once: functions need no confirmation)."""
        with self._changed:
            if topic_id not in self._topics:
                raise NotFoundError(f"topic {topic_id} not found", status=404)
            self._subscriptions[topic_id].append(function_id)

    def subscriptions(self, topic_id: str) -> list[str]:
        """The functions subscribed to the topic (ListSubscriptions, management.py)."""
        with self._changed:
            return list(self._subscriptions.get(topic_id, []))

    def topics(self) -> dict[str, str]:
        """Every topic: OCID -> name."""
        with self._changed:
            return {topic_id: topic.name for topic_id, topic in self._topics.items()}

    # -- data plane ------------------------------------------------------------------------------

    def publish(self, topic_id: str, body: str, title: str | None = None) -> Message:
        """Accept a message and queue its deliveries; raises NotFoundError for an unknown topic."""
        with self._changed:
            if topic_id not in self._topics:
                raise NotFoundError(f"topic {topic_id} not found", status=404)
            now = self.timer.now()
            message = Message(self._new_id(), topic_id, title, body, now)
            self.published.append(message)
            if self._should_drop(message):
                for function_id in self._subscriptions[topic_id]:
                    self.deliveries.append(
                        Delivery(message.message_id, topic_id, function_id, 0, 0, "dropped", now)
                    )
                return message
            due = now + timedelta(seconds=self.delay_seconds)
            for function_id in self._subscriptions[topic_id]:
                for _ in range(2 if self.duplicate else 1):
                    self._queue.append(_Pending(due, message, function_id, 1, None))
                    self.activity += 1
            self._ensure_worker()
            self._changed.notify_all()
        return message

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no delivery is queued, awaiting a retry or in flight (real seconds)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._queue and self._in_flight == 0, timeout)

    def wait_until_nothing_due(self, timeout: float) -> bool:
        """Wait until every delivery due by the timer's now has been attempted; later retries may
        remain. With a ManualTimer: advance, then call this, then look at `deliveries`."""

        def nothing_due() -> bool:
            now = self.timer.now()
            return self._in_flight == 0 and all(pending.due > now for pending in self._queue)

        with self._changed:
            return self._changed.wait_for(nothing_due, timeout)

    def close(self) -> None:
        """Stop the delivery thread; queued deliveries are abandoned."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout=30)

    def __enter__(self) -> NotificationsService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- delivery --------------------------------------------------------------------------------

    def _should_drop(self, message: Message) -> bool:
        if self.drop_next > 0:
            self.drop_next -= 1
            return True
        return self.drop_if is not None and self.drop_if(message)

    def _ensure_worker(self) -> None:
        if self._worker is None and not self._closing:
            self._worker = threading.Thread(target=self._deliver_forever, name="ons-delivery", daemon=True)
            self._worker.start()

    def _next_due(self) -> _Pending | None:
        """With the lock held: wait until a delivery is due and take it; None when closing."""
        while not self._closing:
            if self._queue:
                pending = min(self._queue, key=lambda item: item.due)
                if pending.due <= self.timer.now():
                    self._queue.remove(pending)
                    self._in_flight += 1
                    return pending
                self.timer.wait(self._changed, pending.due)
            else:
                self.timer.wait(self._changed, None)
        return None

    def _deliver_forever(self) -> None:
        while True:
            with self._changed:
                pending = self._next_due()
            if pending is None:
                return
            try:
                status = self._attempt(pending)
            except Exception:  # a bug in the emulator: record a failed attempt rather than hang waiters
                status = 500
            with self._changed:
                self._settle(pending, status)
                self._in_flight -= 1
                self._changed.notify_all()

    def _attempt(self, pending: _Pending) -> int:
        message = pending.message
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-OCI-NS-MessageId": message.message_id,
            "X-OCI-NS-TopicOcid": message.topic_id,
            "X-OCI-NS-TopicName": self._topics[message.topic_id].name,
            "X-OCI-NS-MessageType": "Notification",
        }
        result = self.functions.invoke(
            pending.function_id, message.body.encode(), invoke_type="detached", headers=headers
        )
        return result.status

    def _settle(self, pending: _Pending, status: int) -> None:
        """With the lock held: record the attempt and queue the retry a failure calls for."""
        now = self.timer.now()
        first = pending.first_attempt or now
        outcome: Outcome = "delivered" if status == 202 else "failed"
        offsets = retry_offsets(self.max_retry_minutes)
        if outcome == "failed" and pending.attempt < len(offsets):
            due = first + timedelta(seconds=offsets[pending.attempt] * self.retry_unit_seconds)
            self._queue.append(
                _Pending(due, pending.message, pending.function_id, pending.attempt + 1, first)
            )
        elif outcome == "failed":
            outcome = "discarded"
        message = pending.message
        self.deliveries.append(
            Delivery(
                message.message_id,
                message.topic_id,
                pending.function_id,
                pending.attempt,
                status,
                outcome,
                now,
            )
        )

    # -- HTTP ------------------------------------------------------------------------------------

    def _handle_publish(self, request: Request, match: re.Match[str]) -> Response:
        try:
            details = request.json()
        except ValueError as exc:
            raise ServiceError(400, "InvalidParameter", f"the message is not JSON: {exc}") from exc
        if not isinstance(details, dict) or not isinstance(details.get("body"), str):
            raise ServiceError(400, "InvalidParameter", "the message needs a string 'body'")
        title = details.get("title")
        if title is not None and not isinstance(title, str):
            raise ServiceError(400, "InvalidParameter", "the message 'title' must be a string")
        if len(details["body"].encode()) > MAX_BODY_BYTES:
            raise ServiceError(400, "InvalidParameter", "the message body exceeds 64 KB")
        try:
            message = self.publish(match["topic_id"], details["body"], title)
        except NotFoundError as exc:
            raise ServiceError(404, "NotAuthorizedOrNotFound", str(exc)) from exc
        return Response.json(
            200, {"messageId": message.message_id, "timeStamp": isoformat(message.published_at)}
        )
