"""Our transfer against the blog pipeline and the limits, side by side, in rotated rounds.

For one network profile: the OCI emulator (shared by the profiles), a Fusion emulator serving the cached
archives from disk, and for a throttled profile the proxy in front of it (Fusion's links then name the
proxy). For each archive and round, every pipeline runs once in its own process, in an order rotated by
the round; the run is prepared (a submitted job, its files planned) and closed (the `.mf` transferred, the
run LANDED, the bucket emptied) outside the measured processes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench import stats
from tests.bench.datagen import Built
from tests.bench.product import drive, finish_run, prepare_run
from tests.bench.proxy import Profile
from tests.bench.servers import BUCKET, REPO, Child
from tests.bench.stats import served_once

OURS = ("ours_cold", "ours_warm")  # tests.bench.product.drive, cold and warm
LIMITS_ALONE = ("download", "inflate_archive", "inflate_zipfile", "upload")
NETWORK_PIPELINES = (*OURS, "blog", "download")  # what a throttled profile changes
ALL_PIPELINES = (*OURS, "blog", *LIMITS_ALONE)
PURGED = ("landing", "_staging", "blog", "upload")  # bucket prefixes emptied after each round
INSTANCE_LOG = REPO / ".local" / "bench-instances.log"  # the function instances' own log (stderr)
Log = Callable[[str], None]


@dataclass(frozen=True)
class Case:
    """One archive under one profile, and the pipelines to run on it."""

    profile: Profile
    archive: Built
    pipelines: tuple[str, ...]

    @property
    def extract(self) -> str:
        return f"Bench{self.archive.spec.megabytes}x{self.archive.spec.members}"


@dataclass
class Oci:
    """The shared OCI emulator child and what clients need to reach it."""

    child: Child
    workdir: Path
    secret_id: str = ""

    @property
    def served(self) -> dict[str, Any]:
        return dict(self.child.ready)

    def requests_since(self, count: int) -> dict[str, Any]:
        return dict(self.child.ask(f"served {count}"))

    def purge(self) -> None:
        root = Path(self.served["root"])
        for prefix in PURGED:
            shutil.rmtree(root / BUCKET / prefix, ignore_errors=True)
            shutil.rmtree(root / ".meta" / BUCKET / prefix, ignore_errors=True)


@dataclass
class Runs:
    records: list[dict[str, Any]] = field(default_factory=list)


def child_environment() -> dict[str, str]:
    """The harness's environment without the SDK switches tests set: each pipeline configures its SDK."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OCI_SDK_")}


