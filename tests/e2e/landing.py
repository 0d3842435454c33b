"""What the end-to-end tests read back from the landed bucket."""

import hashlib
import json

from tests.emulators.fusion import ExtractScenario

QUICK = ExtractScenario(seconds_enqueued=0.2, seconds_running=0.6)  # jobs that finish in a second


def landed_manifest(chain, run):
    folder = f"landing/{run.extract}/dt={run.created_at:%Y-%m-%d}/run={run.job_id}"
    manifest = json.loads(chain.landed_path(f"{folder}/_manifest.json").read_text())
    return folder, manifest


def assert_every_member_verifies(chain, manifest):
    for file in manifest["files"]:
        for member in file["members"]:
            data = chain.landed_path(member["object"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == member["sha256"], member["object"]
            assert len(data) == member["size"]


def landed_objects(chain, run):
    folder, _ = landed_manifest(chain, run)
    root = chain.landed_path(folder)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
