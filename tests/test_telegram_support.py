"""Customers write to the bot, staff answer from the support chat: end to end through the real
python-telegram-bot Application, over HTTP to /telegram/webhook and by long polling, against the
fake Bot API, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from crm_core.models import Direction, Interaction, Ticket, TicketMessage, TicketStatus

from tests.telegram_rig import SUPPORT_CHAT, fake_telegram, polling_rig, webhook_rig  # noqa: F401 - fixtures


def _rows(app, model, *where):
    with app.uow() as uow:
        return uow.session.scalars(sa.select(model).where(*where).order_by(model.id)).all()


def test_customer_message_becomes_a_ticket_relayed_and_answered(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    sam = rig.staff(900, "Sam Support")
    carla = rig.customer(555, "Carla Customer")

    rig.send(tg.private_text(carla, "My printer jams <again> & again"))

    [ticket] = _rows(rig.app, Ticket)
    assert ticket.status is TicketStatus.OPEN and ticket.channel == "telegram"
    assert ticket.subject == "My printer jams <again> & again"
    assert ticket.customer.name == "Carla Customer"
    ack = tg.last_sent(555)
    assert f"request number is #{ticket.id}" in ack.text
    relay = tg.last_sent(SUPPORT_CHAT)
    assert f"Ticket #{ticket.id}" in relay.text
    # The customer's words are escaped for Telegram HTML.
    assert "My printer jams &lt;again&gt; &amp; again" in relay.text
    assert relay["parse_mode"] == "HTML"
    assert [b["text"] for b in relay.buttons] == ["Assign to me", "Open ticket"]

    # A second message goes into the same open ticket and is relayed too.
    rig.send(tg.private_text(carla, "It is the tray 2"))
    assert len(_rows(rig.app, Ticket)) == 1
    second_relay = tg.last_sent(SUPPORT_CHAT)
    assert "It is the tray 2" in second_relay.text and "follow-up" in second_relay.text

    # Sam replies to the relayed message in the support chat: Carla gets the answer.
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "Open tray 2 & remove the <jammed> sheet", reply_to=tg.message(relay)))
    answer = tg.last_sent(555)
    assert answer.text == "Open tray 2 &amp; remove the &lt;jammed&gt; sheet"
    assert "Sent to Carla Customer" in tg.last_sent(SUPPORT_CHAT).text

    thread = _rows(rig.app, TicketMessage, TicketMessage.ticket_id == ticket.id)
    assert [(m.direction, m.text) for m in thread] == [
        (Direction.INBOUND, "My printer jams <again> & again"),
        (Direction.INBOUND, "It is the tray 2"),
        (Direction.OUTBOUND, "Open tray 2 & remove the <jammed> sheet"),
    ]
    assert thread[2].author.name == "Sam Support"
    assert thread[2].external_message_id == str(tg.message(answer)["message_id"])
    assert thread[2].delivery_error is None
    [ticket] = _rows(rig.app, Ticket)
    assert ticket.first_responded_at is not None
    # Every message both ways is an interaction on the customer.
    logged = _rows(rig.app, Interaction, Interaction.customer_id == ticket.customer_id)
    assert [(i.direction, i.channel, i.ticket_id) for i in logged] == [
        (Direction.INBOUND, "telegram", ticket.id), (Direction.INBOUND, "telegram", ticket.id),
        (Direction.OUTBOUND, "telegram", ticket.id),
    ]

    # Sam reads the thread in Telegram: both sides are there.
    rig.send(tg.group_text(SUPPORT_CHAT, sam, f"/ticket {ticket.id}"))
    shown = tg.last_sent(SUPPORT_CHAT)
    assert f"Ticket #{ticket.id}: My printer jams &lt;again&gt; &amp; again" in shown.text
    assert "Conversation (3)" in shown.text and "Sam Support (answer)" in shown.text
