"""Finishing a run: when every file landed, cross-check, write _manifest.json then _SUCCESS, mark LANDED.

Called by transfer after each landed file and by the sweep when a finisher died midway.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fusion_extract import __version__
from fusion_extract.chain.deps import Deps
from fusion_extract.chain.manifest import ExtractMetadata, row_disagreements
from fusion_extract.chain.records import FileRecord, FileState, Run, RunState, Versioned
from fusion_extract.chain.runs import alert, discard_staging, end_run, logged
from fusion_extract.errors import ConflictError

log = logging.getLogger(__name__)

Outcome = dict[str, Any]


def finish_if_complete(deps: Deps, current: Versioned[Run]) -> Outcome | None:
    """When every file of the run landed: cross-check, write _manifest.json then _SUCCESS, mark LANDED."""
    run = current.value
    if run.state is not RunState.TRANSFERRING or deps.ledger.landed_count(run.run_id) < len(run.files):
        return None
    records = [v.value for v in deps.ledger.files(run.run_id)]
    if len(records) < len(run.files) or any(r.state is not FileState.LANDED for r in records):
        return None
    with logged(run):
        problems = _cross_check(run, records)
        if problems:
            end_run(deps, current, RunState.FAILED, "landed files do not verify: " + "; ".join(problems))
            return {"outcome": "failed", "run_id": run.run_id, "problems": problems}
        now = deps.clock.now()
        landed = run.but(state=RunState.LANDED, landed_at=now, updated_at=now, reason=None)
        manifest = _manifest(deps, landed, records)
        deps.store.put_bytes(deps.layout.manifest(run), manifest, content_type="application/json")
        # _SUCCESS last: its presence says the run is complete.
        deps.store.put_bytes(deps.layout.success(run), b"", content_type="text/plain")
        try:
            deps.ledger.save_run(current, landed)
        except ConflictError:
            return None  # a duplicate finished it
        deps.ledger.release_lease(run.extract, run.run_id)
        discard_staging(deps, run)
        totals = _totals(records)
        alert(deps, "landed", landed, None, folder=deps.layout.run_folder(run), **totals)
        log.info("run landed", extra=totals)
        return {"outcome": "landed", "run_id": run.run_id, **totals}


def _cross_check(run: Run, records: list[FileRecord]) -> list[str]:
    problems: list[str] = []
    zips = {r.name: r.sha256 for r in records if r.name.lower().endswith(".zip")}
    for record in records:
        if record.manifest is None:
            continue
        for name, digest in record.manifest.items():
            if name not in zips:
                problems.append(f"{record.name} lists {name}, which the job did not output")
            elif zips[name] != digest:
                problems.append(f"{name} has SHA-256 {zips[name]}, {record.name} says {digest}")
        problems.extend(
            f"{name} is missing from {record.name}" for name in zips if name not in record.manifest
        )
    members = [m for r in records for m in r.members]
    for record in records:
        if record.metadata is not None:
            problems.extend(row_disagreements(ExtractMetadata(**record.metadata), members))
    return problems


def _totals(records: list[FileRecord]) -> dict[str, int]:
    members = [m for r in records for m in r.members]
    return {
        "files": len(records),
        "members": len(members),
        "bytes": sum(m.size for m in members),
        "rows": sum(m.rows or 0 for m in members),
    }


def _manifest(deps: Deps, run: Run, records: list[FileRecord]) -> bytes:
    layout = deps.layout
    doc = {
        "product": "fusion-extract",
        "version": __version__,
        "run_id": run.run_id,
        "extract": run.extract,
        "mode": run.mode,
        "job_id": run.job_id,
        "job_status": run.status,  # WARNING: Fusion finished with warnings
        "jobs_submitted": list(run.job_ids),
        "reland": run.reland,
        "window": {"started_at": run.created_at.isoformat(), "run_at_times": run.run_at_times},
        "landed_at": run.landed_at.isoformat() if run.landed_at else None,
        "files": [
            {
                "name": r.name,
                "size": r.size,
                "sha256": r.sha256,
                "members": [
                    {
                        "path": m.path,
                        "object": layout.member(run, m.path),
                        "size": m.size,
                        "sha256": m.sha256,
                        "rows": m.rows,
                    }
                    for m in r.members
                ],
            }
            for r in sorted(records, key=lambda r: r.name)
        ],
        "totals": _totals(records),
        "checks": {
            "fusion_manifest": "verified" if any(r.manifest is not None for r in records) else "absent",
            "row_counts": "verified" if any(r.metadata is not None for r in records) else "absent",
        },
    }
    return json.dumps(doc, indent=2).encode()
