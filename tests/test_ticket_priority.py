"""/ticket priority <id> <level>: the priority changes, the SLA due times move with it (from when
the ticket was opened, with the configured targets), audited and announced; on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from crm_core import events
from crm_core.models import AuditEntry, Role, Ticket
from crm_core.services import customers
from tests.support import TEST_SECRET_KEY, rows
from tests.telegram_rig import SUPPORT_CHAT

OPENED = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(database_url):
    from bot.settings import Settings

    # Urgent tickets here need a first response in 30 minutes and a resolution in 4 hours.
    return Settings(database_url=database_url, secret_key=TEST_SECRET_KEY, extra={"CHATCRM_SLA_URGENT": "30m/4h"})


def _fields(reply) -> dict[str, str]:
    return {f.label: f.value for f in reply.fields}


def test_priority_moves_the_sla_due_times_with_it(chat, app):
    agent = chat.user("Sam Support", Role.SUPPORT)
    with app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    with time_machine.travel(OPENED, tick=False):
        chat.say(agent, '/ticket new acme "Printer jams"')
    with time_machine.travel(OPENED + timedelta(hours=2), tick=False):
        raised = chat.say(agent, "/ticket priority 1 urgent").reply
        fields = _fields(raised)
        assert raised.text == (
            "Priority: normal → urgent. First response due 2026-11-10 12:30, resolution due 2026-11-10 16:00."
        )
        assert (fields["Priority"], fields["First response"], fields["Resolution"]) == (
            "urgent",
            "due 2026-11-10 12:30",
            "due 2026-11-10 16:00",
        )
        # Raised two hours after it was opened, it is already late for its first response.
        assert fields["SLA"] == "⚠ OVERDUE: first response 1h 30m late"
        assert "1 overdue" in chat.say(agent, "/ticket list overdue").reply.footer
        lowered = _fields(chat.say(agent, "/ticket priority 1 low").reply)
        assert (lowered["First response"], lowered["Resolution"]) == ("due 2026-11-11 12:00", "due 2026-11-15 12:00")
        assert "SLA" not in lowered
    ticket = rows(app, Ticket)[0]
    assert ticket.resolve_due_at == OPENED + timedelta(hours=120)
    with app.uow() as uow:
        audited = uow.session.scalars(
            sa.select(AuditEntry)
            .where(AuditEntry.entity_type == "tickets", AuditEntry.action == "update")
            .order_by(AuditEntry.id)
        ).all()
        announced = [e.payload for e in events.recent(uow.session, 100, "ticket.priority_changed")]
    assert [(e.actor_name, e.before["priority"], e.after["priority"]) for e in audited] == [
        ("Sam Support", "normal", "urgent"),
        ("Sam Support", "urgent", "low"),
    ]
    assert audited[0].after["resolve_due_at"].startswith("2026-11-10T16:00")
    assert [(p["from_priority"], p["to_priority"], p["resolve_due_at"]) for p in announced] == [
        ("normal", "urgent", "2026-11-10T16:00:00+00:00"),
        ("urgent", "low", "2026-11-15T12:00:00+00:00"),
    ]


def test_bad_priority_changes_name_what_is_allowed_and_change_nothing(chat, app):
    agent = chat.user("Sam Support", Role.SUPPORT)
    with app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    chat.say(agent, '/ticket new acme "Printer jams" high')
    before = rows(app, Ticket)[0]
    refusals = {
        "/ticket priority 1 critical": "Priority must be one of low, normal, high, urgent, 低, 普通, 高, 紧急, not 'critical'",
        "/ticket priority 1 high": "ticket #1 is already high",
        "/ticket priority 9 low": "there is no ticket #9",
    }
    for line, message in refusals.items():
        assert message.lower() in chat.say(agent, line).text.lower(), line
    chat.say(agent, "/ticket status 1 resolved")
    assert "Ticket #1 is resolved: reopen it to change its priority" in chat.say(agent, "/ticket priority 1 low").text
    after = rows(app, Ticket)[0]
    assert (after.priority, after.resolve_due_at) == (before.priority, before.resolve_due_at)
    viewer = chat.user("Vic Viewer", Role.VIEWER)
    assert "can't use /ticket priority" in chat.say(viewer, "/ticket priority 1 low").text


def test_telegram_staff_change_a_priority(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    with rig.app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    sam = rig.staff(900, "Sam Support", Role.SUPPORT)
    rig.send(tg.group_text(SUPPORT_CHAT, sam, '/ticket new acme "Printer jams"'))
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "/ticket priority 1 high"))
    assert "Priority: normal → high" in tg.last_sent(SUPPORT_CHAT).text


def test_an_agent_changes_only_tickets_assigned_to_them_or_nobody(chat, app):
    chat.user("Olga Other", Role.SUPPORT)
    agent = chat.user("Sam Support", Role.SUPPORT)
    with app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    chat.say(agent, '/ticket new acme "Printer jams"')
    chat.say(agent, "/ticket assign 1 Olga Other")
    assert (
        "Ticket #1 is assigned to Olga Other; ask them or a manager" in chat.say(agent, "/ticket priority 1 high").text
    )
    assert rows(app, Ticket)[0].priority == "normal"
    manager = chat.user("Mia Manager", Role.MANAGER)
    assert "Priority: normal → high" in chat.say(manager, "/ticket priority 1 high").text
