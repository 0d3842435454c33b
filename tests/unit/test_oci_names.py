"""Object names are checked against Object Storage's rules before any request is made."""

import pytest

from fusion_extract.errors import UnsafeInputError
from fusion_extract.oci.names import name_prefix, object_name


@pytest.mark.parametrize(
    "name",
    ["a", "landing/hr/dt=2026-11-29/run=1/workers.csv", "é" * 512, "x" * 1024, "with space/ünï"],
)
def test_object_name_when_within_the_rules_returns_it_unchanged(name):
    assert object_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "must not be empty"),
        ("a\nb", "line feed"),
        ("a\rb", "carriage return"),
        ("a\x00b", "NUL"),
        ("x" * 1025, "1025 bytes"),
        ("é" * 513, "1026 bytes"),
        ("bad\udc80", "not valid UTF-8"),
    ],
)
def test_object_name_when_breaking_a_rule_raises_naming_the_rule(name, problem):
    with pytest.raises(UnsafeInputError, match=problem):
        object_name(name)


def test_name_prefix_when_empty_means_the_whole_bucket():
    assert name_prefix("") == ""


def test_name_prefix_when_holding_a_line_feed_is_refused():
    with pytest.raises(UnsafeInputError, match="prefix"):
        name_prefix("runs/\n")