def run_pipeline(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """One pipeline in its own process: its report plus the process's CPU, wall and peak RSS (wait4)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.pipelines", name],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_environment(),
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(json.dumps(params))
    process.stdin.close()
    output = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    process.stdout.close()
    figures: dict[str, Any] = {
        "process_wall_s": time.perf_counter() - started,
        "process_cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": None,  # the child's own VmHWM (ru_maxrss here would include our size at fork)
    }
    lines = output.strip().splitlines()
    if process.returncode != 0 or not lines:
        return {**figures, "ok": False, "error": f"{name} exited with status {process.returncode}"}
    return {**figures, **json.loads(lines[-1])}


def product_env(fusion: dict[str, Any], oci: Oci) -> dict[str, str]:
    """The transfer function's configuration, aimed at the emulators; the product's defaults otherwise."""
    served = oci.served
    return {
        "FUSION_BASE_URL": fusion["base_url"],
        "IDCS_URL": fusion["idcs_url"],
        "FUSION_SCOPE": fusion["scope"],
        "CA_BUNDLE": fusion["ca_path"],
        "CREDENTIALS_SECRET_ID": oci.secret_id,
        "OCI_AUTH": "config_file",
        "OCI_CONFIG_FILE": served["config_file"],
        **{f"OCI_{s}_ENDPOINT": served["endpoint"] for s in ("OBJECTSTORAGE", "SECRETS", "NOTIFICATIONS")},
        "BUCKET_NAME": BUCKET,
        "BUCKET_NAMESPACE": served["namespace"],
        **{f"{name.upper()}_TOPIC_ID": topic for name, topic in served["topics"].items()},
        "POLL_MIN_INTERVAL": "0.1",  # set-up only: the job has succeeded by the first check
        "HTTP_READ_TIMEOUT": "600",
        "LOG_LEVEL": "WARNING",
    }


@dataclass
class Fusion:
    """A Fusion emulator child serving some archives (behind a proxy for a throttled profile), and the
    product's configuration aimed at it and at the OCI emulator."""

    child: Child
    served: dict[str, Any]
    env: dict[str, str]

    def downloads_since(self, count: int) -> dict[str, Any]:
        return dict(self.child.ask(f"downloads {count}"))


@contextmanager
def serving(profile: Profile, archives: dict[str, Built], oci: Oci) -> Iterator[Fusion]:
    """Fusion serving `archives` ({extract: archive}) under `profile`, for as long as the block runs."""
    proxy = Child("tests.bench.proxy", *_proxy_args(profile)) if profile.rate_mb_s or profile.rtt_ms else None
    spec = {
        "extracts": {extract: {"zip": str(archive.path)} for extract, archive in archives.items()},
        "advertise_port": proxy.ready["port"] if proxy else None,
    }
    fusion_child = Child("tests.bench.servers", "fusion", json.dumps(spec))
    try:
        fusion = dict(fusion_child.ready)
        if proxy:
            proxy.tell(fusion["upstream"])
        credentials = json.dumps({"client_id": fusion["client_id"], "client_secret": fusion["client_secret"]})
        oci.secret_id = oci.child.ask(f"secret bench-credentials {credentials}")["secret_id"]
        yield Fusion(fusion_child, fusion, product_env(fusion, oci))
    finally:
        fusion_child.stop()
        if proxy:
            proxy.stop()


def run_profile(profile: Profile, cases: list[Case], rounds: int, oci: Oci, log: Log) -> list[dict[str, Any]]:
    """Every case of one profile, `rounds` rounds each; one record per pipeline run."""
    records: list[dict[str, Any]] = []
    with serving(profile, {case.extract: case.archive for case in cases}, oci) as fusion:
        for case in cases:
            warm(case.archive.path)
            for round_index in range(rounds):
                records += _round(case, round_index, fusion, oci, log)
    return records


def _proxy_args(profile: Profile) -> list[str]:
    args = ["--rtt-ms", str(profile.rtt_ms)]
    return args + (["--rate-mb-s", str(profile.rate_mb_s)] if profile.rate_mb_s else [])


def warm(path: Path) -> None:
    """Read the archive once, so every round finds it in the page cache (the server reads it from there)."""
    with path.open("rb") as data:
        while data.read(16 * 2**20):
            pass


def _round(case: Case, round_index: int, fusion: Fusion, oci: Oci, log: Log) -> list[dict[str, Any]]:
    """Every pipeline once, in the round's order. Each of ours gets a run of its own (prepared and closed
    outside its measurement); the others fetch the archive by the link of the round's first run."""
    archive, env = case.archive, fusion.env
    run = prepare_run(env, case.extract)
    (zip_name, zip_url), _others = run[1][0], run[1][1:]
    storage = {**oci.served, "bucket": BUCKET}
    common = {"name": zip_name, "url": zip_url, "zip": str(archive.path), "zip_bytes": archive.size}
    params: dict[str, dict[str, Any]] = {
        "blog": {
            **common,
            "fusion": fusion.served,
            "oci": storage,
            "tmp": str(oci.workdir / "tmp"),
            "prefix": "blog/",
        },
        "download": {**common, "fusion": fusion.served},
        "inflate_archive": common,
        "inflate_zipfile": common,
        "upload": {"oci": storage, "prefix": "upload/", "member_sizes": [m["size"] for m in archive.members]},
    }
    (oci.workdir / "tmp").mkdir(exist_ok=True)
    records = []
    pending: tuple[str, list[tuple[str, str]]] | None = run
    counts: dict[str, int] = {}

    def at_start() -> None:  # where the requests of the pipeline begin (a warm pool's priming is not its)
        counts.update(oci=oci.requests_since(0)["count"], fusion=fusion.downloads_since(0)["count"])

    for position, name in enumerate(stats.rotated(case.pipelines, round_index)):
        at_start()
        if name in OURS:
            run_id, files = pending or prepare_run(env, case.extract)
            pending = None
            folder = Path(oci.served["root"]) / BUCKET
            with INSTANCE_LOG.open("a") as instances_log:
                warm = name == "ours_warm"
                figures = drive(
                    env, run_id, files[0][0], folder, warm=warm, at_start=at_start, log=instances_log
                )
            served = oci.requests_since(counts["oci"])  # before the close: only what the transfer asked
            problem = close_run(env, run_id, files[1:], archive)
            if problem is not None:
                figures = {**figures, "ok": False, "error": problem}
        else:
            figures = run_pipeline(name, {**params[name], "uncompressed": archive.uncompressed})
            served = oci.requests_since(counts["oci"])
        downloads = fusion.downloads_since(counts["fusion"])["downloads"]
        fetched = [d for d in downloads if d["name"].endswith(".zip")]
        base = {
            "profile": case.profile.name,
            "archive": archive.spec.key,
            "megabytes": archive.spec.megabytes,
            "members": archive.spec.members,
            "zip_bytes": archive.size,
            "round": round_index,
            "position": position,
            "oci_calls": served["kinds"],
            "oci_commit_s": served.get("commit_seconds"),
            "fusion": served_once(fetched, archive.size) if fetched else None,
        }
        for view in _views(name, figures):
            records.append({**base, **view})
            log(_line(records[-1]))
        oci.purge()
    if pending is not None:  # no pipeline of ours in this case: land the round's run all the same
        close_run(env, pending[0], pending[1], archive)
        oci.purge()
    return records


def _views(name: str, figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of one pipeline run. The blog's process is seen twice: cold, the whole process (a new
    instance: interpreter, imports, the work), and warm, its window (a reused instance: the work alone)."""
    if name != "blog":
        return [{"pipeline": name, **figures}]
    cold = {"wall_s": figures.get("process_wall_s"), "cpu_s": figures.get("process_cpu_s")}
    return [{"pipeline": "blog_cold", **figures, **cold}, {"pipeline": "blog_warm", **figures}]


def close_run(env: dict[str, str], run_id: str, others: list[tuple[str, str]], archive: Built) -> str | None:
    """Land the run's other files (the `.mf`); what is wrong with the run, or None when it LANDED with
    exactly the archive's members and sizes."""
    landed = finish_run(env, run_id, [name for name, _url in others])
    expected = {m["name"]: m["size"] for m in archive.members}
    if landed["state"] != "LANDED":
        return f"run {run_id}: {landed['state']} {landed['reason']}"
    if landed["members"] != {**expected, **_mf(landed, others)}:
        missing = sorted(set(expected) - set(landed["members"]))[:5]
        wrong = sorted(k for k, v in landed["members"].items() if k in expected and expected[k] != v)[:5]
        return f"run {run_id}: members differ from the archive's (missing {missing}, sizes differ {wrong})"
    return None


def _mf(landed: dict[str, Any], others: list[tuple[str, str]]) -> dict[str, int]:
    """The .mf files landed beside the members (they count as landed members of their own file)."""
    names = {name for name, _url in others}
    return {path: size for path, size in landed["members"].items() if path in names}


def _line(record: dict[str, Any]) -> str:
    state = "ok" if record.get("ok") else f"FAILED {record.get('error') or record.get('outcome')}"
    fusion = record.get("fusion")
    served = "" if fusion is None else f" Fusion {fusion['bytes_read_to_send'] / record['zip_bytes']:.2f}x"
    return (
        f"  {record['profile']:<9} {record['archive']:<20} r{record['round']} {record['pipeline']:<16}"
        f" wall {record.get('wall_s') or 0:7.2f}s cpu {record.get('cpu_s') or 0:7.2f}s"
        f" rss {record.get('peak_rss_mib') or 0:6.0f}MiB"
        f" disk {(record.get('disk_write_bytes') or 0) / 2**20:7.1f}MiB"
        f" calls {sum(record['oci_calls'].values()):4d}{served}  {state}"
    )
