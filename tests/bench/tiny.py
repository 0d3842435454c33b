"""Tiny members: one archive of many small members landed in pieces, its peak memory measured.

    .venv/bin/python -m tests.bench.tiny [--members 50000] [--budget-seconds 3]
    .venv/bin/python -m tests.bench.tiny --fresh [--members 50000] [--budget-seconds 30]

The any-size piece (tests.bench.pieces) for one archive: every invocation of the transfer, one after
another, in one warm function instance; its peak RSS (VmHWM) bounds what any single invocation held. Prints
the record as JSON on the last line (and the piece's summary line on stderr).

`--fresh`: the run landed as function instances land it, every invocation of the transfer in a new
process (tests.bench.instances, cold), at most four at once, as the chain hands its messages out
(product.drive): the `.mf`'s, then the archive's file message (its fetch, the plan, the first unit), each
unit's (unpacking, then promoting), the last of which lands the file and finishes the run (_manifest.json,
_SUCCESS). Each invocation's peak RSS is the kernel's ru_maxrss of the process that served it (a fork of
the bare interpreter, so nothing of the harness is counted), beside its own VmHWM. Then the landing is
checked: the run LANDED, every member byte-equal to what the standard library's `zipfile` reads from the
archive, and _manifest.json and _SUCCESS each written once. The submit and the poll that plan the run
run in the harness, before the clock starts. Exits 1 if the landing is wrong or an invocation peaked over
128 MiB.

The archive holds `members` CSV members of three rows each (about 100 bytes), written here in seconds
(datagen's generator makes each member from a batch of rows: hours for 50,000) and cached.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from tests.bench import pieces
from tests.bench.compare import INSTANCE_LOG, Oci, serving
from tests.bench.datagen import CACHE, Built, Spec
from tests.bench.instances import compile_sources
from tests.bench.product import drive, prepare_run
from tests.bench.servers import BUCKET, REPO, Child

BOUND_MIB = 128.0  # the product's bar: peak RSS per invocation
EXTRACT = "TinyFresh"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.tiny", description=__doc__)
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--budget-seconds", type=float, default=None, help="3 s; with --fresh 30 s")
    parser.add_argument("--fresh", action="store_true", help="every invocation in a new process")
    options = parser.parse_args()
    archive = tiny_archive(options.members)
    scratch = REPO / ".local" / "bench-work"
    scratch.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=scratch))
    oci = Oci(Child("tests.bench.servers", "oci", str(workdir)), workdir)
    settings = {"ZIP_MAX_ENTRIES": str(options.members + 1)}
    try:
        if options.fresh:
            budget = 30.0 if options.budget_seconds is None else options.budget_seconds
            record = fresh(archive, budget, oci, settings)
            ok = record["landed_complete"] and record["largest_max_rss_mib"] <= BOUND_MIB
        else:
            budget = 3.0 if options.budget_seconds is None else options.budget_seconds
            [record] = pieces.any_size([archive], budget, oci, _log, settings)
            ok = record["landed_complete"]
    finally:
        oci.child.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(record))
    if not ok:
        sys.exit(1)


def fresh(archive: Built, budget: float, oci: Oci, settings: dict[str, str]) -> dict[str, Any]:
    """The run landed with every invocation in a new process; each one's figures, and what was checked."""
    compile_sources()
    with serving(pieces.LOOPBACK, {EXTRACT: archive}, oci) as fusion:
        env = {**fusion.env, **settings, "TRANSFER_BUDGET_SECONDS": str(budget)}
        run_id, files = prepare_run(env, EXTRACT)
        (zip_name, _url), others = files[0], [name for name, _url in files[1:]]
        bucket = Path(oci.served["root"]) / BUCKET
        calls: list[dict[str, Any]] = []
        started = time.perf_counter()
        # The archive last: its last invocation lands the last file and finishes the run (the manifest
        # of every member): the most any one invocation holds.
        for name in [*others, zip_name]:
            with INSTANCE_LOG.open("a") as log:
                driven = drive(env, run_id, name, bucket, warm=False, log=log, own_rusage=True)
            calls += [{"file": name, **call} for call in driven["per_invocation"]]
            if not driven["ok"]:
                return {"landed_complete": False, "error": driven, "largest_max_rss_mib": 0.0}
        wall = time.perf_counter() - started
        problem = landing_problem(env, run_id, archive, bucket)
        writes = {name: oci.child.ask(f"writes {name}")["count"] for name in ("_manifest.json", "_SUCCESS")}
    if problem is None and writes != {"_manifest.json": 1, "_SUCCESS": 1}:
        problem = f"written more or less than once: {writes}"
    for call in calls:
        del call["instance"]
    peaks = [call["max_rss_mib"] for call in calls]
    record = {
        "members": len(archive.members),
        "zip_bytes": archive.size,
        "budget_s": budget,
        "wall_s": round(wall, 1),
        "invocations": len(calls),
        "outcomes": dict(
            Counter(f"{c['message'] if c['message'] is not None else 'file'}:{c['outcome']}" for c in calls)
        ),
        "largest_max_rss_mib": round(max(peaks), 1),
        "largest_vmhwm_mib": round(max(call["peak_rss_mib"] for call in calls), 1),
        "landed_complete": problem is None,
        "landed_problem": problem,
        "writes": writes,
        "per_invocation": calls,
    }
    _log(_fresh_line(record))
    return record


