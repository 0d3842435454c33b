"""What a cold container pays for before its step runs: only the modules the step needs."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.unit.fusion_support import settings_env


def test_the_runtime_loads_the_fusion_client_and_requests_only_when_a_step_talks_to_fusion() -> None:
    # Given a fresh interpreter, as a cold function container
    script = (
        "import sys\n"
        "import fusion_extract.runtime as r\n"
        "print('requests' in sys.modules, 'fusion_extract.fusion.batch' in sys.modules)\n"
        "print(callable(r.Runtime.fusion.func))\n"
    )

    # When the composition root is imported (every invocation does, the units' ones included)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    # Then neither requests nor the Fusion client was imported: an invocation that only unpacks skips them
    assert result.stdout.split() == ["False", "False", "True"]


def test_the_runtime_loads_the_monitoring_and_notifications_sdk_only_for_a_metric_or_a_message() -> None:
    # Given a fresh interpreter, as a cold function container
    script = (
        "import sys\n"
        "import fusion_extract.runtime\n"
        "print('oci.monitoring' in sys.modules, 'oci.ons' in sys.modules)\n"
    )

    # When the composition root is imported
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    # Then neither the Monitoring nor the Notifications SDK was: a transfer that posts no metric and
    # hands nothing on never needs them
    assert result.stdout.split() == ["False", "False"]


# A fresh interpreter serves a first call as a cold container does (fdk's context, a probe message, which
# touches no run) and says how many collections ran during it, and how many objects were then frozen.
FIRST_CALL = """
import gc, io, json, sys
from fdk import context
from fusion_extract.function import serve
from fusion_extract.chain.messages import parse_transfer
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
ctx = context.InvokeContext("app", "fn", "id", "transfer", "call-1", config=json.loads(sys.argv[1]))
body = json.dumps({"v": 1, "kind": "probe", "source": "poll"}).encode()
answer = serve(ctx, io.BytesIO(body), "transfer", parse_transfer, lambda message, deps: None)
said = {"status": answer.status(), "collections": len(collections), "frozen": gc.get_freeze_count()}
print(json.dumps(said))
"""


def test_a_cold_instance_imports_its_runtime_without_collecting_and_freezes_what_it_built() -> None:
    # Given a fresh interpreter, as a cold function container, with fdk and the function's module loaded
    # When its first call imports the runtime (and through it the OCI SDK)
    config = json.dumps(settings_env(LOG_LEVEL="ERROR"))
    result = subprocess.run(
        [sys.executable, "-c", FIRST_CALL, config], capture_output=True, text=True, check=True
    )
    said = json.loads(result.stdout.splitlines()[-1])

    # Then the call was answered, no garbage collection walked those imports, and what they built (tens
    # of thousands of objects that live as long as the container) is out of every later collection's way
    assert said["status"] == 200
    assert said["collections"] <= 2
    assert said["frozen"] > 20_000
