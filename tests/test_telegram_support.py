"""Customers write to the bot, staff answer from the support chat: end to end through the real
python-telegram-bot Application, over HTTP to /telegram/webhook and by long polling, against the
fake Bot API, on both databases."""

from __future__ import annotations

from crm_core.models import Direction, Interaction, Ticket, TicketMessage, TicketStatus
from tests.support import rows
from tests.telegram_rig import SUPPORT_CHAT


def test_customer_message_becomes_a_ticket_relayed_and_answered(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    sam = rig.staff(900, "Sam Support")
    carla = rig.customer(555, "Carla Customer")

    rig.send(tg.private_text(carla, "My printer jams <again> & again"))

    [ticket] = rows(rig.app, Ticket)
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
    assert len(rows(rig.app, Ticket)) == 1
    second_relay = tg.last_sent(SUPPORT_CHAT)
    assert "It is the tray 2" in second_relay.text and "follow-up" in second_relay.text

    # Sam replies to the relayed message in the support chat: Carla gets the answer.
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "Open tray 2 & remove the <jammed> sheet", reply_to=tg.message(relay)))
    answer = tg.last_sent(555)
    assert answer.text == "Open tray 2 &amp; remove the &lt;jammed&gt; sheet"
    assert "Sent to Carla Customer" in tg.last_sent(SUPPORT_CHAT).text

    thread = rows(rig.app, TicketMessage, TicketMessage.ticket_id == ticket.id)
    assert [(m.direction, m.text) for m in thread] == [
        (Direction.INBOUND, "My printer jams <again> & again"),
        (Direction.INBOUND, "It is the tray 2"),
        (Direction.OUTBOUND, "Open tray 2 & remove the <jammed> sheet"),
    ]
    assert thread[2].author.name == "Sam Support"
    assert thread[2].external_message_id == str(tg.message(answer)["message_id"])
    assert thread[2].delivery_error is None
    [ticket] = rows(rig.app, Ticket)
    assert ticket.first_responded_at is not None
    # Every message both ways is an interaction on the customer.
    logged = rows(rig.app, Interaction, Interaction.customer_id == ticket.customer_id)
    assert [(i.direction, i.channel, i.ticket_id) for i in logged] == [
        (Direction.INBOUND, "telegram", ticket.id),
        (Direction.INBOUND, "telegram", ticket.id),
        (Direction.OUTBOUND, "telegram", ticket.id),
    ]

    # Sam reads the thread in Telegram: both sides are there.
    rig.send(tg.group_text(SUPPORT_CHAT, sam, f"/ticket {ticket.id}"))
    shown = tg.last_sent(SUPPORT_CHAT)
    assert f"Ticket #{ticket.id}: My printer jams &lt;again&gt; &amp; again" in shown.text
    assert "Conversation (3)" in shown.text and "Sam Support (answer)" in shown.text


def test_polling_takes_customer_messages_and_staff_answers(polling_rig):
    rig, tg = polling_rig, polling_rig.fake
    sam = rig.staff(900, "Sam Support")
    carla = rig.customer(555, "Carla Customer")
    # Polling starts by making sure no webhook is set, and registers the command menu.
    assert tg.calls_of("deleteWebhook") and tg.commands

    tg.queue_update(tg.private_text(carla, "Where is my order 1234?"))
    assert tg.wait_for(lambda: tg.sent(SUPPORT_CHAT)), "the message was never relayed"
    relay = tg.last_sent(SUPPORT_CHAT)
    [ticket] = rows(rig.app, Ticket)
    assert f"Ticket #{ticket.id}" in relay.text and "Where is my order 1234?" in relay.text

    tg.queue_update(tg.group_text(SUPPORT_CHAT, sam, "It ships today.", reply_to=tg.message(relay)))
    assert tg.wait_for(lambda: any(c.text == "It ships today." for c in tg.sent(555))), "no answer reached Carla"
    assert tg.wait_for(lambda: len(tg.sent(SUPPORT_CHAT)) == 2)
    assert "Sent to Carla Customer" in tg.last_sent(SUPPORT_CHAT).text
    thread = rows(rig.app, TicketMessage, TicketMessage.ticket_id == ticket.id)
    assert [m.direction for m in thread] == [Direction.INBOUND, Direction.OUTBOUND]


