"""Vault secret bundles (Secrets API 20190301): GetSecretBundle and GetSecretBundleByName; and the
Vault management API's GetSecret (20180608): a secret's metadata, as an operator's tools read it; a
secret's deletion is scheduled (PENDING_DELETION) or cancelled in-process.

Secrets are put by the test (`put_secret`); putting a name again adds a version that becomes CURRENT,
and the one before it PREVIOUS. Unknown secrets, names, versions or stages answer 404, as OCI does.
"""

from __future__ import annotations

import base64
import itertools
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fusion_extract.clock import Clock, isoformat
from tests.emulators.oci.http import Request, Response, Route, ServiceError

DEFAULT_VAULT_ID = "ocid1.vault.oc1..emu"
KEY_ID = "ocid1.key.oc1..emu"
MAX_BUNDLE_BYTES = 25 * 1024  # OCI's limit on a secret bundle
STAGES = ("CURRENT", "PENDING", "LATEST", "PREVIOUS", "DEPRECATED")


@dataclass(frozen=True)
class SecretVersion:
    number: int
    content: bytes
    created: datetime


@dataclass
class Secret:
    ocid: str
    name: str
    vault_id: str
    versions: list[SecretVersion]
    state: str = "ACTIVE"  # PENDING_DELETION once its deletion is scheduled

    def version(self, query: dict[str, str]) -> tuple[SecretVersion, list[str]]:
        """The version the query selects (versionNumber, else stage, default CURRENT) and its stages."""
        stage = query.get("stage", "CURRENT")
        if stage not in STAGES:
            raise ServiceError(400, "InvalidParameter", f"stage must be one of {', '.join(STAGES)}")
        if "versionNumber" in query:
            wanted = [v for v in self.versions if str(v.number) == query["versionNumber"]]
        elif stage in ("CURRENT", "LATEST"):
            wanted = self.versions[-1:]
        elif stage == "PREVIOUS":
            wanted = self.versions[-2:-1]
        else:
            wanted = []
        if not wanted:
            raise ServiceError(404, "NotAuthorizedOrNotFound", f"secret {self.ocid} has no such version")
        version = wanted[0]
        if version is self.versions[-1]:
            return version, ["CURRENT", "LATEST"]
        if len(self.versions) > 1 and version is self.versions[-2]:
            return version, ["PREVIOUS"]
        return version, ["DEPRECATED"]


class Vault:
    def __init__(self, clock: Clock, compartment: str) -> None:
        self.clock = clock
        self.compartment = compartment
        self._secrets: dict[str, Secret] = {}
        self._by_name: dict[tuple[str, str], Secret] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.routes: list[Route] = [
            ("GET", re.compile(r"/20190301/secretbundles/(?P<secret_id>[^/]+)"), self._get_bundle),
            ("POST", re.compile(r"/20190301/secretbundles/actions/getByName"), self._get_bundle_by_name),
            ("GET", re.compile(r"/20180608/secrets/(?P<secret_id>[^/]+)"), self._get_secret),
        ]

    def put_secret(self, name: str, content: bytes, vault_id: str = DEFAULT_VAULT_ID) -> str:
        if not name:
            raise ValueError("a secret needs a name")
        if len(content) > MAX_BUNDLE_BYTES:
            raise ValueError(f"secret {name!r} is {len(content)} bytes; OCI allows {MAX_BUNDLE_BYTES}")
        with self._lock:
            secret = self._by_name.get((vault_id, name))
            if secret is None:
                secret = Secret(f"ocid1.vaultsecret.oc1..emu{next(self._ids)}", name, vault_id, [])
                self._secrets[secret.ocid] = secret
                self._by_name[(vault_id, name)] = secret
            secret.versions.append(SecretVersion(len(secret.versions) + 1, content, self.clock.now()))
            return secret.ocid

    def schedule_deletion(self, secret_id: str) -> None:
        """ScheduleSecretDeletion in-process (a `terraform destroy`): the secret turns PENDING_DELETION."""
        with self._lock:
            self._secrets[secret_id].state = "PENDING_DELETION"

    def cancel_deletion(self, secret_id: str) -> None:
        """CancelSecretDeletion in-process: ACTIVE again."""
        with self._lock:
            self._secrets[secret_id].state = "ACTIVE"

    def _get_bundle(self, request: Request, match: re.Match[str]) -> Response:
        secret = self._secrets.get(match["secret_id"])
        if secret is None:
            raise ServiceError(404, "NotAuthorizedOrNotFound", f"secret {match['secret_id']} not found")
        return Response.json(200, self._bundle(secret, request.query))

    def _get_bundle_by_name(self, request: Request, match: re.Match[str]) -> Response:
        name, vault_id = request.query.get("secretName"), request.query.get("vaultId")
        if not name or not vault_id:
            raise ServiceError(400, "MissingParameter", "secretName and vaultId are required")
        secret = self._by_name.get((vault_id, name))
        if secret is None:
            raise ServiceError(404, "NotAuthorizedOrNotFound", f"no secret {name!r} in vault {vault_id}")
        return Response.json(200, self._bundle(secret, request.query))

    def _get_secret(self, request: Request, match: re.Match[str]) -> Response:
        """Vault management GetSecret: the secret's metadata, never its content."""
        secret = self._secrets.get(match["secret_id"])
        if secret is None:
            raise ServiceError(404, "NotAuthorizedOrNotFound", f"secret {match['secret_id']} not found")
        with self._lock:
            first, current = secret.versions[0], secret.versions[-1]
        document = {
            "id": secret.ocid,
            "secretName": secret.name,
            "vaultId": secret.vault_id,
            "compartmentId": self.compartment,
            "keyId": KEY_ID,
            "lifecycleState": secret.state,
            "currentVersionNumber": current.number,
            "timeCreated": isoformat(first.created),
        }
        return Response.json(200, document, {"etag": f"emu-{current.number}"})

    def _bundle(self, secret: Secret, query: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            version, stages = secret.version(query)
        return {
            "secretId": secret.ocid,
            "versionNumber": version.number,
            "versionName": None,
            "timeCreated": isoformat(version.created),
            "stages": stages,
            "metadata": None,
            "secretBundleContent": {
                "contentType": "BASE64",
                "content": base64.b64encode(version.content).decode(),
            },
        }
