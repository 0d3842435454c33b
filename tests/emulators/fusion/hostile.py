"""Archive entries that a safe unpacker must refuse (docs/security.md), one per Hostile kind."""

from __future__ import annotations

from collections.abc import Iterator

from tests.emulators.fusion.archive import Member
from tests.emulators.fusion.scenario import Hostile

PAYLOAD = b"ID\n666\n"
ZEROS = bytes(1024 * 1024)


def hostile_members(kind: Hostile, data_member: str, bomb_bytes: int) -> list[Member]:
    """Entries to add to an archive whose data member is named `data_member`."""
    escape = f"escaped_{data_member}"
    named = {
        Hostile.ZIP_SLIP: f"../{escape}",
        Hostile.ABSOLUTE_PATH: f"/tmp/{escape}",
        Hostile.BACKSLASH: f"..\\{escape}",
        Hostile.DRIVE_LETTER: f"C:/{escape}",
        Hostile.DUPLICATE_NAMES: data_member,
    }
    if kind in named:
        return [Member(named[kind], _payload)]
    if kind is Hostile.SYMLINK:
        return [Member(f"link_{data_member}", lambda: [b"/etc/passwd"], symlink=True)]
    if kind is Hostile.ENCRYPTED:
        return [Member(f"secret_{data_member}", _payload, encrypted_flag=True)]
    return [Member(f"bomb_{data_member}", lambda: _zeros(bomb_bytes), size_hint=bomb_bytes)]


def _payload() -> list[bytes]:
    return [PAYLOAD]


def _zeros(count: int) -> Iterator[bytes]:
    for start in range(0, count, len(ZEROS)):
        yield ZEROS[: min(len(ZEROS), count - start)]