def test_attachments_are_described_and_undeliverable_answers_are_flagged(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    sam = rig.staff(900, "Sam Support")
    carla = rig.customer(555, "Carla Customer")
    rig.send(tg.private_photo(carla, caption="the error screen"))
    relay = tg.last_sent(SUPPORT_CHAT)
    assert "[photo] the error screen" in relay.text

    tg.blocked_chats.add(555)
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "Please restart it", reply_to=tg.message(relay)))
    # Staff read why in their words; the record keeps the reason's code and Telegram's own words.
    told = tg.last_sent(SUPPORT_CHAT).text
    assert "Not delivered to Carla Customer: the customer blocked us or the chat is gone" in told
    assert "Forbidden" not in told
    answer = rows(rig.app, TicketMessage, TicketMessage.direction == Direction.OUTBOUND)[0]
    assert answer.text == "Please restart it"
    assert answer.delivery_error == "unreachable: Forbidden: bot was blocked by the user"
    # The thread says so, and the first response still counts (the answer was given).
    rig.send(tg.group_text(SUPPORT_CHAT, sam, f"/ticket {answer.ticket_id}"))
    assert "NOT DELIVERED: the customer blocked us or the chat is gone" in tg.last_sent(SUPPORT_CHAT).text


def test_group_chatter_and_replies_to_other_messages_are_not_tickets(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    sam = rig.staff(900, "Sam Support")
    ola = rig.staff(901, "Ola Other")
    question = tg.group_text(SUPPORT_CHAT, ola, "lunch?")
    rig.send(question)
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "yes", reply_to=question["message"]))
    # A stranger talking in some group is not a customer writing to us either.
    rig.send(tg.group_text(-100999, rig.customer(777, "Random Person"), "hello bot"))
    assert rows(rig.app, Ticket) == [] and rows(rig.app, TicketMessage) == []
    assert tg.sent() == []


