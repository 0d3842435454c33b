"""An unreadable ledger document, wherever it is met (the sweep, the CLI): moved aside, then alerted.

Moving it first makes the alert go once: whoever moves it tells of it; whoever comes second finds nothing.
"""

from __future__ import annotations

import logging

from fusion_extract.chain.ledger import Ledger, Unreadable
from fusion_extract.chain.runs import Runs
from fusion_extract.errors import FusionExtractError

log = logging.getLogger(__name__)


def set_aside(ledger: Ledger, runs: Runs, found: Unreadable) -> str:
    """`quarantined`, or `unreadable (why it could not be moved)`; it never raises."""
    try:
        moved = ledger.quarantine(found.name)
    except FusionExtractError as exc:
        log.error("unreadable ledger document could not be moved", extra={"document": found.name})
        return f"unreadable ({exc})"
    reason = f"{found.problem}; moved to {moved}"
    try:
        runs.notify("unreadable_document", document=found.name, reason=reason, **found.about)
    except FusionExtractError as exc:  # moved all the same: it blocks nothing any more
        log.error("unreadable document alert not sent", extra={"document": found.name, "problem": str(exc)})
    return "quarantined"
