"""The e-mails `make emulator` prints: one per alert, subject and body, other topics left out."""

from __future__ import annotations

from fusion_extract.chain import alerts
from fusion_extract.chain.messages import encode
from tests.emulators.mailbox import Mailbox
from tests.emulators.oci.functions import FunctionsService
from tests.emulators.oci.notifications import NotificationsService


def test_mailbox_renders_each_new_alert_as_an_email_once() -> None:
    # Given the alerts topic and the poll topic, and an alert published as the chain publishes it
    with NotificationsService(FunctionsService()) as ons:
        alerts_topic, poll_topic = ons.create_topic("alerts"), ons.create_topic("poll")
        mailbox = Mailbox(ons, alerts_topic)
        alert = encode("alert", event="failed", run_id="20261129T020000Z-1a2b", extract="Sales", mode="full")
        ons.publish(alerts_topic, alerts.body(alert), alerts.title(alert))
        ons.publish(poll_topic, '{"kind": "poll"}')

        # When the mailbox is read
        (mail,) = mailbox.new_mail()

        # Then the alert reads as an e-mail: its title is the subject, its advice in the body
        assert "Subject: FAILED Sales 20261129T020000Z-1a2b" in mail
        assert "fusion-extract rerun 20261129T020000Z-1a2b" in mail
        # And it is not shown twice, nor the poll topic's message
        assert mailbox.new_mail() == []
