"""What finishing a run writes and checks: the cross-check of landed files against what Fusion said, the
run's totals, and `_manifest.json` (the landing's proof of completeness; its schema is documented in README).
Runs.finish_if_complete decides when, and writes them in order (_SUCCESS last)."""

from __future__ import annotations

import json

from fusion_extract import __version__
from fusion_extract.chain.layout import Layout
from fusion_extract.chain.manifest import ExtractMetadata, row_disagreements
from fusion_extract.chain.records import FileRecord, Run


def cross_check(records: list[FileRecord]) -> list[str]:
    """Where the landed files disagree with Fusion's `.mf` manifest or its metadata row counts."""
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


def totals(records: list[FileRecord]) -> dict[str, int]:
    members = [m for r in records for m in r.members]
    return {
        "files": len(records),
        "members": len(members),
        "bytes": sum(m.size for m in members),
        "rows": sum(m.rows or 0 for m in members),
    }


def manifest(run: Run, records: list[FileRecord], layout: Layout) -> bytes:
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
        "totals": totals(records),
        "checks": {
            "fusion_manifest": "verified" if any(r.manifest is not None for r in records) else "absent",
            "row_counts": "verified" if any(r.metadata is not None for r in records) else "absent",
        },
    }
    return json.dumps(doc, indent=2).encode()
