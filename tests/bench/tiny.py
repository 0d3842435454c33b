"""Tiny members: one archive of many small members landed in pieces, its peak memory measured.

    .venv/bin/python -m tests.bench.tiny [--members 50000] [--budget-seconds 3]

The any-size piece (tests.bench.pieces) for one archive: every invocation of the transfer, one after
another, in one measured process; its peak RSS (VmHWM) bounds what any single invocation held. Prints the
record as JSON on the last line (and the piece's summary line on stderr).

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
import zipfile
from pathlib import Path

from tests.bench import pieces
from tests.bench.compare import Oci
from tests.bench.datagen import CACHE, Built, Spec
from tests.bench.servers import REPO, Child


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.tiny", description=__doc__)
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--budget-seconds", type=float, default=3.0)
    options = parser.parse_args()
    archive = tiny_archive(options.members)
    scratch = REPO / ".local" / "bench-work"
    scratch.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=scratch))
    oci = Oci(Child("tests.bench.servers", "oci", str(workdir)), workdir)
    try:
        settings = {"ZIP_MAX_ENTRIES": str(options.members + 1)}
        [record] = pieces.any_size([archive], options.budget_seconds, oci, _log, settings)
    finally:
        oci.child.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(record))
    if not record["landed_complete"]:
        sys.exit(1)


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
