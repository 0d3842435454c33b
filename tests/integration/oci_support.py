"""Shared pieces of the OCI adapter tests: Settings and clients aimed at an emulator."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from fusion_extract.config import Settings
from fusion_extract.oci.clients import OciClients
from fusion_extract.oci.objects import OciObjectStore
from tests.clocks import ManualClock
from tests.emulators.oci import OciEmulator

BUCKET = "landing"
NAMESPACE = "emuns"

REQUIRED_ENV = {
    "FUSION_BASE_URL": "https://fa-test.fa.ocs.oraclecloud.com",
    "IDCS_URL": "https://idcs-test.identity.oraclecloud.com",
    "FUSION_SCOPE": "urn:opc:resource:fusion:test:saas-batch/",
    "CREDENTIALS_SECRET_ID": "ocid1.vaultsecret.oc1..placeholder",
    "BUCKET_NAME": BUCKET,
    "POLL_TOPIC_ID": "ocid1.onstopic.oc1..poll",
    "TRANSFER_TOPIC_ID": "ocid1.onstopic.oc1..transfer",
    "RERUN_TOPIC_ID": "ocid1.onstopic.oc1..rerun",
    "ALERTS_TOPIC_ID": "ocid1.onstopic.oc1..alerts",
}


def emulator_env(emu: OciEmulator, directory: Path, **overrides: str) -> dict[str, str]:
    """Function config that reaches every emulated service with a config-file API key."""
    config_file = emu.write_config_file(directory / "oci-config")
    endpoints = {
        f"OCI_{service}_ENDPOINT": emu.endpoint
        for service in ("OBJECTSTORAGE", "SECRETS", "NOTIFICATIONS", "FUNCTIONS", "MONITORING")
    }
    return {
        **REQUIRED_ENV,
        **endpoints,
        "OCI_AUTH": "config_file",
        "OCI_CONFIG_FILE": str(config_file),
        **overrides,
    }


def clients_for(
    emu: OciEmulator, directory: Path, clock: ManualClock | None = None, **overrides: str
) -> OciClients:
    settings = Settings.from_mapping(emulator_env(emu, directory, **overrides))
    return OciClients(settings, clock or ManualClock())


def store_for(clients: OciClients, **options: int) -> OciObjectStore:
    return OciObjectStore(clients.object_storage, clients.namespace, BUCKET, **options)


def content_md5(data: bytes) -> str:
    """Base64 MD5, as Object Storage reports it (opc-content-md5) for a single-part object."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()
