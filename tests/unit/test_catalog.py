"""The extract catalog: one JSON declaration of the extracts, strict on read, empty refusing nothing."""

from __future__ import annotations

import pytest

from fusion_extract.catalog import parse_catalog
from fusion_extract.config import Settings
from fusion_extract.errors import ConfigError
from fusion_extract.models import Mode

CATALOG = (
    '{"Sales": {"mode": "full", "schedule": "FREQ=DAILY;BYHOUR=2", "expected_within_hours": 4},'
    ' "Orders": {"mode": "incremental", "schedule": "0 * * * *", "recurrence_type": "CRON",'
    ' "landing_template": "{prefix}/orders/{date}/{job_id}", "enabled": false}}'
)


def test_catalog_when_declared_reads_every_extract_with_its_fields() -> None:
    # Given a catalog of two extracts, When it is read
    catalog = parse_catalog(CATALOG)

    # Then both are there, in name order, with their fields and defaults
    assert catalog.names == ["Orders", "Sales"]
    sales, orders = catalog.get("Sales"), catalog.get("Orders")
    assert sales is not None and (sales.mode, sales.recurrence_type, sales.enabled) == (
        Mode.FULL,
        "ICAL",
        True,
    )
    assert orders is not None and (orders.recurrence_type, orders.enabled) == ("CRON", False)
    assert (sales.expected_within_hours, orders.expected_within_hours) == (4, None)
    assert catalog.templates() == {"Orders": "{prefix}/orders/{date}/{job_id}"}
    # And it writes back as the JSON it was read from
    assert parse_catalog(catalog.to_json()) == catalog


def test_catalog_refusal_when_name_unknown_names_the_known_extracts() -> None:
    # Given a catalog of Sales and Orders
    catalog = parse_catalog(CATALOG)

    # When a typo is checked, Then it is refused with the known names; a declared name is not
    refusal = catalog.refusal("Salse")
    assert refusal is not None and "'Salse' is not in the catalog" in refusal and "Orders, Sales" in refusal
    assert catalog.refusal("Sales") is None


def test_catalog_when_empty_refuses_nothing() -> None:
    # Given the default, empty catalog, When any name is checked, Then nothing is refused
    assert parse_catalog("{}").refusal("Anything") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[]", "JSON object of extracts"),
        ("{oops", "JSON object of extracts"),
        ('{"Sales": {"mode": "daily"}}', "extract 'Sales': mode must be full or incremental"),
        ('{"Sales": {"mode": "full", "scheduel": "x"}}', "unknown field(s) scheduel"),
        ('{"../x": {"mode": "full"}}', "a name holds letters"),
        ('{"Sales": {"mode": "full", "landing_template": "{prefix}/x"}}', "must contain {job_id}"),
        ('{"Sales": {"mode": "full", "landing_template": "{job_id}/{nope}"}}', "unknown placeholder"),
        ('{"Sales": {"mode": "full", "recurrence_type": "RRULE"}}', "ICAL or CRON"),
        ('{"Sales": {"mode": "full", "enabled": "yes"}}', "enabled must be true or false"),
        ('{"Sales": {"mode": "full", "expected_within_hours": 0}}', "expected_within_hours must be a number"),
        ('{"Sales": {"mode": "full", "expected_within_hours": 745}}', "above 0, up to 744"),
        ('{"Sales": {"mode": "full", "expected_within_hours": true}}', "expected_within_hours must be"),
        ('{"Sales": {"mode": "full", "expected_within_hours": "4"}}', "expected_within_hours must be"),
        ('{"Sales": {"mode": "full", "schedule": "FREQ=DAILIE"}}', "'Sales': schedule 'FREQ=DAILIE' is not"),
        (
            '{"Sales": {"mode": "full", "schedule": "0 25 * * *", "recurrence_type": "CRON"}}',
            "cron hour field '25' must stay within 0-23",
        ),
        ('{"Sales": {"mode": "full", "schedule": "FREQ=DAILY", "time_zone": "Mars/Olympus"}}', "IANA"),
    ],
)
def test_catalog_when_malformed_names_the_problem(text: str, expected: str) -> None:
    # Given a malformed catalog, When it is read, Then the error names the extract and field
    with pytest.raises(ValueError) as raised:
        parse_catalog(text)
    assert expected in str(raised.value)


def test_catalog_object_in_configuration_when_not_an_object_name_is_a_config_error_naming_the_key() -> None:
    # Given a configuration whose catalog object name climbs out of the bucket
    env = {
        "FUSION_BASE_URL": "https://fusion.example.com",
        "IDCS_URL": "https://idcs.example.com",
        "FUSION_SCOPE": "urn:opc:resource:fusion:dev:saas-batch/",
        "CREDENTIALS_SECRET_ID": "ocid1.vaultsecret.oc1.eu-frankfurt-1.aaaa",
        "BUCKET_NAME": "b",
        **{
            f"{t}_TOPIC_ID": f"ocid1.onstopic.oc1.eu-frankfurt-1.{t.lower()}"
            for t in ("POLL", "TRANSFER", "RERUN", "ALERTS")
        },
        "EXTRACT_CATALOG_OBJECT": "_catalog/../extracts.json",
    }

    # When it is read, Then one ConfigError names the key
    with pytest.raises(ConfigError, match="EXTRACT_CATALOG_OBJECT must be an object name"):
        Settings.from_mapping(env)
