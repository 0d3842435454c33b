"""The servers a benchmark runs, each in its own process, so that no client figure includes them.

    python -m tests.bench.servers oci WORKDIR       Object Storage (bucket `bench`), Vault, Notifications
    python -m tests.bench.servers fusion SPEC_JSON  Fusion serving prebuilt ZIPs, optionally advertising
                                                    a proxy's URL in its links

Each prints one JSON line once it serves, then answers one JSON line per command line on stdin. OCI:
`served N`, the OCI requests served since the N-th, by kind, and the seconds the emulator spent committing
multipart uploads among them (it assembles the object by copying the parts, which Object Storage does not
do: that time is the emulator's, yet a client waits for it). Fusion: `downloads N`, every download of an
archive since the N-th: the range asked for and the bytes read from the file to send (a client that hangs
up mid-body leaves the rest unread); anything else, the count of requests. Closing stdin or SIGTERM stops
it.
`Child` is the harness side: start, ask, stop (by its own pid only).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

BUCKET = "bench"
TOPICS = ("poll", "transfer", "rerun", "alerts")
REPO = Path(__file__).resolve().parents[2]

_KINDS = (  # (method, raw-path regex, kind): the first match names an OCI request
    ("GET", r"/n/?", "get_namespace"),
    ("POST", r"/n/[^/]+/b/[^/]+/actions/renameObject", "rename_object"),
    ("POST", r"/n/[^/]+/b/[^/]+/u", "create_multipart_upload"),
    ("PUT", r"/n/[^/]+/b/[^/]+/u/.+", "upload_part"),
    ("POST", r"/n/[^/]+/b/[^/]+/u/.+", "commit_multipart_upload"),
    ("DELETE", r"/n/[^/]+/b/[^/]+/u/.+", "abort_multipart_upload"),
    ("GET", r"/n/[^/]+/b/[^/]+/o/?", "list_objects"),
    ("PUT", r"/n/[^/]+/b/[^/]+/o/.+", "put_object"),
    ("GET", r"/n/[^/]+/b/[^/]+/o/.+", "get_object"),
    ("HEAD", r"/n/[^/]+/b/[^/]+/o/.+", "head_object"),
    ("DELETE", r"/n/[^/]+/b/[^/]+/o/.+", "delete_object"),
    ("GET", r".*/secretbundles/.+", "get_secret_bundle"),
    ("POST", r".*/topics/.+/messages", "publish_message"),
)


def call_kind(method: str, path: str) -> str:
    """The SDK operation behind an OCI request, or `METHOD other`."""
    for expected, pattern, kind in _KINDS:
        if method == expected and re.fullmatch(pattern, path):
            return kind
    return f"{method} other"


class Child:
    """`python -m tests.bench.servers ...` (or any module speaking the same protocol) as a child process."""

    def __init__(self, module: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready = self._line(f"{module} exited before serving")

    def ask(self, command: str) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._line(f"no answer to {command!r}")

    def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(timeout=30)

    def _line(self, problem: str) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{problem} (status {self.process.wait()})")
        return json.loads(line)


# -- the child side ---------------------------------------------------------------------------------


def _stop_on_sigterm() -> None:
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


def serve_oci(workdir: Path) -> None:
    from tests.emulators.oci import OciEmulator
    from tests.emulators.oci.functions import FunctionsService
    from tests.emulators.oci.notifications import NotificationsService

    _stop_on_sigterm()
    emulator = OciEmulator(workdir / "objects")
    commits = _time_commits(lambda: len(emulator.served))
    with emulator, NotificationsService(FunctionsService()) as notifications:
        emulator.add_service(notifications)
        emulator.create_bucket(BUCKET)
        served = {
            "endpoint": emulator.endpoint,
            "namespace": emulator.namespace,
            "root": str(workdir / "objects"),
            "config_file": str(emulator.write_config_file(workdir / "config")),
            "topics": {name: notifications.create_topic(f"bench-{name}") for name in TOPICS},
        }
        secrets: dict[str, str] = {}
        print(json.dumps(served), flush=True)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "served":
                since = int(argument or 0)
                requests = list(emulator.served)
                kinds = Counter(call_kind(method, path) for method, path, _status in requests[since:])
                with commits.lock:
                    seconds = sum(took for index, took in commits.timed if index >= since)
                answer: dict[str, Any] = {
                    "count": len(requests),
                    "kinds": dict(kinds),
                    "commit_seconds": round(seconds, 3),
                }
            elif command == "writes":  # writes <name>: PUTs that took effect of objects named <...>/<name>
                puts = [path for method, path, status in emulator.served if method == "PUT" and status < 300]
                answer = {
                    "count": sum(1 for path in puts if unquote(path).split("?")[0].endswith(f"/{argument}"))
                }
            elif command == "secret":  # secret <name> <json content>
                name, _, content = argument.partition(" ")
                if name not in secrets:
                    secrets[name] = emulator.put_secret(name, content.encode())
                answer = {"secret_id": secrets[name]}
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)


@dataclass
class Commits:
    """How long each multipart commit took the emulator: (requests served before it, seconds)."""

    timed: list[tuple[int, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _time_commits(served: Callable[[], int]) -> Commits:
    """Time the emulator's multipart commits (this process only)."""
    from tests.emulators.oci.multipart import Uploads

    commits = Commits()
    commit = Uploads.commit

    def timed(self: Uploads, upload: Any, details: Any) -> Any:
        index, started = served(), time.perf_counter()  # the commit's own request is recorded after it
        try:
            return commit(self, upload, details)
        finally:
            with commits.lock:
                commits.timed.append((index, time.perf_counter() - started))

    Uploads.commit = timed  # type: ignore[method-assign]
    return commits


