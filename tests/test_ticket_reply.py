"""/ticket reply <id> <text>: staff answer a ticket's customer from the console (or Slack, or a Telegram
DM) exactly as a reply in the Telegram staff group does: a ticket message by the staff member, queued
to the customer's chat through the outbox and delivered by the worker's sender, with the delivery
notice back where the command was given; refused with nothing written when the customer has no chat
we can write to. On both databases."""

from __future__ import annotations

import pytest

from bot.adapters.telegram.sender import TelegramSender
from bot.adapters.telegram.settings import TelegramSettings
from bot.dispatch import AlreadyHandled
from bot.interactive import AfterSendRecorder
from bot.messages import Request
from bot.outbox_sender import OutboxSender, SenderSettings
from bot.rate_limit import PlatformLimits, Rate
from crm_core import outbox
from crm_core.models import Direction, OutboxMessage, OutboxStatus, Role, Ticket, TicketMessage, TicketStatus
from crm_core.services import customers, support_inbox, tickets
from crm_core.services.users import PlatformId
from tests.fakes.worker import WorkerThread, wait_until
from tests.support import TEST_SECRET_KEY, rows, table_counts

FAST = PlatformLimits(overall=Rate(1000, 1), per_chat=Rate(200, 1))
CARLA = "555"


@pytest.fixture
def settings(database_url):
    from bot.settings import Settings

    # Long enough input for an answer over tickets.MAX_MESSAGE to reach the service's own refusal.
    return Settings(database_url=database_url, secret_key=TEST_SECRET_KEY, max_input_chars=3 * tickets.MAX_MESSAGE)


def _carla_wrote(app) -> int:
    """Carla writes to the bot on Telegram: ticket #1, and a chat we can answer her in."""
    with app.uow() as uow:
        wrote = support_inbox.customer_wrote(uow, PlatformId("telegram", CARLA), CARLA, "Carla Customer", "Help!")
        return wrote.ticket_id


def _answers(app) -> list[TicketMessage]:
    return rows(app, TicketMessage, TicketMessage.direction == Direction.OUTBOUND)


def test_a_console_reply_is_queued_to_the_customers_telegram_chat_and_delivered(app, chat, fake_telegram):
    ticket_id = _carla_wrote(app)
    sam = chat.user("Sam Support", Role.SUPPORT)

    said = chat.say(sam, f"/ticket reply {ticket_id} Open tray 2 & remove the <jammed> sheet")
    assert said.reply.text.startswith("Sent to Carla Customer on Telegram (queued")

    [answer] = _answers(app)
    assert (answer.author.name, answer.channel, answer.text) == (
        "Sam Support",
        "telegram",
        "Open tray 2 & remove the <jammed> sheet",
    )
    [ticket] = rows(app, Ticket)
    assert ticket.first_responded_at is not None and ticket.status is TicketStatus.OPEN
    [row] = rows(app, OutboxMessage)
    # The same row a reply in the staff group queues: key, lane and the recorder of its delivery.
    assert (row.platform, row.conversation, row.idempotency_key) == (
        "telegram",
        CARLA,
        f"ticket-message:{answer.id}:answer",
    )
    assert row.priority == outbox.INTERACTIVE and row.after["kind"] == "support.answer"
    assert row.after["notify"]["conversation"] == sam.conversation

    telegram = TelegramSender(
        TelegramSettings(token=fake_telegram.token, api_url=fake_telegram.api_url), app.session_factory
    )
    sender = OutboxSender(
        app.engine,
        app.session_factory,
        {"telegram": telegram},
        SenderSettings(limits={"telegram": FAST}, poll_seconds=0.05),
        after=AfterSendRecorder(app.session_factory, app.router.recorder),
    )
    with WorkerThread([sender]):
        assert wait_until(lambda: len(rows(app, OutboxMessage)) == 2)
    delivered = fake_telegram.last_sent(int(CARLA))
    assert delivered.text == "Open tray 2 &amp; remove the &lt;jammed&gt; sheet"
    [answer] = _answers(app)
    assert answer.external_message_id == str(fake_telegram.message(delivered)["message_id"])
    # The "Sent to …" notice waits for the console's sender, in Sam's conversation.
    sent, notice = rows(app, OutboxMessage)
    assert sent.status is OutboxStatus.SENT
    assert (notice.platform, notice.conversation) == ("console", sam.conversation)
    assert "Sent to Carla Customer (ticket #1)" in notice.payload["reply"]["text"]


def test_a_redelivered_command_queues_nothing_twice(app, chat):
    ticket_id = _carla_wrote(app)
    sam = chat.user("Sam Support", Role.SUPPORT)
    request = Request(origin=sam, text=f"/ticket reply {ticket_id} Hello", inbox_key="evt-1")
    app.dispatcher.handle(request)
    with pytest.raises(AlreadyHandled):
        app.dispatcher.handle(request)
    assert len(_answers(app)) == 1 and len(rows(app, OutboxMessage)) == 1


def test_no_chat_or_a_blocked_chat_is_refused_with_nothing_written(app, chat):
    sam = chat.user("Sam Support", Role.SUPPORT)
    with app.uow() as uow:
        walk_in = customers.create_customer(uow, "Walk In")
        tickets.create_ticket(uow, walk_in.id, "At the counter")
    before = table_counts(app)
    said = chat.say(sam, "/ticket reply 1 Hello")
    assert said.reply.text.startswith("Walk In has no chat with us to answer in")
    assert table_counts(app) == before

    ticket_id = _carla_wrote(app)
    with app.uow() as uow:
        outbox.block_recipient(uow.session, "telegram", CARLA, "Forbidden: bot was blocked by the user")
    before = table_counts(app)
    said = chat.say(sam, f"/ticket reply {ticket_id} Hello")
    assert said.reply.text.startswith("Carla Customer has blocked us on Telegram")
    assert table_counts(app) == before


def test_too_long_refused_viewers_refused_and_any_agent_may_answer(app, chat):
    ticket_id = _carla_wrote(app)
    sam = chat.user("Sam Support", Role.SUPPORT)
    vera = chat.user("Vera Viewer", Role.VIEWER)
    # Assigned to someone else: ownership does not restrict answering customers.
    olga = chat.user("Olga Other", Role.SUPPORT)
    chat.say(olga, f"/ticket assign {ticket_id} me")
    before = table_counts(app)

    too_long = chat.say(sam, f"/ticket reply {ticket_id} {'x' * (tickets.MAX_MESSAGE + 1)}")
    assert too_long.reply.text.startswith("That is too long (10,001 characters; the limit is 10,000)")
    assert "can't use /ticket reply" in chat.say(vera, f"/ticket reply {ticket_id} Hi").text
    assert table_counts(app) == before

    assert chat.say(sam, f"/ticket reply {ticket_id} On it").reply.text.startswith("Sent to Carla Customer")
    # A closed ticket is answered as in the staff group: the answer is kept, the status stays.
    assert "→ closed" in chat.say(olga, f"/ticket status {ticket_id} closed").reply.text
    assert chat.say(sam, f"/ticket reply {ticket_id} One more thing").reply.text.startswith("Sent to")
    assert [a.text for a in _answers(app)] == ["On it", "One more thing"]
    assert rows(app, Ticket)[0].status is TicketStatus.CLOSED
