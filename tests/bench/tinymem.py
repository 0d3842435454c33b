"""What the per-member work of one invocation peaks at, for an archive of many tiny members, each piece in a
fresh process (its VmHWM, and what it grew by from the moment before the piece began):

    .venv/bin/python -m tests.bench.tinymem [--members 50000]

- directory: the archive's central directory read and every rule checked (the invocation that plans does);
- unit directory: a quarter of it, one unit's run of records, read and checked against the plan (every
  unit invocation does);
- unit save: the archive's record as units now keep it (each unit's staged members in an object of its own,
  the record naming them: transfer/kept.py), read and written back (a unit's compare-and-swap);
- unit save inline: the same with every staged member held in the record, as records were written before;
- unit members: one unit's kept list of staged members read, verified and gone through (a promotion does);
- finish: the landed record read and the run's _manifest.json written.

The inputs (the archive, the two documents) are made first, in the parent, by the code under test; a
child reads them as bytes, so that making them is not counted. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from tests.bench.pipelines import peak_rss_mib

PIECES = ("directory", "unit_directory", "unit_save", "unit_save_inline", "unit_members", "finish")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def make_inputs(folder: Path, members: int) -> None:
    from fusion_extract.chain.ledger.codec import file_to_doc, staged_to_bytes
    from fusion_extract.chain.ledger.records import (
        FileRecord,
        FileState,
        KeptMembers,
        Member,
        StagedMember,
        Unit,
        UnitState,
    )
    from fusion_extract.chain.ledger.store import encode
    from fusion_extract.chain.transfer.zipdir import ZipLimits, directory_slice, read_directory
    from tests.clocks import EPOCH

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(members):
            archive.writestr(f"TINY_{index}.csv", f"ID,AMOUNT\n{index},{index % 97}.50\n")
    (folder / "archive.zip").write_bytes(buffer.getvalue())
    data = buffer.getvalue()
    entries = read_directory(lambda s, e: iter([data[s:e]]), len(data), ZipLimits(10**6, 2**40, 200))
    place = directory_slice(entries[: members // 4])
    assert place is not None
    (folder / "slice.json").write_text(json.dumps({**vars(place), "count": members // 4}))
    del entries
    landed = tuple(
        Member(f"TINY_{i}.csv", 20, hashlib.sha256(b"%d" % i).hexdigest(), 1) for i in range(members)
    )
    staged = tuple(StagedMember(m, f"{i:032x}", "1B2M2Y8AsgTpgAmY7PhCfg==") for i, m in enumerate(landed))
    quarter = members // 4
    units = tuple(
        Unit(first, quarter, UnitState.DONE, staged=staged[first : first + quarter])
        for first in range(0, members, quarter)
    )
    unpacking = FileRecord("r1", "a_1.zip", FileState.UNPACKING, EPOCH, units=units)
    (folder / "inline.json").write_bytes(encode(file_to_doc(unpacking)))
    kept = staged_to_bytes(staged[:quarter])
    (folder / "kept").write_bytes(kept)
    reference = KeptMembers(1, quarter, 20 * quarter, hashlib.sha256(kept).hexdigest())
    (folder / "reference.json").write_text(json.dumps(vars(reference)))
    by_reference = tuple(unit.but(staged=(), kept=reference) for unit in units)
    (folder / "unpacking.json").write_bytes(encode(file_to_doc(unpacking.but(units=by_reference))))
    done = FileRecord("r1", "a_1.zip", FileState.LANDED, EPOCH, sha256="a" * 64, size=9, members=landed)
    (folder / "landed.json").write_bytes(encode(file_to_doc(done)))


def piece(name: str, folder: Path) -> dict[str, Any]:
    from fusion_extract.chain.ledger.codec import file_from_doc, file_to_doc
    from fusion_extract.chain.ledger.records import DirectorySlice, KeptMembers, Run, RunState, Unit
    from fusion_extract.chain.ledger.store import encode
    from fusion_extract.chain.transfer import finish
    from fusion_extract.chain.transfer.kept import staged
    from fusion_extract.chain.transfer.layout import Layout
    from fusion_extract.chain.transfer.zipdir import ZipLimits, read_directory, read_slice
    from tests.clocks import EPOCH

    inputs = {path.name: path.read_bytes() for path in folder.iterdir()}
    before = _rss_mib()
    if name == "directory":
        data = inputs["archive.zip"]
        entries = read_directory(lambda s, e: iter([data[s:e]]), len(data), ZipLimits(10**6, 2**40, 200))
        count = len(entries)
    elif name == "unit_directory":
        data, place = inputs["archive.zip"], json.loads(inputs["slice.json"])
        unit = place.pop("count")
        read = lambda s, e: iter([data[s:e]])  # noqa: E731
        entries = read_slice(read, len(data), DirectorySlice(**place), 0, unit, ZipLimits(10**6, 2**40, 200))
        count = len(entries)
    elif name in ("unit_save", "unit_save_inline"):
        record = file_from_doc(json.loads(inputs["unpacking.json" if name == "unit_save" else "inline.json"]))
        units = list(record.units)
        units[0] = units[0].but(promoted=1)
        count = len(encode(file_to_doc(record.but(units=tuple(units)))))
    elif name == "unit_members":
        reference = KeptMembers(**json.loads(inputs["reference.json"]))
        unit = Unit(0, reference.count, kept=reference)
        members = staged(_Store(inputs["kept"]), "f/", 0, unit)  # type: ignore[arg-type]
        count = sum(item.member.size for item in members)
    else:
        record = file_from_doc(json.loads(inputs["landed.json"]))
        run = Run("r1", "S", "full", RunState.LANDED, EPOCH, EPOCH, EPOCH, job_id="1", landed_at=EPOCH)
        count = len(finish.manifest(run, [record], Layout("landing", "{extract}/{job_id}", "_staging"), []))
    peak = peak_rss_mib()
    return {
        "piece": name,
        "result": count,
        "peak_rss_mib": round(peak, 1),
        "grew_mib": round(peak - before, 1),
    }


class _Store:
    """The one object a unit's kept list is read from (ObjectStore.get_bytes)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def get_bytes(self, name: str) -> tuple[bytes, str]:
        return self.data, "etag"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.tinymem", description=__doc__)
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--piece", choices=PIECES, help=argparse.SUPPRESS)  # the child's part
    parser.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.piece:
        print(json.dumps(piece(options.piece, options.inputs)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        make_inputs(folder, options.members)
        results = []
        for name in PIECES:
            command = [sys.executable, "-m", "tests.bench.tinymem", "--piece", name, "--inputs", str(folder)]
            done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(json.dumps({"members": options.members, "pieces": results}, indent=1))


if __name__ == "__main__":
    main()
