"""Notifications: publish with the real oci SDK, delivery to functions under the real fdk runtime,
at-least-once faults and the documented retry schedule (on a manual timer: no test sleeps)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import oci
import pytest

from fusion_extract.errors import ConflictError, NotFoundError
from tests.emulators.fdk_runtime import FdkFunction
from tests.emulators.oci import OciEmulator
from tests.emulators.oci.functions import FunctionsService, wait_settled
from tests.emulators.oci.notifications import ManualTimer, NotificationsService, retry_offsets
from tests.emulators.test_fdk_runtime import ECHO, RAISES, write_function

ECHO_ID = "ocid1.fnfunc.oc1..echo"
T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


@pytest.fixture
def echo(tmp_path: Path) -> FdkFunction:
    """An echo function, not started: tests start it (or not) as they need."""
    return FdkFunction(write_function(tmp_path / "echo", ECHO), env={}, name="echo")


@pytest.fixture
def functions() -> FunctionsService:
    return FunctionsService()


@pytest.fixture
def ons(functions: FunctionsService) -> Iterator[NotificationsService]:
    with NotificationsService(functions) as service:
        yield service


@pytest.fixture
def timer() -> ManualTimer:
    return ManualTimer(T0)


@pytest.fixture
def manual_ons(functions: FunctionsService, timer: ManualTimer) -> Iterator[NotificationsService]:
    with NotificationsService(functions, timer=timer) as service:
        yield service


def seen_by_function(functions: FunctionsService) -> list[dict[str, Any]]:
    """What each run of the echo function saw (its body and headers); calls that never reached it skipped."""
    return [json.loads(run.response) for run in functions.invocations if run.error is None]


def test_publish_via_sdk_reaches_subscribed_function_with_ons_headers(
    tmp_path: Path, echo: FdkFunction, functions: FunctionsService, ons: NotificationsService
) -> None:
    # Given a topic with a function subscribed, served by the emulator
    topic = ons.create_topic("poll")
    ons.subscribe(topic, ECHO_ID)
    with echo, OciEmulator(root=tmp_path / "oci") as emulator:
        functions.register(ECHO_ID, echo)
        emulator.add_service(ons)
        client = oci.ons.NotificationDataPlaneClient(
            emulator.api_key_config(), service_endpoint=emulator.endpoint
        )

        # When a message is published through the SDK
        details = oci.ons.models.MessageDetails(title="t", body='{"run": "r1"}')
        published = client.publish_message(topic, details).data

        # Then the function received the body with the ONS headers, once
        assert wait_settled([ons, functions], 30)
    [seen] = seen_by_function(functions)
    assert seen["body"] == '{"run": "r1"}'
    headers = seen["headers"]
    assert headers["x-oci-ns-messageid"] == published.message_id
    assert headers["x-oci-ns-topicocid"] == topic
    assert headers["x-oci-ns-topicname"] == "poll"
    assert headers["x-oci-ns-messagetype"] == "Notification"
    assert [(d.attempt, d.status, d.outcome) for d in ons.deliveries] == [(1, 202, "delivered")]


def test_publish_via_sdk_unknown_topic_answers_404(tmp_path: Path, ons: NotificationsService) -> None:
    # Given the emulator serving Notifications, with no topics
    with OciEmulator(root=tmp_path / "oci") as emulator:
        emulator.add_service(ons)
        client = oci.ons.NotificationDataPlaneClient(
            emulator.api_key_config(), service_endpoint=emulator.endpoint
        )

        # When a message is published to a topic that does not exist
        with pytest.raises(oci.exceptions.ServiceError) as raised:
            client.publish_message("ocid1.onstopic.oc1..nope", oci.ons.models.MessageDetails(body="x"))

    # Then the SDK reports it as not found
    assert raised.value.status == 404


def test_publish_via_sdk_body_over_64_kb_answers_400(tmp_path: Path, ons: NotificationsService) -> None:
    # Given a topic, served by the emulator
    topic = ons.create_topic("big")
    with OciEmulator(root=tmp_path / "oci") as emulator:
        emulator.add_service(ons)
        client = oci.ons.NotificationDataPlaneClient(
            emulator.api_key_config(), service_endpoint=emulator.endpoint
        )

        # When a message body over 64 KB is published
        with pytest.raises(oci.exceptions.ServiceError) as raised:
            client.publish_message(topic, oci.ons.models.MessageDetails(body="x" * (64 * 1024 + 1)))

    # Then it is refused and nothing is delivered
    assert raised.value.status == 400
    assert "64 KB" in raised.value.message
    assert ons.deliveries == []


def test_duplicate_knob_delivers_twice_with_the_same_message_id(
    echo: FdkFunction, functions: FunctionsService, ons: NotificationsService
) -> None:
    # Given a subscribed function and duplicate delivery switched on
    topic = ons.create_topic("transfer")
    ons.subscribe(topic, ECHO_ID)
    ons.duplicate = True
    with echo:
        functions.register(ECHO_ID, echo)

        # When one message is published
        message = ons.publish(topic, '{"file": 1}')

        # Then the function runs twice with the same message id
        assert wait_settled([ons, functions], 30)
    message_ids = [seen["headers"]["x-oci-ns-messageid"] for seen in seen_by_function(functions)]
    assert message_ids == [message.message_id, message.message_id]


def test_function_that_raises_is_not_redelivered(
    tmp_path: Path, functions: FunctionsService, ons: NotificationsService
) -> None:
    # Given a subscribed function whose handler raises
    topic = ons.create_topic("alerts")
    ons.subscribe(topic, ECHO_ID)
    with FdkFunction(write_function(tmp_path / "raises", RAISES), env={}, name="raises") as raises:
        functions.register(ECHO_ID, raises)

        # When a message is published
        ons.publish(topic, "boom")

        # Then the function ran once and failed, but ONS counts the message as delivered
        assert wait_settled([ons, functions], 30)
    assert [i.status for i in functions.invocations] == [502]
    assert [(d.attempt, d.status, d.outcome) for d in ons.deliveries] == [(1, 202, "delivered")]


def test_failed_delivery_is_retried_on_the_documented_schedule(
    echo: FdkFunction, functions: FunctionsService, manual_ons: NotificationsService, timer: ManualTimer
) -> None:
    # Given a subscribed function whose process is down
    topic = manual_ons.create_topic("poll")
    manual_ons.subscribe(topic, ECHO_ID)
    functions.register(ECHO_ID, echo)

    # When a message is published, and the function comes back after the third attempt
    manual_ons.publish(topic, "hello")
    assert manual_ons.wait_until_nothing_due(30)
    timer.advance(60)
    assert manual_ons.wait_until_nothing_due(30)
    with echo:
        timer.advance(119)
        assert manual_ons.wait_until_nothing_due(30)
        timer.advance(1)
        assert wait_settled([manual_ons, functions], 30)

    # Then it was tried at once, retried at once, after 1 minute, and after 2 more minutes it got through
    attempts = [(d.attempt, d.status, d.outcome, (d.at - T0).total_seconds()) for d in manual_ons.deliveries]
    assert attempts == [
        (1, 502, "failed", 0),
        (2, 502, "failed", 0),
        (3, 502, "failed", 60),
        (4, 202, "delivered", 180),
    ]
    assert [seen["body"] for seen in seen_by_function(functions)] == ["hello"]


def test_failed_delivery_is_discarded_after_two_hours(
    functions: FunctionsService, manual_ons: NotificationsService, timer: ManualTimer
) -> None:
    # Given a subscription to a function that does not exist
    topic = manual_ons.create_topic("poll")
    manual_ons.subscribe(topic, "ocid1.fnfunc.oc1..gone")

    # When a message is published and three hours pass, a minute at a time
    manual_ons.publish(topic, "lost")
    for _ in range(180):
        assert manual_ons.wait_until_nothing_due(30)
        timer.advance(60)

    # Then it was attempted at 0, 0, 1, 3, 7, 15, 31, 63 and 95 minutes, then discarded
    assert manual_ons.wait_idle(30)
    minutes = [(d.at - T0).total_seconds() / 60 for d in manual_ons.deliveries]
    assert minutes == [0, 0, 1, 3, 7, 15, 31, 63, 95]
    assert {d.status for d in manual_ons.deliveries} == {404}
    assert [d.outcome for d in manual_ons.deliveries][-2:] == ["failed", "discarded"]


def test_retry_offsets_follow_the_documented_backoff() -> None:
    # Given the documented schedule: immediately, then 1, 2, 4, 8, 16, 32 minutes, within 2 hours
    # When the attempt times are computed, Then they are (in minutes after the first attempt)
    assert retry_offsets() == [0, 0, 1, 3, 7, 15, 31, 63, 95]
    assert retry_offsets(10) == [0, 0, 1, 3, 7]
    assert retry_offsets(0) == [0, 0]


def test_retry_unit_scales_the_schedule(functions: FunctionsService, timer: ManualTimer) -> None:
    # Given retries measured in units of one second instead of one minute
    with NotificationsService(functions, timer=timer, retry_unit_seconds=1) as ons:
        topic = ons.create_topic("poll")
        ons.subscribe(topic, "ocid1.fnfunc.oc1..gone")

        # When a message is published and 3 seconds pass
        ons.publish(topic, "x")
        for _ in range(3):
            assert ons.wait_until_nothing_due(30)
            timer.advance(1)
        assert ons.wait_until_nothing_due(30)

        # Then the attempts came at 0, 0, 1 and 3 seconds
        assert [(d.at - T0).total_seconds() for d in ons.deliveries] == [0, 0, 1, 3]


def test_delay_knob_holds_the_first_attempt(
    functions: FunctionsService, manual_ons: NotificationsService, timer: ManualTimer
) -> None:
    # Given deliveries delayed by 30 seconds
    topic = manual_ons.create_topic("poll")
    manual_ons.subscribe(topic, "ocid1.fnfunc.oc1..gone")
    manual_ons.delay_seconds = 30

    # When a message is published
    manual_ons.publish(topic, "x")

    # Then nothing is attempted before 30 seconds; at 30 seconds the first attempt and its retry
    timer.advance(29)
    assert manual_ons.wait_until_nothing_due(30)
    assert manual_ons.deliveries == []
    timer.advance(1)
    assert manual_ons.wait_until_nothing_due(30)
    assert [(d.attempt, (d.at - T0).total_seconds()) for d in manual_ons.deliveries] == [(1, 30), (2, 30)]


def test_drop_knobs_lose_the_next_messages_and_those_picked(
    echo: FdkFunction, functions: FunctionsService, ons: NotificationsService
) -> None:
    # Given a subscribed function, the next message to be lost, and any message saying "lose me"
    topic = ons.create_topic("transfer")
    ons.subscribe(topic, ECHO_ID)
    ons.drop_next = 1
    ons.drop_if = lambda message: message.body == "lose me"
    with echo:
        functions.register(ECHO_ID, echo)

        # When four messages are published
        for body in ("first", "second", "lose me", "fourth"):
            ons.publish(topic, body)

        # Then only the second and the fourth reach the function; the lost ones are on record
        assert wait_settled([ons, functions], 30)
    assert sorted(seen["body"] for seen in seen_by_function(functions)) == ["fourth", "second"]
    assert [d.outcome for d in ons.deliveries].count("dropped") == 2


def test_create_topic_twice_with_one_name_raises_conflict(ons: NotificationsService) -> None:
    # Given a topic named "poll"
    ons.create_topic("poll")

    # When another topic gets the same name, Then it is refused by name
    with pytest.raises(ConflictError, match="poll"):
        ons.create_topic("poll")


def test_subscribe_unknown_topic_raises_not_found(ons: NotificationsService) -> None:
    # Given no topics
    # When a function subscribes to an unknown topic, Then it is refused
    with pytest.raises(NotFoundError, match="not found"):
        ons.subscribe("ocid1.onstopic.oc1..nope", ECHO_ID)
