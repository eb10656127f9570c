"""The ticket workflow through the real dispatcher (console identities), on both databases:
opening, parsing, SLA due times and overdue flags, lists, assignment, status, notes, ratings,
and the outbox rows a ticket causes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from bot.messages import Tone
from bot.settings import Settings, SettingsError
from crm_core.models import (
    CustomerChat,
    Direction,
    Interaction,
    OutboxMessage,
    Role,
    Ticket,
    TicketMessage,
    TicketPriority,
    TicketStatus,
)
from crm_core.services import customers, sla, tickets, users
from tests.support import TEST_SECRET_KEY, rows

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def agent(chat):
    return chat.user("Sam Support", Role.SUPPORT)


@pytest.fixture
def acme(app) -> int:
    with app.uow() as uow:
        return customers.create_customer(uow, "Acme Corp").id


@pytest.mark.parametrize(
    "line, subject, priority",
    [
        ('/ticket new acme "printer jams" high', "printer jams", TicketPriority.HIGH),
        ("/ticket new acme printer jams high", "printer jams", TicketPriority.HIGH),
        ("/ticket new acme printer jams", "printer jams", TicketPriority.NORMAL),
        ('/ticket new acme "printer high"', "printer high", TicketPriority.NORMAL),
        ("/ticket new acme printer jams priority=urgent", "printer jams", TicketPriority.URGENT),
        ("/ticket new #1 low", "low", TicketPriority.NORMAL),
    ],
)
def test_ticket_new_reads_subject_and_priority(chat, agent, acme, app, line, subject, priority):
    reply = chat.say(agent, line).reply
    assert reply.tone is Tone.SUCCESS, reply
    [ticket] = rows(app, Ticket)
    assert (ticket.customer_id, ticket.subject, ticket.priority, ticket.channel) == (acme, subject, priority, "console")
    assert reply.title == f"Ticket #{ticket.id}: {subject}"


@pytest.mark.parametrize(
    "line, message",
    [
        ("/ticket new zebra broken", "No customer matches 'zebra'."),
        ("/ticket new acme", "Missing <subject>."),
        ('/ticket new acme ""', "A ticket needs a subject."),
        (
            "/ticket new acme x priority=soon",
            "Priority must be one of low, normal, high, urgent, 低, 普通, 高, 紧急, not 'soon'.",
        ),
        (
            '/ticket new acme "Bad prio" critical',
            "Priority must be one of low, normal, high, urgent, 低, 普通, 高, 紧急, not 'critical'.",
        ),
        ("/ticket new acme x urgency=high", "Unknown option urgency= (options: priority=)."),
        ("/ticket new acme " + "x" * 400, "The subject is longer than 300 characters."),
    ],
)
def test_ticket_new_refuses_bad_input_and_writes_nothing(chat, agent, acme, app, line, message):
    reply = chat.say(agent, line).reply
    assert reply.tone is Tone.ERROR
    assert reply.text == message
    assert reply.footer == "Usage: /ticket new <customer> <subject> [low|normal|high|urgent] [field=value …]"
    assert rows(app, Ticket) == []


def test_roles_decide_who_may_read_and_write_tickets(chat, acme):
    viewer = chat.user("Vic Viewer", Role.VIEWER)
    assert (
        chat.say(viewer, "/ticket new acme x").reply.text
        == "Your role (viewer) can't use /ticket new. Ask an admin if you need it."
    )
    assert chat.say(viewer, "/ticket list open").reply.title == "Open tickets"
    assert chat.say(chat.stranger(), "/ticket list open").reply.tone is Tone.ERROR


@time_machine.travel(START, tick=False)
def test_due_times_follow_the_sla_of_each_priority(chat, agent, acme, app):
    for priority in TicketPriority:
        chat.say(agent, f"/ticket new acme {priority} issue {priority}")
    for ticket in rows(app, Ticket):
        target = sla.DEFAULT_TARGETS[ticket.priority]
        assert ticket.first_response_due_at == START + target.first_response
        assert ticket.resolve_due_at == START + target.resolution


def test_sla_targets_come_from_the_environment(database_url, acme):
    from bot.bootstrap import build_app
    from tests.support import Chat

    app = build_app(
        Settings.from_env(
            {"DATABASE_URL": database_url, "CHATCRM_SECRET_KEY": TEST_SECRET_KEY, "CHATCRM_SLA_HIGH": "30m/2d"}
        )
    )
    try:
        chat = Chat(app)
        with time_machine.travel(START, tick=False):
            chat.say(chat.user("Sam", Role.SUPPORT), "/ticket new acme outage high")
        [ticket] = rows(app, Ticket)
        assert ticket.first_response_due_at == START + timedelta(minutes=30)
        assert ticket.resolve_due_at == START + timedelta(days=2)
    finally:
        app.close()


@pytest.mark.parametrize(
    "value, message",
    [
        ("4h", "CHATCRM_SLA_URGENT='4h': write it as <first response>/<resolution>, e.g. 4h/24h"),
        ("1h/soon", "CHATCRM_SLA_URGENT='1h/soon': 'soon' is not a duration like 30m, 4h or 2d"),
        ("8h/1h", "CHATCRM_SLA_URGENT='8h/1h': the resolution target is shorter than the first response"),
    ],
)
def test_bad_sla_settings_stop_the_start(value, message):
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"CHATCRM_SLA_URGENT": value})
    assert str(error.value) == message


def test_overdue_tickets_are_flagged_in_lists_and_on_the_card(chat, agent, acme, app):
    with time_machine.travel(START, tick=False):
        chat.say(agent, "/ticket new acme server down urgent")
    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        chat.say(agent, "/ticket new acme new laptop low")
    with time_machine.travel(START + timedelta(hours=3), tick=False):
        listing = chat.say(agent, "/ticket list overdue").reply
        [item] = listing.sections[0].items
        assert item.text == "#1 server down · Acme Corp"
        assert "⚠ OVERDUE: first response 2h late" in item.detail
        assert listing.footer == "1 ticket(s) · 1 overdue"
        card = chat.say(agent, "/customer acme").reply
        section = next(s for s in card.sections if s.title.startswith("Open tickets"))
        assert section.title == "Open tickets (2, 1 overdue)"
        assert [i.button.command for i in section.items] == ["/ticket 2", "/ticket 1"]
        shown = chat.say(agent, "/ticket 1").reply
        assert {f.label: f.value for f in shown.fields}["SLA"] == "⚠ OVERDUE: first response 2h late"
    # Answered in time for the first response, but the resolution is late a day later.
    with app.uow() as uow:
        tickets.answer(uow, 1, "on it", channel="console")
    with time_machine.travel(START + timedelta(hours=33), tick=False):
        assert "resolution 1d 1h late" in chat.say(agent, "/ticket list overdue").reply.sections[0].items[0].detail
        chat.say(agent, "/ticket status 1 resolved")
        assert chat.say(agent, "/ticket list overdue").reply.sections[0].empty == "No tickets."


def test_list_scopes(chat, agent, acme, app):
    other = chat.user("Ola Other", Role.SUPPORT)
    with app.uow() as uow:
        beta = customers.create_customer(uow, "Beta Ltd").id
    chat.say(agent, "/ticket new acme one")
    chat.say(agent, "/ticket new acme two urgent")
    chat.say(agent, f"/ticket new #{beta} three")
    chat.say(agent, "/ticket assign 1 me")
    chat.say(other, "/ticket assign 2 me")
    chat.say(agent, "/ticket status 3 closed")

    def numbers(line: str, who=agent) -> list[str]:
        return [i.text.split()[0] for i in chat.say(who, line).reply.sections[0].items]

    assert numbers("/ticket list") == ["#1"]
    assert numbers("/ticket list mine", other) == ["#2"]
    assert numbers("/ticket list open") == ["#2", "#1"]  # the urgent one first
    assert numbers("/ticket list all") == ["#2", "#1", "#3"]  # closed ones last
    assert numbers(f"/ticket list #{beta}") == ["#3"]
    assert numbers("/ticket list acme") == ["#2", "#1"]
    assert chat.say(agent, "/ticket list nobody-like-this").reply.text == "No customer matches 'nobody-like-this'."


def test_assign_status_and_notes(chat, agent, acme, app):
    chat.say(agent, "/ticket new acme printer jams")
    assigned = chat.say(agent, "/ticket assign 1 me").reply
    assert assigned.text == "Assigned to Sam Support."
    assert "Assign to me" not in {b.label for b in assigned.buttons}
    assert chat.say(agent, "/ticket assign 1 nobody").reply.text == "Unassigned."
    assert chat.say(agent, "/ticket assign 1 ghost").reply.text == "No user called 'ghost'."
    assert chat.say(agent, "/ticket assign 99 me").reply.text == "There is no ticket #99."

    noted = chat.say(agent, "/ticket note 1 customer is <angry> & waiting").reply
    assert noted.text == "Internal note added to ticket #1 (Acme Corp does not see it)."
    [note] = rows(app, TicketMessage)
    assert (note.direction, note.text, note.author.name) == (
        Direction.INTERNAL,
        "customer is <angry> & waiting",
        "Sam Support",
    )
    [logged] = rows(app, Interaction)
    assert (logged.kind, logged.direction, logged.ticket_id) == ("note", Direction.INTERNAL, 1)

    pending = chat.say(agent, "/ticket status 1 pending").reply
    assert pending.text == "Status: open → pending."
    resolved = chat.say(agent, "/ticket status 1 res").reply
    assert resolved.text == "Status: pending → resolved. Nobody answered the customer before it was resolved."
    assert "Reopen" in {b.label for b in resolved.buttons}
    again = chat.say(agent, "/ticket status 1 resolved").reply
    assert again.text == "Ticket #1 is already resolved." and again.tone is Tone.ERROR
    [ticket] = rows(app, Ticket)
    assert ticket.status is TicketStatus.RESOLVED and ticket.resolved_at is not None
    chat.say(agent, "/ticket status 1 open")
    [ticket] = rows(app, Ticket)
    assert ticket.status is TicketStatus.OPEN and ticket.resolved_at is None
    # No chat with the customer: nobody to ask for a rating.
    assert rows(app, OutboxMessage) == []


def test_customer_messages_reopen_pending_tickets_and_resolved_ones_start_anew(app, acme):
    with app.uow() as uow:
        first = tickets.customer_wrote(uow, acme, "Hello\nsecond line", channel="telegram")
        assert first.opened and first.ticket.subject == "Hello"
        tickets.set_status(uow, first.ticket.id, TicketStatus.PENDING)
        follow_up = tickets.customer_wrote(uow, acme, "any news?", channel="telegram")
        assert not follow_up.opened and follow_up.ticket.id == first.ticket.id
        assert follow_up.ticket.status is TicketStatus.OPEN
        tickets.set_status(uow, first.ticket.id, TicketStatus.RESOLVED)
        fresh = tickets.customer_wrote(uow, acme, "x" * 200, channel="telegram")
        assert fresh.opened and fresh.ticket.id != first.ticket.id
        assert fresh.ticket.subject == "x" * 79 + "…"


def test_resolving_asks_the_customer_once_and_only_they_may_rate(chat, agent, acme, app):
    with app.uow() as uow:
        uow.session.add(CustomerChat(customer_id=acme, platform="telegram", external_id="555", conversation="555"))
    chat.say(agent, "/ticket new acme broken")
    chat.say(agent, "/ticket status 1 resolved")
    chat.say(agent, "/ticket status 1 open")
    chat.say(agent, "/ticket status 1 resolved")
    [request] = rows(app, OutboxMessage)
    assert (request.kind, request.platform, request.conversation) == ("rating_request", "telegram", "555")
    assert [b["command"] for b in request.payload["reply"]["buttons"]] == [f"/rate 1 {n}" for n in range(1, 6)]

    customer = chat.stranger("555", platform="telegram")
    assert chat.say(agent, "/rate 1 5").reply.text == "You can only rate your own requests."
    assert chat.say(customer, "/rate 1 9").reply.text == "A rating is a number from 1 to 5."
    assert chat.say(customer, "/rate 1 3").reply.tone is Tone.SUCCESS
    assert chat.say(customer, "/rate 1 1").reply.text.startswith("You already rated request #1")
    card = chat.say(agent, "/customer acme").reply
    assert {f.label: f.value for f in card.fields}["Satisfaction"] == "3.0/5 from 1 rating"
    # /rate is for buttons: not in anyone's help.
    assert "/rate" not in chat.say(chat.user("Ada", Role.ADMIN), "/help").text


def test_a_new_high_ticket_notifies_the_owner_where_they_work(chat, agent, app):
    with app.uow() as uow:
        owner = users.ensure_user(uow, users.PlatformId("telegram", "777"), display_name="Olga", role=Role.SALES)
        users.link_identity(uow, owner, users.PlatformId("slack", "UOLGA"))
        customers.create_customer(uow, "Acme Corp", {"owner": "Olga"})
    chat.say(agent, "/ticket new acme minor thing")
    assert rows(app, OutboxMessage) == []
    chat.say(agent, "/ticket new acme site down urgent")
    [notice] = rows(app, OutboxMessage)
    # Slack first when the owner has both.
    assert (notice.platform, notice.conversation, notice.kind) == ("slack", "UOLGA", "notification")
    assert notice.payload["reply"]["text"] == "site down"
    # The owner opening one herself is not told about it.
    with app.uow() as uow:
        users.grant_role(uow, users.find_user(uow, "Olga"), Role.SUPPORT)
    olga = chat.stranger("777", platform="telegram")
    assert chat.say(olga, "/ticket new acme another high").reply.tone is Tone.SUCCESS
    assert len(rows(app, OutboxMessage)) == 1