def serve_fusion(spec: dict[str, Any]) -> None:
    """spec: {"extracts": {name: {"zip": path, "view": ...}}, "advertise_port": int | null}."""
    from tests.emulators.fusion import ExtractScenario, FusionEmulator

    class Advertised(FusionEmulator):
        """Links and Locations name the proxy in front of us, when there is one."""

        public_url: str | None = None

        @property
        def base_url(self) -> str:
            return self.public_url or super().base_url

    _stop_on_sigterm()
    downloads = _count_downloads()
    fusion = Advertised()
    with fusion:
        upstream = fusion.base_url
        if spec.get("advertise_port"):
            fusion.public_url = f"https://127.0.0.1:{spec['advertise_port']}"
        client_id, client_secret = "bench-client", "bench-secret"
        fusion.add_client(client_id, client_secret, token_lifetime=24 * 3600)
        for name, extract in spec["extracts"].items():
            scenario = ExtractScenario(
                seconds_enqueued=0,
                seconds_running=0,
                chunks=1,
                view=extract.get("view", "invoices"),
                prebuilt_zip=extract["zip"],
            )
            fusion.define_extract(name, scenario)
        served = {
            "base_url": fusion.base_url,
            "upstream": upstream.removeprefix("https://"),
            "idcs_url": fusion.idcs_url,
            "ca_path": str(fusion.ca_path),
            "scope": fusion.scope,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        print(json.dumps(served), flush=True)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "downloads":
                since = int(argument or 0)
                with downloads.lock:
                    listed = [dict(download) for download in downloads.served[since:]]
                answer: dict[str, Any] = {"count": since + len(listed), "downloads": listed}
            else:
                answer = {"requests": len(fusion.requests)}
            print(json.dumps(answer), flush=True)


@dataclass
class Downloads:
    """Every archive download the Fusion server answered: {name, start, stop, read}, `read` growing as
    the body is sent."""

    served: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _count_downloads() -> Downloads:
    """Make the emulator's prebuilt archives count what they send (this process only)."""
    from tests.emulators.fusion import outputs
    from tests.emulators.fusion.prebuilt import PrebuiltFile

    downloads = Downloads()

    class Counted(PrebuiltFile):
        def read(self, start: int, stop: int) -> Iterator[bytes]:
            entry: dict[str, Any] = {"name": self.name, "start": start, "stop": stop, "read": 0}
            with downloads.lock:
                downloads.served.append(entry)
            for block in super().read(start, stop):
                with downloads.lock:
                    entry["read"] += len(block)
                yield block

    outputs.PrebuiltFile = Counted  # type: ignore[attr-defined]  # job_outputs builds what it names
    return downloads


def main() -> None:
    role, argument = sys.argv[1], sys.argv[2]
    if role == "oci":
        serve_oci(Path(argument))
    elif role == "fusion":
        serve_fusion(json.loads(argument))
    else:
        sys.exit(f"unknown server {role!r}")


if __name__ == "__main__":
    main()
