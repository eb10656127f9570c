"""on_event: a big won deal is announced to its owner once per event, however often it is delivered."""

from __future__ import annotations

import dataclasses
import uuid

import chatcrm_example
import pytest
import shop
import sqlalchemy as sa

from crm_core import clock
from crm_core.models import OutboxMessage
from crm_core.services import deals


def make_event(**fields):
    """A crm_core.events.Event with the fields its constructor takes (the events branch defines it)."""
    events = pytest.importorskip(
        "crm_core.events", reason="crm_core.events (domain events) is not in this chatcrm yet: on_event cannot fire"
    )
    names = {f.name for f in dataclasses.fields(events.Event)}
    return events.Event(**{name: value for name, value in fields.items() if name in names})


def won_deal(fake_chat, app, amount_cents: int) -> int:
    fake_chat.user("Olga Owner", "sales")
    acme = shop.customer(app, "Acme")
    with app.uow() as uow:
        from crm_core.models import User

        owner = uow.session.scalars(sa.select(User).where(User.name == "Olga Owner")).one()
        return deals.create_deal(uow, acme, "Big rollout", amount_cents=amount_cents, owner_id=owner.id).id


def deal_won(deal_id: int, amount_cents: int):
    return make_event(
        id=str(uuid.uuid4()),
        type="deal.won",
        entity_type="deal",
        entity_id=deal_id,
        occurred_at=clock.utcnow(),
        actor={},
        payload={"amount_cents": amount_cents, "currency": "EUR"},
    )


def announcements(app) -> list[OutboxMessage]:
    with app.uow() as uow:
        return list(
            uow.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.idempotency_key.like("example:bigdeal:%")))
        )


def test_a_big_won_deal_is_announced_once(fake_chat, chatcrm_app):
    deal_id = won_deal(fake_chat, chatcrm_app, 25_000_00)
    event = deal_won(deal_id, 25_000_00)

    chatcrm_example.on_event(event, chatcrm_app)
    chatcrm_example.on_event(event, chatcrm_app)  # redelivered

    sent = announcements(chatcrm_app)
    assert [row.idempotency_key for row in sent] == [f"example:bigdeal:{event.id}"]
    assert sent[0].conversation == "olga.owner"
    assert "€25,000.00" in sent[0].payload["reply"]["text"]


def test_a_small_won_deal_is_not_announced(fake_chat, chatcrm_app):
    deal_id = won_deal(fake_chat, chatcrm_app, 9_000_00)

    chatcrm_example.on_event(deal_won(deal_id, 9_000_00), chatcrm_app)

    assert announcements(chatcrm_app) == []