def landing_problem(env: dict[str, str], run_id: str, archive: Built, bucket: Path) -> str | None:
    """What is wrong with the run's landing folder, or None: LANDED, and holding exactly the archive's
    members, each byte-equal to zipfile's reading of it (besides _manifest.json, _SUCCESS and the .mf)."""
    from fusion_extract.chain.ledger.records import RunState
    from fusion_extract.config import Settings
    from fusion_extract.runtime import Runtime

    runtime = Runtime(Settings.from_mapping(env))
    run = runtime.ledger.load_run(run_id).value
    if run.state is not RunState.LANDED:
        return f"run {run_id} is {run.state.value}: {run.reason}"
    folder = bucket / runtime.layout.run_folder(run)
    landed = {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}
    extra = landed - {m["name"] for m in archive.members} - {"_manifest.json", "_SUCCESS"}
    extra = {name for name in extra if not name.endswith(".mf")}
    wrong: list[str] = []
    with zipfile.ZipFile(archive.path) as source:
        for info in source.infolist():
            path = folder / info.filename
            if not path.is_file() or path.read_bytes() != source.read(info):
                wrong.append(info.filename)
    if wrong or extra:
        return f"{len(wrong)} members missing or not byte-equal ({wrong[:3]}); {len(extra)} objects extra"
    return None


def _fresh_line(record: dict[str, Any]) -> str:
    state = "landed complete" if record["landed_complete"] else f"WRONG: {record['landed_problem']}"
    return (
        f"  fresh processes, {record['members']} tiny members, budget {record['budget_s']:g}s:"
        f" {record['invocations']} invocations in {record['wall_s']:.0f}s, largest ru_maxrss"
        f" {record['largest_max_rss_mib']:.1f} MiB (VmHWM {record['largest_vmhwm_mib']:.1f}); {state}"
    )


def tiny_archive(members: int, cache: Path = CACHE) -> Built:
    """An archive of `members` tiny CSV members (cached; the same bytes every time)."""
    folder = cache / f"tiny-{members}m"
    path, described = folder / "archive.zip", folder / "archive.json"
    spec = Spec(1, members)
    if not described.exists():
        folder.mkdir(parents=True, exist_ok=True)
        listed = []
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for index in range(members):
                name = f"TINY_{index + 1}.csv"
                text = f"ID,AMOUNT\n{index * 3},{index % 97}.50\n{index * 3 + 1},1.25\n{index * 3 + 2},0\n"
                archive.writestr(zipfile.ZipInfo(name, (2026, 3, 1, 8, 0, 0)), text, zipfile.ZIP_DEFLATED)
                listed.append({"name": name, "size": len(text), "rows": 3})
        data = path.read_bytes()
        document = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "members": listed}
        described.write_text(json.dumps(document) + "\n")
    document = json.loads(described.read_text())
    return Built(spec, path, document["size"], document["sha256"], document["members"])


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
