"""What a cold container pays for before its step runs: only the modules the step needs."""

from __future__ import annotations

import subprocess
import sys


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
