"""OciPublisher and OciInvoker against the emulated Notifications and Functions services."""

import json

import pytest

from fusion_extract.errors import MessageError, NotFoundError, TransientError
from fusion_extract.oci.invoke import OciInvoker
from fusion_extract.oci.notify import MAX_MESSAGE_BYTES, OciPublisher
from tests.emulators import pool
from tests.emulators.oci.functions import FunctionsService, RecordingFunction
from tests.emulators.oci.notifications import NotificationsService
from tests.integration.oci_support import clients_for

POLL_FUNCTION = "ocid1.fnfunc.oc1..poll"


@pytest.fixture
def function():
    return RecordingFunction("recorder", lambda body: json.dumps({"echo": json.loads(body)}).encode())


@pytest.fixture
def functions(function):
    service = FunctionsService()
    service.register(POLL_FUNCTION, function)
    return service


@pytest.fixture
def ons(functions):
    with NotificationsService(functions) as service:
        yield service


@pytest.fixture
def emu(tmp_path, functions, ons):
    with pool.OCI.lend() as emulator:
        emulator.reset(tmp_path / "oci")
        emulator.add_service(functions)
        emulator.add_service(ons)
        yield emulator


@pytest.fixture
def clients(emu, tmp_path):
    return clients_for(emu, tmp_path)


def test_a_publisher_builds_its_client_on_its_first_publish_and_only_then(clients, ons, functions):
    # Given a publisher, the Notifications client it would use, and a topic the poll function subscribes to
    built = []

    def client():
        built.append(clients.notifications)
        return built[-1]

    publisher = OciPublisher(client)
    topic = ons.create_topic("poll")
    ons.subscribe(topic, POLL_FUNCTION)

    # When nothing was published yet, Then no client was built (most transfers publish nothing)
    assert built == []

    # When two messages are published, Then both went out through the one client built for the first
    first, second = publisher.publish(topic, {"v": 1}), publisher.publish(topic, {"v": 2})
    assert first != second
    assert len(built) == 1


def test_publish_delivers_compact_json_to_the_subscribed_function(clients, ons, functions, function):
    # Given a topic the poll function subscribes to
    topic = ons.create_topic("poll")
    ons.subscribe(topic, POLL_FUNCTION)

    # When a message is published
    message_id = OciPublisher(lambda: clients.notifications).publish(
        topic, {"v": 1, "run": "r1", "step": "poll"}
    )

    # Then the function receives it once, as compact JSON, with the message id to dedupe on
    assert functions.wait_idle(10) and ons.wait_idle(10)
    [(body, headers)] = function.calls
    assert body == b'{"run":"r1","step":"poll","v":1}'
    assert headers["X-OCI-NS-MessageId"] == message_id


def test_publish_over_64_kb_is_refused_without_a_request(clients, ons, emu):
    topic = ons.create_topic("transfer")
    served = len(emu.served)
    message = {"files": "x" * MAX_MESSAGE_BYTES}

    with pytest.raises(MessageError, match=r"is 655\d\d bytes; Notifications accepts 65536"):
        OciPublisher(lambda: clients.notifications).publish(topic, message)

    assert len(emu.served) == served


def test_publish_to_an_unknown_topic_raises_not_found(clients):
    with pytest.raises(NotFoundError, match=r"publish to topic ocid1\.onstopic\.oc1\.\.gone: 404"):
        OciPublisher(lambda: clients.notifications).publish("ocid1.onstopic.oc1..gone", {"v": 1})


def test_publish_after_one_throttled_attempt_retries_once_and_succeeds(clients, ons, emu):
    topic = ons.create_topic("alerts")
    emu.inject_fault("POST", r"/20181201/topics/.*/messages", 429, "TooManyRequests", times=1)

    assert OciPublisher(lambda: clients.notifications).publish(topic, {"v": 1})

    assert [status for method, _, status in emu.served if method == "POST"] == [429, 200]


def test_publish_when_throttled_twice_gives_up_after_one_retry(clients, ons, emu):
    topic = ons.create_topic("alerts")
    emu.inject_fault("POST", r"/20181201/topics/.*/messages", 429, "TooManyRequests", times=2)

    with pytest.raises(TransientError, match="429"):
        OciPublisher(lambda: clients.notifications).publish(topic, {"v": 1})

    assert len([1 for method, _, _ in emu.served if method == "POST"]) == 2


def test_invoke_sync_returns_the_function_answer(clients):
    answer = OciInvoker(clients.functions_invoke).invoke(POLL_FUNCTION, {"run": "r1"})

    assert json.loads(answer) == {"echo": {"run": "r1"}}


def test_invoke_detached_returns_once_accepted_and_the_function_runs(clients, functions, function):
    request_id = OciInvoker(clients.functions_invoke).invoke_detached(POLL_FUNCTION, {"run": "r2"})

    assert request_id
    assert functions.wait_idle(10)
    assert [json.loads(body) for body, _ in function.calls] == [{"run": "r2"}]
    assert functions.invocations[0].invoke_type == "detached"


def test_invoke_an_unknown_function_raises_not_found(clients):
    with pytest.raises(NotFoundError):
        OciInvoker(clients.functions_invoke).invoke_detached("ocid1.fnfunc.oc1..gone", {})


def test_invoke_with_a_payload_over_6_mb_is_refused_without_a_request(clients, emu):
    served = len(emu.served)

    with pytest.raises(MessageError, match="limit 6000000"):
        OciInvoker(clients.functions_invoke).invoke_detached(POLL_FUNCTION, {"blob": "x" * 6_000_000})

    assert len(emu.served) == served
