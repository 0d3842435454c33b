"""What Fusion says about its output: the `.mf` manifest and the `<view>_metadata.json` member.

The manifest format is documented (one line per ZIP: `<zip file name>;<docid>;<sha-256 hex>`), so its parser
is strict about those lines; it skips blank lines, `#` comments and `KEY=value` header lines (BICC manifests
begin with `PLV_KEY=...`). `manifest_disagreements` compares a manifest with the listing.

The metadata member's format is not documented by Oracle; we read the shape our emulator writes,
`{"extract", "view", "format", "files": [{"name", "rows"}], "totalRows"}`, and return None for any other
shape, so an unknown format skips the row cross-check instead of failing a good run.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fusion_extract.chain.ledger.records import Member
from fusion_extract.chain.transfer.kinds import FileKind, MemberKind, file_kind, member_kind
from fusion_extract.errors import IntegrityError
from fusion_extract.models import OutputFile

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_HEADER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*=[^;]*$")  # e.g. PLV_KEY=FUSION_10_0


@dataclass(frozen=True)
class ExtractMetadata:
    extract: str | None
    view: str | None
    format: str | None
    files: Mapping[str, int]  # data file name -> rows
    total_rows: int | None


@dataclass(frozen=True)
class ManifestDisagreements:
    """Where the manifest and the listing differ. `checksums`: fatal (a listed checksum disagrees);
    `names`: a file on one side only, to be recorded and alerted, not fatal."""

    checksums: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def fatal(self) -> bool:
        return bool(self.checksums)


def parse_manifest(text: str) -> dict[str, str]:
    """ZIP file name -> lower-case SHA-256 hex. Blank, comment (#) and KEY=value header lines are skipped;
    any other bad line is an IntegrityError."""
    checksums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or _HEADER.match(stripped):
            continue
        fields = [field.strip() for field in line.split(";")]
        if len(fields) != 3 or not fields[0] or not _SHA256.match(fields[2]):
            raise IntegrityError(f"manifest line {number} is not '<zip file name>;<docid>;<sha-256 hex>'")
        name, _docid, sha256 = fields
        if name in checksums:
            raise IntegrityError(f"manifest line {number} lists {name!r} a second time")
        checksums[name] = sha256.lower()
    return checksums


def manifest_disagreements(
    manifest: Mapping[str, str], listed: Iterable[OutputFile]
) -> ManifestDisagreements:
    """Compare a parsed manifest with the listed files (by the names as Fusion listed them, and their
    listed SHA-256). Listed `.mf` files are not expected in a manifest; a file listed without a checksum
    cannot disagree on one."""
    files = {file.raw_name: file for file in listed if file_kind(file.raw_name) is not FileKind.MANIFEST}
    checksums = tuple(
        f"{name!r}: the manifest says {sha256}, the listing says {files[name].sha256}"
        for name, sha256 in manifest.items()
        if name in files and files[name].sha256 is not None and files[name].sha256 != sha256
    )
    names = tuple(
        [f"{name!r} is in the manifest but not listed" for name in manifest if name not in files]
        + [f"{name!r} is listed but not in the manifest" for name in files if name not in manifest]
    )
    return ManifestDisagreements(checksums, names)


def parse_metadata(data: bytes | str) -> ExtractMetadata | None:
    """The metadata member, or None when it is not JSON of the shape we know."""
    try:
        document = json.loads(data)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        return None
    files: dict[str, int] = {}
    for entry in document["files"]:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("name"), str)
            or not _is_count(entry.get("rows"))
        ):
            return None
        files[entry["name"]] = entry["rows"]
    total = document.get("totalRows")
    if total is not None and not _is_count(total):
        return None
    return ExtractMetadata(
        extract=_text(document.get("extract")),
        view=_text(document.get("view")),
        format=_text(document.get("format")),
        files=files,
        total_rows=total,
    )


def row_disagreements(metadata: ExtractMetadata, members: Iterable[Member]) -> list[str]:
    """Where the members' row counts (all ZIPs of the run) disagree with the metadata; empty when they agree.

    A metadata file name matches a member by path, else by base name when that is unique. Members whose
    rows could not be counted (None) are not compared.
    """
    data_members = [m for m in members if _is_data(m.path)]
    by_path = {m.path: m for m in data_members}
    base_names = [posixpath.basename(m.path) for m in data_members]
    counts = Counter(base_names)  # counted once: 50,000 members are not 50,000 scans of the list
    by_base = {base: m for base, m in zip(base_names, data_members, strict=True) if counts[base] == 1}
    problems = []
    matched: set[str] = set()
    for name, rows in metadata.files.items():
        member = by_path.get(name) or by_base.get(name)
        if member is None:
            problems.append(f"metadata lists {name!r} ({rows} rows) but no such file was extracted")
            continue
        matched.add(member.path)
        if member.rows is not None and member.rows != rows:
            problems.append(f"{member.path!r}: metadata says {rows} rows, the file has {member.rows}")
    problems.extend(f"{path!r} is not listed in the metadata" for path in by_path if path not in matched)
    listed_total = sum(metadata.files.values())
    if metadata.total_rows is not None and metadata.total_rows != listed_total:
        problems.append(f"metadata totalRows is {metadata.total_rows}, its files add up to {listed_total}")
    return problems


def _is_data(path: str) -> bool:
    return member_kind(path) in (MemberKind.CSV, MemberKind.JSON)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
