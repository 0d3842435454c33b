"""The chart's input: several runs drawn as one."""

from typing import Any

from tests.bench.plot import merged, series


def entry(profile: str, megabytes: int, members: int, wall: float) -> dict[str, Any]:
    return {
        "profile": profile,
        "archive": f"v1-{megabytes}mib-{members}m-s11",
        "megabytes": megabytes,
        "members": members,
        "pipelines": {"ours_cold": {"wall_s": wall}, "download": {"wall_s": 0.1}},
    }


def test_runs_merge_side_by_side_and_a_later_run_wins_for_the_same_archive():
    # Given a default run (100 and 500 MiB) and a later one with 500 MiB again and 2 GiB
    default = {
        "when": "2026-11-29T23:09:20+00:00",
        "transfer": [entry("loopback", 100, 1, 1.0), entry("loopback", 500, 1, 5.0)],
    }
    large = {
        "when": "2026-11-30T00:01:00+00:00",
        "transfer": [entry("loopback", 500, 1, 4.0), entry("loopback", 2048, 1, 20.0)],
    }

    # When they are merged for the chart
    document = merged([default, large])

    # Then ours (cold) has one line of three sizes, the later 500 MiB figure in it, and both dates are named
    lines = series(document)
    assert list(lines) == [("loopback", "ours_cold", 1)]
    assert [(size, figures["wall_s"]) for size, figures in lines[("loopback", "ours_cold", 1)]] == [
        (100, 1.0),
        (500, 4.0),
        (2048, 20.0),
    ]
    assert document["when"] == "2026-11-29, 2026-11-30"
