"""What the benchmarks share: memory figures from /proc, generated data, and the emulators run as child
processes, so that a benchmark's own peak RSS is the client's alone.

`python -m tests.bench.support WORKDIR [--secret JSON]` is the OCI emulator's child process: objects under
WORKDIR/objects, an API-key config file at WORKDIR/config, bucket `bench`, four topics and one secret;
it prints one JSON line once it serves and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

MB = 2**20
REPO = Path(__file__).resolve().parents[2]
BUCKET = "bench"
TOPICS = ("poll", "transfer", "rerun", "alerts")
_STOP = {signal.SIGINT, signal.SIGTERM}


def memory_mb(pid: int | None = None) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of a process, this one by default, in MiB."""
    lines = Path(f"/proc/{pid or 'self'}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines)
    return {key: round(int(fields[key].split()[0]) / 1024, 1) for key in ("VmRSS", "VmHWM")}


def disk_written_bytes() -> int:
    """Bytes this process (every thread) has caused to be written to storage, temporary files included."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["write_bytes"])


def generated_chunks(size: int) -> Iterator[bytes]:
    """`size` incompressible bytes in 1 MiB chunks, the same block over and over: nothing accumulates."""
    block = os.urandom(MB)
    for start in range(0, size, MB):
        yield block[: min(MB, size - start)]


class ChunkReader:
    """The same bytes as a non-seekable file-like object, as the SDK's UploadManager wants them."""

    def __init__(self, size: int) -> None:
        self._chunks = generated_chunks(size)
        self._pending = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._pending) < n:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._pending += chunk
        data, self._pending = (self._pending, b"") if n < 0 else (self._pending[:n], self._pending[n:])
        return data


@contextmanager
def child_server(module: str, *args: str) -> Iterator[tuple[dict[str, Any], int]]:
    """`python -m module args`, which prints one JSON line once it serves: (that JSON, its pid).
    SIGTERM stops it on the way out."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{module} exited before serving (status {process.wait()})")
        yield json.loads(line), process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


# -- the OCI emulator in a child process ------------------------------------------------------------


@dataclass(frozen=True)
class OciProcess:
    pid: int
    workdir: Path
    endpoint: str
    namespace: str
    config: dict[str, str]  # API-key config for SDK clients
    config_file: str  # the same, as an OCI config file (OCI_AUTH=config_file)
    secret_id: str
    topics: dict[str, str]

    def object_path(self, name: str) -> Path:
        return self.workdir / "objects" / BUCKET / name

    def sdk_config(self) -> dict[str, str]:
        """The config dict, with retries and the circuit breaker off before the SDK is first imported."""
        os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")
        os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")
        return dict(self.config)


@contextmanager
def oci_emulator(workdir: Path, secret: str = "{}") -> Iterator[OciProcess]:
    with child_server("tests.bench.support", str(workdir), "--secret", secret) as (served, pid):
        yield OciProcess(pid=pid, workdir=workdir, **served)


def _serve_oci(workdir: Path, secret: str) -> None:
    from tests.emulators.oci import OciEmulator
    from tests.emulators.oci.functions import FunctionsService
    from tests.emulators.oci.notifications import NotificationsService

    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP)  # before any thread starts: only sigwait gets them
    emulator = OciEmulator(workdir / "objects")
    with emulator, NotificationsService(FunctionsService()) as notifications:
        emulator.add_service(notifications)
        emulator.create_bucket(BUCKET)
        served = {
            "endpoint": emulator.endpoint,
            "namespace": emulator.namespace,
            "config": emulator.api_key_config(),
            "config_file": str(emulator.write_config_file(workdir / "config")),
            "secret_id": emulator.put_secret("bench-credentials", secret.encode()),
            "topics": {name: notifications.create_topic(f"bench-{name}") for name in TOPICS},
        }
        print(json.dumps(served), flush=True)
        signal.sigwait(_STOP)


# -- the Fusion emulator in a child process ---------------------------------------------------------


@contextmanager
def fusion_emulator(rows: int, level: int) -> Iterator[tuple[dict[str, Any], int]]:
    """Extract `Bench`: one ZIP of `rows` CSV rows deflated at `level`; jobs succeed at once."""
    shape = [
        "--extract",
        "Bench",
        "--chunks",
        "1",
        "--rows-per-chunk",
        str(rows),
        "--compress-level",
        str(level),
    ]
    with child_server(
        "tests.emulators.fusion", *shape, "--seconds-enqueued", "0", "--seconds-running", "0"
    ) as served:
        yield served


def fusion_session(served: dict[str, Any]) -> requests.Session:
    """A plain `requests` session holding a client-credentials token of the Fusion emulator."""
    session = requests.Session()
    session.verify = served["ca_path"]
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify` (tooling.md section 0)
    answer = session.post(
        f"{served['idcs_url']}/oauth2/v1/token",
        data={"grant_type": "client_credentials", "scope": served["scope"]},
        auth=(served["client_id"], served["client_secret"]),
    )
    answer.raise_for_status()
    session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return session


def main() -> None:
    parser = argparse.ArgumentParser(description="the OCI emulator as a benchmark's child process")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--secret", default="{}", help="content of the one Vault secret")
    options = parser.parse_args()
    _serve_oci(options.workdir, options.secret)


if __name__ == "__main__":
    main()
