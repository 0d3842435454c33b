"""A unit's staged members kept in an object of the unit's own, not in its file's record.

The record of an archive is rewritten (compare-and-swap) by every unit at each claim, renewal, pause and
promotion; were the 50,000 members of a tiny-member archive in it, every unit would read and write them
all, several times per invocation. Instead each unit's invocation writes its list once, when it saves
(create-only, under a name of its claim: layout.kept_members), and the record keeps its count and the
SHA-256 of its bytes (records.KeptMembers). A list is used only if it is that very object: another claim's,
another attempt's, or one changed since, is an IntegrityError. The invocation that wrote a list takes it from
memory (`Written`) rather than reading it back: the object is create-only, so it holds those very bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from fusion_extract.chain.ledger.codec import staged_from_bytes, staged_to_bytes
from fusion_extract.chain.ledger.records import KeptMembers, StagedMember, Unit
from fusion_extract.chain.transfer.layout import kept_members
from fusion_extract.errors import ConflictError, IntegrityError
from fusion_extract.ports import ObjectStore

# The lists an invocation kept, by object name: what its record then names, and the members themselves.
Written = dict[str, tuple[KeptMembers, Sequence[StagedMember]]]


def keep(store: ObjectStore, folder: str, index: int, unit: Unit, written: Written | None = None) -> Unit:
    """The unit with its staged members written to its claim's object and referred to (`kept`); noted in
    `written`, if given."""
    data = staged_to_bytes(unit.staged)
    size = sum(staged.member.size for staged in unit.staged)
    kept = KeptMembers(unit.claims, len(unit.staged), size, hashlib.sha256(data).hexdigest())
    name = kept_members(folder, index, unit.claims)
    try:
        store.put_bytes(name, data, if_none_match=True)
    except ConflictError:  # written already: by this claim, its answer lost (else the read refuses it)
        _read(store, name, kept)
    if written is not None:
        written[name] = (kept, unit.staged)
    return unit.but(staged=(), kept=kept)


def staged(
    store: ObjectStore, folder: str, index: int, unit: Unit, written: Written | None = None
) -> Sequence[StagedMember]:
    """The unit's staged members: held in its record (records written before `kept`), taken from `written`
    when this invocation wrote the very list its record names, else read from the object, verified."""
    if unit.kept is None:
        return unit.staged
    name = kept_members(folder, index, unit.kept.claim)
    kept, members = (written or {}).get(name, (None, ()))
    if kept == unit.kept:
        return members
    return _read(store, name, unit.kept)


def _read(store: ObjectStore, name: str, kept: KeptMembers) -> Sequence[StagedMember]:
    data, _ = store.get_bytes(name)
    if hashlib.sha256(data).hexdigest() != kept.sha256:
        raise IntegrityError(f"{name}: the unit's staged members are not those its record names")
    return staged_from_bytes(data, name)
