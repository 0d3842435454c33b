"""Configuration is read once, and one error names every problem."""

import pytest

from fusion_extract.config import KEYS, Settings
from fusion_extract.errors import ConfigError

VALID = {
    "FUSION_BASE_URL": "https://fa-abc-saasfaprod1.fa.ocs.oraclecloud.com/",
    "IDCS_URL": "https://idcs-123.identity.oraclecloud.com",
    "FUSION_SCOPE": "urn:opc:resource:fusion:abc:saas-batch/",
    "CREDENTIALS_SECRET_ID": "ocid1.vaultsecret.oc1.eu-frankfurt-1.amaaaaaa",
    "BUCKET_NAME": "fusion-landing",
    "POLL_TOPIC_ID": "ocid1.onstopic.oc1.eu-frankfurt-1.poll",
    "TRANSFER_TOPIC_ID": "ocid1.onstopic.oc1.eu-frankfurt-1.transfer",
    "RERUN_TOPIC_ID": "ocid1.onstopic.oc1.eu-frankfurt-1.rerun",
    "ALERTS_TOPIC_ID": "ocid1.onstopic.oc1.eu-frankfurt-1.alerts",
}


def test_settings_when_required_keys_present_apply_defaults():
    settings = Settings.from_mapping(VALID)

    assert settings.fusion_base_url == "https://fa-abc-saasfaprod1.fa.ocs.oraclecloud.com"
    assert settings.fusion_host == "fa-abc-saasfaprod1.fa.ocs.oraclecloud.com"
    assert settings.fusion_grant == "client_credentials"
    assert settings.run_deadline_hours == 10
    assert settings.objectstorage_endpoint is None
    assert settings.keep_raw is False


def test_settings_when_several_keys_bad_name_every_one():
    env = {**VALID, "FUSION_BASE_URL": "http://plain.example.com", "RUN_MAX_ATTEMPTS": "0"}
    del env["BUCKET_NAME"]

    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping(env)

    message = str(caught.value)
    assert "FUSION_BASE_URL must be an https:// URL" in message
    assert "RUN_MAX_ATTEMPTS must be a positive whole number" in message
    assert "BUCKET_NAME is missing" in message


def test_settings_when_template_lacks_job_id_refuse():
    with pytest.raises(ConfigError, match="LANDING_TEMPLATE must contain"):
        Settings.from_mapping({**VALID, "LANDING_TEMPLATE": "{prefix}/{extract}"})


def test_settings_when_a_key_is_mistyped_name_it_and_the_key_meant():
    # Given a configuration with a typo of POLL_BUDGET_SECONDS beside the platform's own variables
    env = {**VALID, "POLL_BUDGET_SECOND": "60", "FN_APP_ID": "ocid1.fnapp.oc1..x", "PATH": "/usr/bin"}

    # When it is read
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping(env)

    # Then the typo is reported with the key it was meant to be, and nothing else is
    assert str(caught.value) == (
        "invalid configuration: "
        "POLL_BUDGET_SECOND is not a configuration key (did you mean POLL_BUDGET_SECONDS?)"
    )


def test_settings_when_other_programs_variables_are_present_ignore_them():
    # Given the variables the Fn platform, the OCI SDK and the OCI CLI set beside ours
    foreign = [
        "FN_FN_ID",
        "OCI_RESOURCE_PRINCIPAL_RPST",
        "OCI_CLI_CONFIG_FILE",
        "OCI_SDK_DEFAULT_RETRY_ENABLED",
    ]

    # When the configuration is read
    settings = Settings.from_mapping({**VALID, **dict.fromkeys(foreign, "x")})

    # Then they are not taken for typos
    assert settings.bucket == "fusion-landing"


BAD_VALUES = [
    ("FUSION_BASE_URL", "http://fa.example.com", "must be an https:// URL"),
    ("FUSION_BASE_URL", "https://", "must be an https:// URL"),
    ("IDCS_URL", "idcs.example.com", "must be an https:// URL"),
    ("FUSION_SCOPE", "urn:opc:resource:fusion:abc:boss/", "must look like urn:opc:resource:fusion"),
    ("FUSION_GRANT", "implicit", "must be one of client_credentials, password"),
    ("CREDENTIALS_SECRET_ID", "my-secret", "must be an OCID"),
    ("POLL_TOPIC_ID", "ocid1..", "must be an OCID"),
    ("OCI_OBJECTSTORAGE_ENDPOINT", "ftp://127.0.0.1", "must be an http(s):// URL"),
    ("OCI_AUTH", "api_key", "must be one of resource_principal, instance_principal, config_file"),
    ("BUCKET_NAME", "   ", "is missing"),
    ("LANDING_PREFIX", "landing/../etc", "without '..'"),
    ("STATE_PREFIX", "/", "must be a non-empty object name prefix"),
    ("KEEP_RAW_ZIPS", "maybe", "must be true or false"),
    ("RUN_MAX_ATTEMPTS", "0", "must be a positive whole number"),
    ("RUN_MAX_ATTEMPTS", "2.5", "invalid literal"),
    ("POLL_BUDGET_SECONDS", "-1", "must be zero or more"),
    ("UPLOAD_PART_MB", "lots", "invalid literal"),
    ("LOG_LEVEL", "TRACE", "must be one of DEBUG, INFO, WARNING, ERROR"),
    ("LANDING_TEMPLATE", "{prefix}/{extract}", "must contain {job_id}"),
    ("LANDING_TEMPLATE", "{prefix}/{job_id}/{owner}", "unknown placeholder"),
    ("POLL_MIN_INTERVAL", "1500", "POLL_MIN_INTERVAL must not exceed POLL_MAX_INTERVAL"),
    ("TRANSFER_BUDGET_SECONDS", "451", "STEP_OVERDUE_SECONDS must be at least twice TRANSFER_BUDGET_SECONDS"),
    ("STEP_OVERDUE_SECONDS", "479", "still under way would look overdue"),
]


@pytest.mark.parametrize(
    ("key", "value", "complaint"), BAD_VALUES, ids=[f"{k}={v}" for k, v, _ in BAD_VALUES]
)
def test_settings_when_a_value_is_bad_name_the_key_and_the_rule(key, value, complaint):
    # Given a configuration with one bad value
    env = {**VALID, key: value}

    # When it is read
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping(env)

    # Then the error names the key and what is wrong with it
    assert key in str(caught.value) and complaint in str(caught.value)


def test_key_table_declares_each_environment_name_once():
    assert len({k.env for k in KEYS}) == len(KEYS)
    assert all(k.field and k.doc for k in KEYS)


def test_settings_grace_and_caps_have_their_documented_defaults():
    settings = Settings.from_mapping(VALID)

    assert settings.completed_grace_seconds == 1800
    assert (settings.max_json_bytes, settings.max_listing_bytes) == (2**20, 16 * 2**20)
