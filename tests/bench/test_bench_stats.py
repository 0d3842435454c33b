"""The benchmark's arithmetic: rotation of the run order, medians, ratios, rates."""

import pytest

from tests.bench import stats
from tests.bench.servers import call_kind


def test_rotated_gives_every_pipeline_every_position_over_as_many_rounds():
    # Given three pipelines
    names = ["ours", "blog", "download"]

    # When rounds 0, 1 and 2 are ordered
    orders = [stats.rotated(names, r) for r in range(3)]

    # Then each round holds all of them, and each takes each position once
    assert all(sorted(order) == sorted(names) for order in orders)
    for position in range(3):
        assert sorted(order[position] for order in orders) == sorted(names)
    assert stats.rotated(names, 3) == names
    assert stats.rotated([], 1) == []


def test_median_of_odd_and_even_counts_and_of_nothing():
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert stats.median([]) is None


def test_ratio_is_none_when_a_side_is_missing_or_zero():
    assert stats.ratio(3.0, 2.0) == 1.5
    assert stats.ratio(None, 2.0) is None
    assert stats.ratio(3.0, None) is None
    assert stats.ratio(3.0, 0.0) is None


def test_paired_ratio_ignores_one_slow_round_that_the_ratio_of_medians_would_not():
    # Given ours and theirs per round, with the machine busy in round 2 for both
    ours, theirs = [2.0, 2.0, 20.0], [1.0, 1.0, 10.0]

    # When compared round by round
    paired = stats.paired_ratio(ours, theirs)

    # Then the ratio is the per-round one
    assert paired == 2.0
    assert stats.paired_ratio([], []) is None


def test_per_gb_and_rate_are_in_decimal_units():
    assert stats.per_gb(3.0, 500_000_000) == pytest.approx(6.0)
    assert stats.rate_mb_s(200_000_000, 4.0) == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "/n/", "get_namespace"),
        ("PUT", "/n/ns/b/bench/o/landing%2Fa.csv", "put_object"),
        ("HEAD", "/n/ns/b/bench/o/a.csv", "head_object"),
        ("POST", "/n/ns/b/bench/u", "create_multipart_upload"),
        ("PUT", "/n/ns/b/bench/u/a.csv", "upload_part"),
        ("POST", "/n/ns/b/bench/u/a.csv", "commit_multipart_upload"),
        ("POST", "/n/ns/b/bench/actions/renameObject", "rename_object"),
        ("GET", "/n/ns/b/bench/o", "list_objects"),
        ("GET", "/20190301/secretbundles/ocid1.vaultsecret.oc1..x", "get_secret_bundle"),
        ("PATCH", "/n/ns/b/bench", "PATCH other"),
    ],
)
def test_call_kind_names_the_sdk_operation_behind_a_request(method, path, kind):
    assert call_kind(method, path) == kind
