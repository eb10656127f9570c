"""/relation <customer> <type> <other> [since=…] and /relation end <id>: both cards show the
relationship, each from its own side; changes are audited; on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
import time_machine

from crm_core.models import AuditEntry, CustomerRelationship, Role
from crm_core.services import customers
from tests.support import rows
from tests.telegram_rig import SUPPORT_CHAT

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def firms(app):
    with app.uow() as uow:
        return {
            name: customers.create_customer(uow, name).id
            for name in ("Acme Corp", "Beta GmbH", "Bob Brown", "Alice Adams", "Globex")
        }


def _relationships(card) -> list[tuple[str, str]]:
    found = [s for s in card.sections if s.title and s.title.startswith("Relationships")]
    return [(item.text, item.detail) for item in found[0].items] if found else []


@time_machine.travel(NOW, tick=False)
def test_a_relationship_shows_on_both_cards_with_the_inverse(chat, app, firms):
    rep = chat.user("Rita Rep", Role.SALES)
    said = chat.say(rep, '/relation "Beta GmbH" subsidiary "Acme Corp" since=2024-03-01').reply
    rel = rows(app, CustomerRelationship)[0]
    assert said.title == "Beta GmbH"
    assert said.text == f"Beta GmbH is subsidiary of Acme Corp since 2024-03-01 (relationship #{rel.id})."
    assert _relationships(said) == [
        (f"subsidiary of Acme Corp (#{firms['Acme Corp']})", f"since 2024-03-01 · #{rel.id}")
    ]
    acme = chat.say(rep, "/customer acme").reply
    assert _relationships(acme) == [(f"parent of Beta GmbH (#{firms['Beta GmbH']})", f"since 2024-03-01 · #{rel.id}")]

    # Another type, read the other way; since defaults to today.
    chat.say(rep, "/relation bob reports_to alice")
    chat.say(rep, "/relation globex competitor acme")
    assert [text for text, _ in _relationships(chat.say(rep, "/customer alice").reply)] == [
        f"manages Bob Brown (#{firms['Bob Brown']})"
    ]
    assert _relationships(chat.say(rep, "/customer bob").reply)[0][1].startswith("since 2026-11-10")
    assert [text for text, _ in _relationships(chat.say(rep, "/customer acme").reply)] == [
        f"parent of Beta GmbH (#{firms['Beta GmbH']})",
        f"competitor of Globex (#{firms['Globex']})",
    ]
    with app.uow() as uow:
        audited = uow.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.entity_type == "customer_relationships").order_by(AuditEntry.id)
        ).all()
    assert [(e.action, e.actor_name, e.after["type"]) for e in audited] == [
        ("create", "Rita Rep", "subsidiary"),
        ("create", "Rita Rep", "reports_to"),
        ("create", "Rita Rep", "competitor"),
    ]


@time_machine.travel(NOW, tick=False)
def test_ending_a_relationship_takes_it_off_both_cards_and_keeps_the_record(chat, app, firms):
    rep = chat.user("Rita Rep", Role.SALES)
    chat.say(rep, "/relation beta partner acme since=2025-01-01")
    rel = rows(app, CustomerRelationship)[0]
    ended = chat.say(rep, f"/relation end {rel.id}").reply
    assert ended.text == f"Ended relationship #{rel.id}: Beta GmbH partner of Acme Corp (2025-01-01 – 2026-11-10)."
    assert _relationships(ended) == [] and _relationships(chat.say(rep, "/customer acme").reply) == []
    assert rows(app, CustomerRelationship)[0].ended_on.isoformat() == "2026-11-10"
    assert "already ended on 2026-11-10" in chat.say(rep, f"/relation end {rel.id}").text
    assert "there is no relationship #999" in chat.say(rep, "/relation end 999").text.lower()
    # Ended, the same fact may be recorded again.
    chat.say(rep, "/relation acme partner beta")
    assert len(rows(app, CustomerRelationship)) == 2
    with app.uow() as uow:
        actions = uow.session.scalars(
            sa.select(AuditEntry.action)
            .where(AuditEntry.entity_type == "customer_relationships")
            .order_by(AuditEntry.id)
        ).all()
    assert actions == ["create", "update", "create"]


@time_machine.travel(NOW, tick=False)
def test_bad_relations_are_refused_and_write_nothing(chat, app, firms):
    rep = chat.user("Rita Rep", Role.SALES)
    chat.say(rep, "/relation beta subsidiary acme")
    refusals = {
        # The same fact, however it is worded.
        "/relation acme parent beta": "Acme Corp is already parent of Beta GmbH (relationship #1",
        "/relation beta subsidiary acme": "Beta GmbH is already subsidiary of Acme Corp",
        "/relation acme cousin beta": "Type must be one of parent, subsidiary, partner, reseller, competitor, "
        "referred_by, reports_to, colleague, family, not 'cousin'",
        "/relation acme partner acme": "cannot be related to themselves",
        "/relation acme partner beta since=2027-01-01": "2027-01-01 is in the future",
        "/relation acme partner beta since=soon": "since takes a date such as 2024-03-01, not 'soon'",
        "/relation acme partner initech": "No customer matches 'initech'",
    }
    for line, message in refusals.items():
        assert message.lower() in chat.say(rep, line).text.lower(), line
    assert len(rows(app, CustomerRelationship)) == 1
    viewer = chat.user("Vic Viewer", Role.VIEWER)
    assert "can't use /relation" in chat.say(viewer, "/relation acme partner globex").text


def test_telegram_staff_relate_customers(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    with rig.app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
        customers.create_customer(uow, "Reseller Ltd")
    sam = rig.staff(900, "Sam Sales", Role.SALES)
    rig.send(tg.group_text(SUPPORT_CHAT, sam, '/relation "Reseller Ltd" reseller acme'))
    assert "Reseller Ltd is reseller of Acme Corp" in tg.last_sent(SUPPORT_CHAT).text
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "/customer acme"))
    assert "resold by Reseller Ltd" in tg.last_sent(SUPPORT_CHAT).text


def test_a_rep_relates_only_customers_they_own_or_nobody_owns(chat, app, firms):
    chat.user("Olga Owner", Role.SALES)
    rep = chat.user("Rita Rep", Role.SALES)
    with app.uow() as uow:
        customers.update_customer(uow, firms["Acme Corp"], {"owner": "Olga Owner"})
    refused = chat.say(rep, "/relation acme partner beta").text
    assert "Acme Corp is owned by Olga Owner; ask them or a manager" in refused
    assert rows(app, CustomerRelationship) == []
    # Beta is nobody's: relating it to Olga's customer is a change to Beta only.
    chat.say(rep, "/relation beta partner acme")
    manager = chat.user("Mia Manager", Role.MANAGER)
    assert "Ended relationship" in chat.say(manager, f"/relation end {rows(app, CustomerRelationship)[0].id}").text
