"""The alerts topic as an e-mail subscriber sees it: each message its subject (the Notifications title)
and its body, in the order published. `make emulator` prints them, so every runbook entry can be rehearsed
from the alert as it would arrive."""

from __future__ import annotations

from tests.emulators.oci.notifications import NotificationsService

RULE = "-" * 78


class Mailbox:
    """The messages published to one topic since the last look, rendered as e-mails."""

    def __init__(self, ons: NotificationsService, topic_id: str) -> None:
        self.ons = ons
        self.topic_id = topic_id
        self.seen = 0  # messages of `ons.published` already looked at (all topics)

    def new_mail(self) -> list[str]:
        published = list(self.ons.published)  # appended under the service's lock; a copy is consistent
        fresh, self.seen = published[self.seen :], len(published)
        return [
            "\n".join(
                (
                    RULE,
                    f"Subject: {message.title or '(no title)'}",
                    f"Date: {message.published_at:%Y-%m-%d %H:%M:%S} UTC",
                    "",
                    message.body,
                    RULE,
                )
            )
            for message in fresh
            if message.topic_id == self.topic_id
        ]
