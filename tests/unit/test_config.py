"""Configuration is read once, and one error names every problem."""

from dataclasses import fields

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


def test_key_table_covers_every_setting_exactly_once():
    assert sorted(k.field for k in KEYS) == sorted(f.name for f in fields(Settings))
    assert len({k.env for k in KEYS}) == len(KEYS)
