"""SDK calls: which failures are retried, within what budget, and what each failure becomes."""

import io

import oci
import pytest

from fusion_extract.errors import ConflictError, NotFoundError, TransientError, UpstreamError
from fusion_extract.oci.calls import BoundedRetry, product_error, translated
from fusion_extract.oci.multipart import ViewBody
from fusion_extract.retry import RetryPolicy
from tests.clocks import ManualClock


def service_error(status: int, code: str = "Code", headers: dict[str, str] | None = None) -> Exception:
    error: Exception = oci.exceptions.ServiceError(status, code, headers or {}, f"{code} happened")
    return error


class ScriptedCall:
    """Stands in for the SDK's call_api: fails with the given errors, then answers."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self, **kwargs: object) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "answer"


def retry(clock: ManualClock, attempts: int = 4, seconds: float = 120.0) -> BoundedRetry:
    return BoundedRetry(RetryPolicy(clock, max_attempts=attempts, max_seconds=seconds, rand=lambda: 1.0))


@pytest.mark.parametrize(
    "failure",
    [
        service_error(429, "TooManyRequests"),
        service_error(500, "InternalServerError"),
        service_error(503, "ServiceUnavailable"),
        oci.exceptions.RequestException("connection reset"),
        oci.exceptions.ConnectTimeout("connect timed out"),
    ],
)
def test_bounded_retry_when_transient_failure_then_success_returns_answer(failure):
    clock = ManualClock()
    call = ScriptedCall(failure)

    assert retry(clock).make_retrying_call(call, body=b"bytes") == "answer"

    assert call.calls == 2
    assert clock.sleeps == [1.0]


@pytest.mark.parametrize(
    "failure",
    [service_error(400), service_error(401), service_error(404), service_error(412), service_error(501)],
)
def test_bounded_retry_when_permanent_failure_raises_at_once(failure):
    clock = ManualClock()
    call = ScriptedCall(failure)

    with pytest.raises(oci.exceptions.ServiceError):
        retry(clock).make_retrying_call(call)

    assert call.calls == 1
    assert clock.sleeps == []


def test_bounded_retry_when_failures_persist_stops_after_max_attempts_with_growing_waits():
    clock = ManualClock()
    call = ScriptedCall(*[service_error(503)] * 10)

    with pytest.raises(oci.exceptions.ServiceError):
        retry(clock, attempts=4).make_retrying_call(call)

    assert call.calls == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_bounded_retry_honours_retry_after_and_gives_up_past_the_time_budget():
    clock = ManualClock()
    call = ScriptedCall(
        service_error(429, headers={"retry-after": "7"}), service_error(429, headers={"retry-after": "100"})
    )

    with pytest.raises(oci.exceptions.ServiceError):
        retry(clock, attempts=5, seconds=60).make_retrying_call(call)

    assert call.calls == 2
    assert clock.sleeps == [7.0]


class OnceOnly(io.RawIOBase):
    """A body that can be read once only (a pipe's, a socket's)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        return 0


def test_bounded_retry_never_replays_a_stream_body_that_cannot_seek():
    clock = ManualClock()
    call = ScriptedCall(service_error(503))

    with pytest.raises(oci.exceptions.ServiceError):
        retry(clock).make_retrying_call(call, body=OnceOnly())

    assert call.calls == 1


class ReadingCall(ScriptedCall):
    """Reads the whole body at every attempt, as the connection does, and keeps what each one sent."""

    def __init__(self, *failures: Exception) -> None:
        super().__init__(*failures)
        self.sent: list[bytes] = []

    def __call__(self, **kwargs: object) -> str:
        body = kwargs["body"]
        assert isinstance(body, ViewBody)
        self.sent.append(bytes(body.read()))
        return super().__call__(**kwargs)


def test_bounded_retry_sends_a_seekable_body_again_from_where_it_started():
    # Given a body over a view whose first attempt is read whole and then refused (503)
    clock = ManualClock()
    call = ReadingCall(service_error(503))
    body = ViewBody(memoryview(b"the part's bytes"))

    # When the call is retried
    assert retry(clock).make_retrying_call(call, body=body) == "answer"

    # Then the retry sent all of it again
    assert call.sent == [b"the part's bytes"] * 2


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (service_error(404, "ObjectNotFound"), NotFoundError),
        (service_error(409, "Conflict"), ConflictError),
        (service_error(412, "IfMatchFailed"), ConflictError),
        (service_error(429, "TooManyRequests"), TransientError),
        (service_error(502, "BadGateway"), TransientError),
        (oci.exceptions.RequestException("reset"), TransientError),
        (service_error(400, "InvalidParameter"), UpstreamError),
    ],
)
def test_product_error_maps_each_failure_to_its_kind(failure, kind):
    error = product_error(failure, "get object a.csv")

    assert type(error) is kind
    assert str(error).startswith("get object a.csv:")


def test_product_error_for_other_status_keeps_status_and_code():
    error = product_error(service_error(403, "NotAllowed"), "put object a")

    assert isinstance(error, UpstreamError) and not isinstance(error, TransientError)
    assert (error.status, error.code) == (403, "NotAllowed")
    assert "403 NotAllowed" in str(error)


def test_translated_raises_the_product_error_chained_to_the_sdk_error():
    sdk_error = service_error(412, "IfNoneMatchFailed")

    with (
        pytest.raises(ConflictError, match="create x: 412 IfNoneMatchFailed") as caught,
        translated("create x"),
    ):
        raise sdk_error

    assert caught.value.__cause__ is sdk_error
