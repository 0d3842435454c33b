"""An unreadable ledger document, wherever it is met (the sweep, the CLI): moved aside, then alerted.

Moving it first makes the alert go once: whoever moves it tells of it; whoever comes second finds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fusion_extract import logging as jsonlog
from fusion_extract.chain import alerts
from fusion_extract.chain.ledger.store import Ledger, Unreadable
from fusion_extract.errors import FusionExtractError

log = logging.getLogger(__name__)


def set_aside(
    ledger: Ledger, notify: Callable[..., Any], found: Unreadable, bucket: str, namespace: str | None
) -> str:
    """`quarantined`, or `unreadable (why it could not be moved)`; it never raises. The alert says where
    the document went (bucket, namespace, name: an `oci os object get` away) and what it still tells."""
    with jsonlog.bind(**found.about):  # its lines name the run, when the index said whose it was
        return _set_aside(ledger, notify, found, bucket, namespace)


def _set_aside(
    ledger: Ledger, notify: Callable[..., Any], found: Unreadable, bucket: str, namespace: str | None
) -> str:
    try:
        moved = ledger.quarantine(found.name)
    except FusionExtractError as exc:
        log.error("unreadable ledger document could not be moved", extra={"document": found.name})
        return f"unreadable ({exc})"
    reason = f"{found.problem}; moved to {moved}"
    about = {**alerts.about_document(found.name, _content(ledger, moved)), **found.about}
    where = {"quarantined": moved, "bucket": bucket, "namespace": namespace}
    try:
        notify("unreadable_document", document=found.name, reason=reason, **where, **about)
    except FusionExtractError as exc:  # moved all the same: it blocks nothing any more
        log.error("unreadable document alert not sent", extra={"document": found.name, "problem": str(exc)})
    return "quarantined"


def _content(ledger: Ledger, name: str) -> bytes | None:
    """A quarantined document's bytes, for what they still say (its run, extract, job)."""
    try:
        return ledger.store.get_bytes(name)[0]
    except FusionExtractError:
        return None