def test_customers_cannot_use_staff_commands(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    from crm_core.services import customers

    with rig.app.uow() as uow:
        customers.create_customer(uow, "Acme Corp", {"email": "buy@acme.example"})
    carla = rig.customer(555, "Carla Customer")
    rig.send(tg.private_text(carla, "/customer acme"))
    hint = tg.last_sent(555).text
    assert "Just write your question here" in hint and "Acme" not in hint
    rig.send(tg.private_text(carla, "/help"))
    assert "Hello Carla!" in tg.last_sent(555).text


def test_start_offers_the_phone_and_sharing_it_links_the_chat_to_the_customer(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    from crm_core.models import Customer, CustomerChat
    from crm_core.services import customers

    with rig.app.uow() as uow:
        known = customers.create_customer(uow, "Carla Castillo", {"phone": "+49 30 1234 5678"}).id
    carla = rig.customer(555, "Carla C")
    rig.send(tg.private_text(carla, "/start"))
    greeting = tg.last_sent(555)
    assert "Hello Carla!" in greeting.text
    assert greeting["reply_markup"]["keyboard"] == [[{"text": "Share my phone number", "request_contact": True}]]

    # She writes before sharing: a placeholder customer gets the ticket for now.
    rig.send(tg.private_text(carla, "Is my invoice ready?"))
    [ticket] = rows(rig.app, Ticket)
    placeholder = ticket.customer_id
    assert placeholder != known

    # Someone else's number is refused; her own links the chat to her record (another spelling of it).
    rig.send(tg.contact(carla, "+49 30 1234 5678", contact_user_id=999))
    assert "share your own phone number" in tg.last_sent(555).text
    rig.send(tg.contact(carla, "030 12345678"))
    linked = tg.last_sent(555)
    assert "Carla Castillo: we found your customer record" in linked.text
    assert linked["reply_markup"] == {"remove_keyboard": True}
    [chat] = rows(rig.app, CustomerChat)
    assert chat.customer_id == known and not chat.placeholder
    # The ticket and its interactions moved to her record; the empty placeholder is gone.
    [ticket] = rows(rig.app, Ticket)
    assert ticket.customer_id == known
    assert {i.customer_id for i in rows(rig.app, Interaction)} == {known}
    assert [c.id for c in rows(rig.app, Customer)] == [known]
    # Her next message lands on her record.
    rig.send(tg.private_text(carla, "Thanks!"))
    assert rows(rig.app, TicketMessage)[-1].ticket_id == ticket.id


def test_unknown_phone_number_is_kept_on_the_new_customer(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    from crm_core.models import Customer

    dan = rig.customer(556, "Dan New")
    rig.send(tg.contact(dan, "+44 20 7946 0958"))
    assert "we saved your phone number" in tg.last_sent(556).text
    [customer] = rows(rig.app, Customer)
    assert (customer.name, customer.phone) == ("Dan New", "+44 20 7946 0958")


def _deliver_outbox(app, kind: str) -> list[str]:
    """Hand the outbox rows of ``kind`` to the TelegramSender, as the worker's outbox sender does."""
    import asyncio

    from bot.delivery import OutboundMessage
    from bot.messages import Reply
    from bot.platforms import senders
    from crm_core.models import OutboxMessage

    queued = rows(app, OutboxMessage, OutboxMessage.kind == kind)
    sender = senders(app)["telegram"]

    async def deliver() -> list[str]:
        try:
            return [
                await sender.send(OutboundMessage(row.conversation, reply=Reply.from_dict(row.payload["reply"])))
                for row in queued
                if row.platform == "telegram"
            ]
        finally:
            await sender.close()

    return asyncio.run(deliver())


def test_resolving_asks_the_customer_for_a_rating_and_one_answer_counts(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    from crm_core.models import OutboxMessage

    sam = rig.staff(900, "Sam Support")
    carla = rig.customer(555, "Carla Customer")
    rig.send(tg.private_text(carla, "The app crashes on start"))
    [ticket] = rows(rig.app, Ticket)

    # Sam opens the ticket from the relayed message's button and resolves it with the card's button.
    rig.send(tg.press(sam, tg.last_sent(SUPPORT_CHAT), "Open ticket"))
    card = tg.last_sent(SUPPORT_CHAT)
    assert f"Ticket #{ticket.id}: The app crashes on start" in card.text
    assert {"Assign to me", "Resolve", "Add note", "Open customer"} == {b["text"] for b in card.buttons}
    rig.send(tg.press(sam, card, "Resolve"))
    assert "Status: open → resolved." in tg.last_sent(SUPPORT_CHAT).text
    assert len(tg.calls_of("answerCallbackQuery")) == 2

    [request] = rows(rig.app, OutboxMessage, OutboxMessage.kind == "rating_request")
    assert (request.platform, request.conversation, request.customer_id) == ("telegram", "555", ticket.customer_id)
    assert _deliver_outbox(rig.app, "rating_request")
    ask = tg.last_sent(555)
    assert "How did we do?" in ask.text
    assert [b["text"] for b in ask.buttons] == ["1 ★", "2 ★", "3 ★", "4 ★", "5 ★"]

    rig.send(tg.press(carla, ask, "4 ★"))
    assert f"You rated request #{ticket.id} ★★★★☆ 4/5" in tg.last_sent(555).text
    rig.send(tg.press(carla, ask, "5 ★"))
    assert f"You already rated request #{ticket.id} (★★★★☆ 4/5)" in tg.last_sent(555).text
    # Someone else rating it (typing what the button carries) is refused.
    mallory = rig.customer(666, "Mallory")
    rig.send(tg.private_text(mallory, f"/rate {ticket.id} 1"))
    assert "You can only rate your own requests." in tg.last_sent(666).text
    [ticket] = rows(rig.app, Ticket)
    assert ticket.rating == 4 and ticket.rated_at is not None

    # The rating shows on the customer card.
    rig.send(tg.group_text(SUPPORT_CHAT, sam, f"/customer #{ticket.customer_id}"))
    assert "Satisfaction:</b> 4.0/5 from 1 rating" in tg.last_sent(SUPPORT_CHAT).text


def test_only_linked_staff_can_answer_customers(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    carla = rig.customer(555, "Carla Customer")
    rig.send(tg.private_text(carla, "Hello?"))
    relay = tg.last_sent(SUPPORT_CHAT)
    intern = rig.customer(333, "Ivan Unlinked")  # in the group, but not linked to a CRM user
    rig.send(tg.group_text(SUPPORT_CHAT, intern, "I can answer that!", reply_to=tg.message(relay)))
    assert len(tg.sent(555)) == 1  # only the acknowledgement
    assert [m.direction for m in rows(rig.app, TicketMessage)] == [Direction.INBOUND]
