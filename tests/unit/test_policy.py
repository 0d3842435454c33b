"""The failure policy's rules no step states on its own: how an error is classed, how long a run waits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fusion_extract.chain.policy import Kind, Patience, classify
from fusion_extract.errors import ConflictError, IntegrityError, MalformedResponseError, TransientError


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConflictError("run changed meanwhile"), Kind.TRANSIENT),
        (TransientError("503"), Kind.TRANSIENT),
        (KeyError("a bug"), Kind.TRANSIENT),
        (MalformedResponseError("not JSON"), Kind.MALFORMED),
        (IntegrityError("checksum"), Kind.PERMANENT),
    ],
    ids=["a lost race", "a retryable error", "not ours", "malformed", "anything else ours"],
)
def test_an_error_is_classed_by_its_type(error, kind):
    # Given an error raised by a step; When it is classed; Then a lost race is transient, not permanent
    assert classify(error) is kind


def test_the_wait_after_failures_doubles_up_to_one_hour():
    # Given the default patience (a minute first, doubling)
    patience = Patience()

    # When a run failed once, twice, then many times in a row
    waits = [patience.delay(failures) for failures in (1, 2, 6, 7, 40)]

    # Then it waits a minute, two, 32, and never more than an hour
    minutes = timedelta(minutes=1)
    assert waits == [minutes, 2 * minutes, 32 * minutes, 60 * minutes, 60 * minutes]
