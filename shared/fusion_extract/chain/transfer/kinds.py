"""What a name says a file is, decided here alone: by how the name ends, in any case (but for Fusion's
metadata member, whose name it writes exactly).

An output file Fusion lists is an ARCHIVE (a ZIP: its members land, not the file itself), Fusion's
MANIFEST (`.mf`: parsed, and checked against the listing), or PLAIN (landed as it is, under its own name).
A member of an archive is CSV (its rows counted by newlines), JSON, Fusion's METADATA (`<view>_metadata.json`:
the row counts of the other members), or OTHER.
"""

from __future__ import annotations

import enum


class FileKind(enum.Enum):
    ARCHIVE = "archive"
    MANIFEST = "manifest"
    PLAIN = "plain"


class MemberKind(enum.Enum):
    CSV = "csv"
    JSON = "json"
    METADATA = "metadata"
    OTHER = "other"


def file_kind(name: str) -> FileKind:
    lowered = name.lower()
    if lowered.endswith(".zip"):
        return FileKind.ARCHIVE
    if lowered.endswith(".mf"):
        return FileKind.MANIFEST
    return FileKind.PLAIN


def member_kind(path: str) -> MemberKind:
    lowered = path.lower()
    if path.endswith("_metadata.json"):
        return MemberKind.METADATA
    if lowered.endswith(".csv"):
        return MemberKind.CSV
    if lowered.endswith(".json"):
        return MemberKind.JSON
    return MemberKind.OTHER


def is_archive(name: str) -> bool:
    """An output file whose members are landed (a ZIP); any other is landed as it is, under its own name."""
    return file_kind(name) is FileKind.ARCHIVE
