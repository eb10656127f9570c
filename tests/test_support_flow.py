"""The support inbox and step-by-step forms without any chat adapter: neutral requests through the real
dispatcher, on both databases. The platform is the console's here, to show the flow names none: a
WhatsApp adapter producing the same requests gets the same messages to send."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.conversation import Question
from bot.desk import SupportDesk
from bot.dispatch import CUSTOMER_HINT, AlreadyHandled
from bot.messages import (
    AfterSend,
    Contact,
    Destination,
    MessageRef,
    Origin,
    Outcome,
    Reply,
    Request,
    RequestKind,
)
from bot.roles import Permission
from crm_core import i18n, outbox
from crm_core.models import (
    Consent,
    Customer,
    CustomerChat,
    Direction,
    FormSession,
    Role,
    Ticket,
    TicketMessage,
)
from crm_core.services import customers, tickets
from tests.support import Chat, rows

PLATFORM = "console"
ROOM = Destination(PLATFORM, "staff-room")
DESK = SupportDesk(staff_room=ROOM, bot_name="Helpdesk")


def customer(external_id: str = "c-555", name: str = "Carla Customer") -> Origin:
    return Origin(
        platform=PLATFORM,
        user_external_id=external_id,
        conversation=f"dm-{external_id}",
        is_private=True,
        display_name=name,
        first_name=name.split()[0],
    )


def message(origin: Origin, text: str, key: str, reply_to: MessageRef | None = None) -> Request:
    return Request(
        origin=origin, text=text, kind=RequestKind.MESSAGE, inbox_key=key, message_id=f"m-{key}", reply_to=reply_to
    )


def in_staff_room(chat: Chat, name: str = "Sam Support", role: Role = Role.SUPPORT) -> Origin:
    dm = chat.user(name, role)
    return Origin(PLATFORM, dm.user_external_id, ROOM.conversation, display_name=name)


def test_a_customer_message_opens_a_ticket_and_yields_a_relay_with_a_stable_key(app):
    carla = customer()
    outcome = app.dispatcher.handle_event(message(carla, "My printer jams", "u1"), desk=DESK)

    [ticket] = rows(app, Ticket)
    [stored] = rows(app, TicketMessage)
    assert (ticket.subject, ticket.channel, ticket.customer.name) == ("My printer jams", PLATFORM, "Carla Customer")
    assert (stored.direction, stored.external_message_id) == (Direction.INBOUND, "m-u1")
    thanks, relay = outcome.sends
    assert thanks.to == Destination(PLATFORM, "dm-c-555")
    assert f"request number is #{ticket.id}" in thanks.reply.text
    assert relay.to == ROOM
    assert relay.key == f"ticket-message:{stored.id}:relay"
    assert relay.after == AfterSend("support.relay", stored.id)
    assert relay.reply.title == f"Ticket #{ticket.id} · new ticket · normal"
    assert relay.reply.text == "My printer jams"
    assert [b.command for b in relay.reply.buttons] == [f"/ticket assign {ticket.id} me", f"/ticket {ticket.id}"]

    # The same delivery again changes nothing and sends nothing.
    with pytest.raises(AlreadyHandled):
        app.dispatcher.handle_event(message(carla, "My printer jams", "u1"), desk=DESK)
    assert len(rows(app, TicketMessage)) == 1

    # The adapter reports where the copy landed; a reply to that copy then finds the ticket.
    assert app.dispatcher.report(relay, message_id="r-77") == []
    [stored] = rows(app, TicketMessage)
    assert (stored.relay_conversation, stored.relay_message_id) == ("staff-room", "r-77")

    # A follow-up goes into the same ticket: relayed, no second thanks.
    [follow_up] = app.dispatcher.handle_event(message(carla, "tray 2", "u2"), desk=DESK).sends
    assert follow_up.to == ROOM and "follow-up" in follow_up.reply.title
    assert follow_up.key != relay.key
    assert len(rows(app, Ticket)) == 1


def test_without_a_staff_room_the_message_is_kept_and_only_acknowledged(app):
    outcome = app.dispatcher.handle_event(message(customer(), "Hello?", "u1"), desk=SupportDesk())
    [thanks] = outcome.sends
    assert thanks.to.conversation == "dm-c-555"
    assert len(rows(app, TicketMessage)) == 1


def test_a_staff_reply_in_the_staff_room_yields_the_answer_to_the_customers_chat(app, chat):
    carla = customer()
    relay = app.dispatcher.handle_event(message(carla, "My printer jams", "u1"), desk=DESK).sends[1]
    app.dispatcher.report(relay, message_id="r-77")
    sam = in_staff_room(chat)

    outcome = app.dispatcher.handle_event(
        message(sam, "Open tray 2", "u2", reply_to=MessageRef("r-77", from_bot=True)), desk=DESK
    )
    [answer] = outcome.sends
    stored = rows(app, TicketMessage, TicketMessage.direction == Direction.OUTBOUND)[0]
    assert answer.to == Destination(PLATFORM, "dm-c-555")
    assert answer.reply == Reply(text="Open tray 2")
    assert answer.key == f"ticket-message:{stored.id}:answer"
    assert answer.after == AfterSend(
        "support.answer", stored.id, notify=Destination(PLATFORM, "staff-room", None, "m-u2")
    )
    assert stored.author.name == "Sam Support" and stored.channel == PLATFORM
    assert rows(app, Ticket)[0].first_responded_at is not None

    # Reported as sent: recorded, and Sam is told in the staff room, as a reply to his message.
    [confirmation] = app.dispatcher.report(answer, message_id="c-5")
    assert confirmation.to == answer.after.notify
    assert confirmation.reply.text == f"Sent to Carla Customer (ticket #{stored.ticket_id})."
    assert rows(app, TicketMessage, TicketMessage.id == stored.id)[0].external_message_id == "c-5"

    # Reported as failed: the reason is kept on the answer and Sam is told.
    [failure] = app.dispatcher.report(answer, error="blocked by the user")
    assert failure.reply.text.startswith("Not delivered to Carla Customer: blocked by the user.")
    assert rows(app, TicketMessage, TicketMessage.id == stored.id)[0].delivery_error == "blocked by the user"


@pytest.mark.parametrize(
    ("code", "english", "chinese"),
    [
        (outbox.UNREACHABLE, "the customer blocked us or the chat is gone", "客户已屏蔽我们，或该聊天已不存在"),
        (outbox.REFUSED, "Telegram refused the message", "Telegram 拒收了这条消息"),
        (outbox.GAVE_UP, "Telegram could not be reached after several attempts", "多次尝试后仍无法连接 Telegram"),
    ],
)
def test_why_an_answer_failed_is_said_in_the_readers_words_not_the_platforms(code, english, chinese):
    recorded = outbox.failure(code, "Forbidden: bot was blocked by the user")
    assert outbox.failure_code(recorded) == (code, "Forbidden: bot was blocked by the user")
    assert tickets.delivery_error_text(recorded, "telegram") == english
    with i18n.use_language("zh"):
        assert tickets.delivery_error_text(recorded, "telegram") == chinese
    # Anything else (a record from before the codes) is shown as it was stored.
    assert tickets.delivery_error_text("Bad Request: message is too long", "telegram") == (
        "Bad Request: message is too long"
    )


def test_what_a_staff_message_is_not(app, chat):
    carla = customer()
    app.dispatcher.handle_event(message(carla, "Hello", "u1"), desk=DESK)
    sam = in_staff_room(chat)
    # Chatter in the room, and a reply to some other message, answer nobody.
    assert app.dispatcher.handle_event(message(sam, "lunch?", "u2"), desk=DESK) == Outcome()
    assert app.dispatcher.handle_event(message(sam, "yes", "u3", reply_to=MessageRef("x-1")), desk=DESK) == Outcome()
    # Someone not linked as staff replying to the copy is not an answer.
    intern = Origin(PLATFORM, "intern", ROOM.conversation, display_name="Ivan")
    reply = message(intern, "I can answer", "u4", reply_to=MessageRef("r-1", from_bot=True, text="Ticket #1 · new"))
    assert app.dispatcher.handle_event(reply, desk=DESK) == Outcome()
    # Staff writing to the bot privately get a hint.
    [hint] = app.dispatcher.handle_event(message(chat.user("Sam Support", Role.SUPPORT), "hi", "u5"), desk=DESK).sends
    assert "Type /help" in hint.reply.text
    assert [m.direction for m in rows(app, TicketMessage)] == [Direction.INBOUND]


def test_a_reply_naming_the_ticket_answers_it_when_the_copy_is_not_on_record(app, chat):
    app.dispatcher.handle_event(message(customer(), "Hello", "u1"), desk=DESK)
    [ticket] = rows(app, Ticket)
    replied = MessageRef("r-unknown", from_bot=True, text=f"Ticket #{ticket.id} · new ticket · normal")
    [answer] = app.dispatcher.handle_event(message(in_staff_room(chat), "Hi!", "u2", reply_to=replied), desk=DESK).sends
    assert answer.to.conversation == "dm-c-555"


def test_an_answer_to_a_customer_without_a_chat_here_is_kept_and_flagged(app, chat):
    with app.uow() as uow:
        acme = customers.create_customer(uow, "Acme Corp").id
    created = chat.say(chat.user("Sam Support", Role.SUPPORT), f'/ticket new #{acme} "No chat"').text
    assert "Ticket #1 opened" in created
    replied = MessageRef("r-x", from_bot=True, text="Ticket #1 · new ticket")
    [told] = app.dispatcher.handle_event(message(in_staff_room(chat), "Hi", "u1", reply_to=replied), desk=DESK).sends
    assert told.to.conversation == "staff-room" and told.after is None
    assert told.reply.text.startswith("Not delivered to Acme Corp: the customer has no Console chat with us.")
    # Why is kept as a code, so a reader in another language reads it in theirs.
    [answer] = rows(app, TicketMessage, TicketMessage.direction == Direction.OUTBOUND)
    assert answer.delivery_error == tickets.NO_CHAT
    li = chat.user("Li Wei", Role.SUPPORT)
    chat.say(li, "/lang zh")
    thread = chat.say(li, "/ticket 1").reply.sections[0].items
    assert "未送达：客户没有与我们的 Console 聊天" in (thread[-1].detail or "")


def test_sharing_ones_own_contact_links_the_chat_and_someone_elses_is_refused(app):
    with app.uow() as uow:
        known = customers.create_customer(uow, "Carla Castillo", {"phone": "+49 30 1234 5678"}).id
    carla = customer()
    app.dispatcher.handle_event(message(carla, "Invoice?", "u1"), desk=DESK)

    def contact(key: str, phone: str, whose: str | None) -> Request:
        return Request(origin=carla, text="", kind=RequestKind.CONTACT, inbox_key=key, contact=Contact(phone, whose))

    [refused] = app.dispatcher.handle_event(contact("u2", "+49 30 1234 5678", "someone-else"), desk=DESK).sends
    assert "share your own phone number" in refused.reply.text
    [linked] = app.dispatcher.handle_event(contact("u3", "030 12345678", "c-555"), desk=DESK).sends
    assert "Carla Castillo: we found your customer record" in linked.reply.text
    assert linked.reply.hide_share_phone
    [chat_row] = rows(app, CustomerChat)
    assert chat_row.customer_id == known
    assert [c.id for c in rows(app, Customer)] == [known]
    assert rows(app, Ticket)[0].customer_id == known


def test_customer_is_a_role_with_the_commands_a_customer_needs(app, chat):
    assert app.router.permissions.allows(Role.CUSTOMER, Permission.HELP) and app.router.permissions.allows(
        Role.CUSTOMER, Permission.OPT_OUT
    )
    assert not app.router.permissions.allows(
        Role.CUSTOMER, Permission.CUSTOMERS_READ
    ) and not app.router.permissions.allows(Role.CUSTOMER, Permission.ACCOUNT)
    with app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    carla = customer()
    # Where customers write to us (a desk), a stranger is a customer from the first word.
    denied = app.dispatcher.handle(Request(origin=carla, text="/customer acme"), desk=DESK)
    assert denied.text == CUSTOMER_HINT.text
    assert app.dispatcher.handle(Request(origin=carla, text="/whoami"), desk=DESK).text == CUSTOMER_HINT.text
    assert app.dispatcher.handle(Request(origin=carla, text="/frobnicate"), desk=DESK).text == CUSTOMER_HINT.text
    # A staff button pressed by a customer (in a shared group) is ignored.
    assert app.dispatcher.handle(Request(origin=carla, text="/customer acme", from_button=True), desk=DESK).is_empty
    greeting = app.dispatcher.handle(Request(origin=carla, text="/help"), desk=DESK)
    assert greeting.title == "Hello Carla!" and "This is Helpdesk" in greeting.text
    assert greeting.share_phone_button == "Share my phone number"

    # Once she wrote, her chat is known: she is a customer even without a desk, and may rate her request.
    app.dispatcher.handle_event(message(carla, "The app crashes", "u1"), desk=DESK)
    [ticket] = rows(app, Ticket)
    rated = chat.say(carla, f"/rate {ticket.id} 4").text
    assert f"You rated request #{ticket.id}" in rated
    assert chat.say(carla, "/customer acme").reply.text == CUSTOMER_HINT.text
    # Someone else may not rate it; and someone unknown where there is no desk has no role at all.
    assert "only rate your own requests" in chat.say(customer("c-666", "Mallory M"), f"/rate {ticket.id} 1").text
    stranger = Origin(PLATFORM, "nobody", "dm-nobody", is_private=True)
    assert "You can't use /customer yet" in chat.say(stranger, "/customer acme").text
    # Staff keep their roles.
    assert "Acme Corp" in chat.say(chat.user("Vic Viewer", Role.VIEWER), "/customer acme").text


def test_start_greets_opts_in_and_gives_staff_the_help(app, chat):
    # Consent is recorded only for the platforms crm_core.services.consent knows (not the console yet).
    carla = replace(customer(), platform="telegram")
    desk = SupportDesk(staff_room=Destination("telegram", "-100"), bot_name="Helpdesk")
    reply = app.dispatcher.handle(Request(origin=carla, text="/start", inbox_key="s1"), desk=desk)
    assert reply.title == "Hello Carla!" and reply.share_phone_button
    [consent] = rows(app, Consent)
    assert (consent.platform, consent.conversation, consent.status) == ("telegram", "dm-c-555", "opted_in")
    # In a group: the greeting without the offer, and no consent for the group.
    group = Origin(carla.platform, "c-777", "-200", display_name="Gus Group", first_name="Gus")
    in_group = app.dispatcher.handle(Request(origin=group, text="/start"), desk=desk)
    assert in_group.title == "Hello Gus!" and in_group.share_phone_button is None
    assert len(rows(app, Consent)) == 1
    sam = chat.user("Sam Support", Role.SUPPORT, "telegram")
    assert app.dispatcher.handle(Request(origin=sam, text="/start"), desk=desk).title == "chatcrm commands"


def test_forms_are_asked_one_question_at_a_time_without_modals(app, chat):
    with app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    sam = chat.user("Sam Support", Role.SUPPORT)
    asked = app.dispatcher.handle(Request(origin=sam, text="/ticket new acme", can_ask=True))
    question = app.dispatcher.ask(sam, asked.form)
    assert isinstance(question, Question) and question.field.name == "subject"
    # The next plain message is the answer; the last question is optional.
    outcome = app.dispatcher.handle_event(message(sam, "Toner low", "u1"))
    priority = app.dispatcher.advance(sam, outcome.step)
    assert isinstance(priority, Question) and priority.field.choices == ("low", "normal", "high", "urgent")
    chosen = app.dispatcher.choose(
        Request(origin=sam, text="", inbox_key="u2"), priority.session_id, priority.asked, "2"
    )
    assert chosen.shown == "high"
    done = app.dispatcher.advance(sam, chosen.step)
    assert done.text.startswith("Ticket #1 opened for Acme Corp.")
    assert rows(app, FormSession) == []

    # /cancel leaves a form; a new command typed instead leaves it too.
    app.dispatcher.ask(sam, app.dispatcher.handle(Request(origin=sam, text="/ticket new acme", can_ask=True)).form)
    assert app.dispatcher.handle(Request(origin=sam, text="/cancel")).text == "Cancelled."
    assert app.dispatcher.handle(Request(origin=sam, text="/cancel")).text == "There is nothing to cancel."
    app.dispatcher.ask(sam, app.dispatcher.handle(Request(origin=sam, text="/ticket new acme", can_ask=True)).form)
    app.dispatcher.handle(Request(origin=sam, text="/ticket list"))
    assert rows(app, FormSession) == []
