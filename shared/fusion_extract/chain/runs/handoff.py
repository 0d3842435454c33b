"""Handing work on to the next invocation: poll, rerun and transfer messages (chain/messages.py)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from fusion_extract.chain import messages
from fusion_extract.ports import Publisher

log = logging.getLogger(__name__)

# Notifications accepts 60 messages a minute per topic: past this many files, files travel in batches
# and each transfer invocation hands the rest of its batch on.
FANOUT_MESSAGES = 50


@dataclass(frozen=True)
class Topics:
    poll: str
    transfer: str
    rerun: str


@dataclass(frozen=True)
class HandOff:
    publisher: Publisher
    topics: Topics

    def publish_poll(self, run_id: str, seq: int) -> None:
        self.publisher.publish(self.topics.poll, messages.poll_message(run_id, seq))

    def publish_rerun(self, run_id: str, attempt: int) -> None:
        self.publisher.publish(self.topics.rerun, messages.rerun_message(run_id, attempt))

    def publish_transfers(self, run_id: str, names: Sequence[str]) -> None:
        """One message per file; past FANOUT_MESSAGES files, FANOUT_MESSAGES batches of files, each within
        a message's limits. Files that fit in none stay PENDING: the sweep hands them out when due."""
        batches, left = messages.transfer_batches(run_id, list(names), FANOUT_MESSAGES)
        for batch in batches:
            self.publisher.publish(self.topics.transfer, batch)
        if left:
            log.info("files left for the sweep to hand out", extra={"files": len(left)})

    def publish_units(self, run_id: str, name: str, units: Sequence[int]) -> None:
        """One message per unit of an archive's members: each may run in an invocation of its own."""
        for unit in units:
            self.publisher.publish(self.topics.transfer, messages.unit_message(run_id, name, unit))

    def hand_on(self, run_id: str, names: Sequence[str]) -> None:
        """The rest of a batch, in one message, for the next transfer invocation."""
        self.publisher.publish(self.topics.transfer, messages.transfer_message(run_id, list(names)))
