"""Every mutation is audited with actor, platform and before/after; the log itself is append-only."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm_core.actor import Actor
from crm_core.models import AuditEntry, Role
from crm_core.services import audit_log, customers, deals


def _entries(app, entity_type=None):
    """The entries as a reader sees them (personal values are stored encrypted: crm_core.customer_keys)."""
    with app.uow() as uow:
        statement = sa.select(AuditEntry).order_by(AuditEntry.id)
        if entity_type:
            statement = statement.where(AuditEntry.entity_type == entity_type)
        return [audit_log.readable(uow.session, entry) for entry in uow.session.scalars(statement)]


def test_create_update_delete_are_audited_with_the_actor(app):
    rita = Actor(user_id=7, name="Rita", platform="slack")
    with app.uow(rita) as uow:
        customer = customers.create_customer(uow, "Acme Corp", {"country": "DE", "tags": "vip"})
    with app.uow(rita) as uow:
        customers.update_customer(uow, customer.id, {"country": "FR", "name": "Acme SARL"})
    with app.uow(rita) as uow:
        customers.update_customer(uow, customer.id, {"tags": ""})
    created, updated = _entries(app, "customers")
    assert (created.action, created.actor_user_id, created.actor_name, created.platform) == (
        "create",
        7,
        "Rita",
        "slack",
    )
    assert created.after["name"] == "Acme Corp" and created.before is None
    assert updated.action == "update"
    assert updated.before == {"country": "DE", "name": "Acme Corp"}
    assert updated.after == {"country": "FR", "name": "Acme SARL"}
    tag_actions = [(e.action, e.entity_id) for e in _entries(app, "customer_tags")]
    assert tag_actions == [("create", f"{customer.id}/vip"), ("delete", f"{customer.id}/vip")]


def test_command_writes_audit_with_the_chat_identity(chat, app):
    rep = chat.user("Rita Rep", Role.SALES)
    chat.say(rep, "/customer new Acme")
    chat.say(rep, "/deal new acme Printers amount=12k")
    chat.say(rep, "/deal stage 1 proposal")
    (deal_update,) = [e for e in _entries(app, "deals") if e.action == "update"]
    assert deal_update.actor_name == "Rita Rep" and deal_update.platform == "console"
    assert deal_update.before["stage"] == "lead" and deal_update.after["stage"] == "proposal"
    assert deal_update.after["probability"] == 50


def test_rolled_back_change_leaves_no_audit(app):
    with pytest.raises(RuntimeError):
        with app.uow() as uow:
            customers.create_customer(uow, "Ghost Ltd")
            uow.flush()
            raise RuntimeError("abort")
    assert _entries(app) == []


def test_audit_log_rejects_update_and_delete(app):
    with app.uow() as uow:
        customer = customers.create_customer(uow, "Acme")
        deals.create_deal(uow, customer.id, "x")
    for statement in (sa.update(AuditEntry).values(action="forged"), sa.delete(AuditEntry)):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with app.engine.begin() as connection:
                connection.execute(statement)
    assert all(e.action == "create" for e in _entries(app))
