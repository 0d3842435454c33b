"""What finishing a run writes and checks: the cross-check of landed files against what Fusion said, the
run's totals, and `_manifest.json` (the landing's proof of completeness; its schema: docs/landing.md).
Runs.finish_if_complete decides when, and writes them in order (_SUCCESS last)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fusion_extract import __version__
from fusion_extract.chain.ledger.records import FileRecord, Member, Run
from fusion_extract.chain.transfer.layout import Layout
from fusion_extract.chain.transfer.manifest import ExtractMetadata, manifest_disagreements, row_disagreements
from fusion_extract.models import OutputFile

SCHEMA = 1  # of _manifest.json: a field's meaning never changes; new fields may come


@dataclass(frozen=True)
class Checks:
    """What the cross-check found: `problems` fail the run; `notes` are recorded and alerted."""

    problems: list[str]
    notes: list[str]


def cross_check(plan: list[OutputFile], records: list[FileRecord]) -> Checks:
    """Fusion's `.mf` manifest against the listing (the run's `plan`: a checksum that disagrees fails the
    run; a name on one side only is a note), the metadata's row counts against the landed files (they must
    agree), and no two files landing at one object path."""
    problems: list[str] = []
    notes: list[str] = []
    for record in records:
        if record.manifest is not None:
            found = manifest_disagreements(record.manifest, plan)
            problems.extend(f"{record.name}: {text}" for text in found.checksums)
            notes.extend(f"{record.name}: {text}" for text in found.names)
    for record in records:
        if record.metadata is not None:
            members = (m for r in records for m in r.members)  # read as they go: never all held at once
            problems.extend(row_disagreements(ExtractMetadata(**record.metadata), members))
    problems.extend(collisions(records))
    return Checks(problems, notes)


def collisions(records: list[FileRecord]) -> list[str]:
    """Object paths that two files of the run both landed at (identical bytes land silently twice)."""
    owners: dict[str, list[str]] = {}
    for record in records:
        paths = [m.path for m in record.members] + ([record.name] if record.manifest is not None else [])
        for path in paths:
            owners.setdefault(path, []).append(record.name)
    return [
        f"{path} is landed by both {' and '.join(names)}" for path, names in owners.items() if len(names) > 1
    ]


def totals(records: list[FileRecord]) -> dict[str, int]:
    """The run's counts, its members read one at a time (50,000 of them are never all objects at once)."""
    count = size = rows = 0
    for record in records:
        for member in record.members:
            count, size, rows = count + 1, size + member.size, rows + (member.rows or 0)
    return {"files": len(records), "members": count, "bytes": size, "rows": rows}


def manifest(run: Run, records: list[FileRecord], layout: Layout, notes: list[str]) -> bytes:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "product": "fusion-extract",
        "version": __version__,
        "run_id": run.run_id,
        "extract": run.extract,
        "mode": run.mode,
        "job_id": run.job_id,
        "job_status": run.status,  # WARNING: Fusion finished with warnings
        "job_completion": "assumed" if run.assumed_complete else "confirmed",
        "jobs_submitted": list(run.job_ids),
        "reland": run.reland,
        "window": {
            "started_at": run.created_at.isoformat(),
            "run_at_times": run.run_at_times.to_fusion() if run.run_at_times else None,
        },
        "landed_at": run.landed_at.isoformat() if run.landed_at else None,
        "files": [
            {
                "name": r.name,
                "size": r.size,
                "sha256": r.sha256,
                "members": _Each(
                    r.members,
                    lambda m: {
                        "path": m.path,
                        "object": layout.member(run, m.path),
                        "size": m.size,
                        "sha256": m.sha256,
                        "rows": m.rows,
                    },
                ),
            }
            for r in sorted(records, key=lambda r: r.name)
        ],
        "totals": totals(records),
        "checks": {
            "fusion_manifest": _manifest_check(records, notes),
            "row_counts": "verified" if any(r.metadata is not None for r in records) else "absent",
            "notes": notes,
        },
    }
    return _indented(doc)


class _Each(list[dict[str, Any]]):
    """A JSON array of `shown(item)` for each item, each made only as the encoder reaches it (the encoder
    takes any list; it asks its length, then iterates): 50,000 members' entries are never all held."""

    def __init__(self, items: Sequence[Member], shown: Callable[[Member], dict[str, Any]]) -> None:
        super().__init__()
        self._items, self._shown = items, shown

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(self._shown, self._items)


def _indented(doc: dict[str, Any]) -> bytes:
    """The document as indented JSON, written piece by piece into one buffer of bytes: json.dumps would
    first hold a list of every piece (an indented document is encoded in Python, a few pieces per value),
    six times the size of the text for a manifest of 50,000 members."""
    data = io.BytesIO()
    for piece in json.JSONEncoder(indent=2).iterencode(doc):
        data.write(piece.encode())
    return data.getvalue()


def _manifest_check(records: list[FileRecord], notes: list[str]) -> str:
    if not any(r.manifest is not None for r in records):
        return "absent"
    return "disagrees on names (see notes)" if notes else "verified"
