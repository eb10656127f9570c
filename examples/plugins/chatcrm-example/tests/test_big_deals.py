"""on_event: a big won deal is announced to its owner once per event, however often it is delivered.

The event is the real one: the deal is won through the real dispatcher and the testing kit's
``emitted_events`` reads back the ``deal.won`` event a listener would be handed.
"""

from __future__ import annotations

import chatcrm_example
import shop
import sqlalchemy as sa

from crm_core.models import OutboxMessage, User
from crm_core.services import deals


def won_deal_event(fake_chat, emitted_events, app, amount_cents: int):
    olga = fake_chat.user("Olga Owner", "sales")
    acme = shop.customer(app, "Acme")
    with app.uow() as uow:
        owner = uow.session.scalars(sa.select(User).where(User.name == "Olga Owner")).one()
        deal_id = deals.create_deal(uow, acme, "Big rollout", amount_cents=amount_cents, owner_id=owner.id).id
    marker = emitted_events.mark()
    fake_chat.say(olga, f"/deal stage {deal_id} won")
    [event] = emitted_events.since(marker, "deal.won")
    assert event.entity_id == str(deal_id)
    return event


def announcements(app) -> list[OutboxMessage]:
    with app.uow() as uow:
        return list(
            uow.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.idempotency_key.like("example:bigdeal:%")))
        )


def test_a_big_won_deal_is_announced_once(fake_chat, emitted_events, chatcrm_app):
    event = won_deal_event(fake_chat, emitted_events, chatcrm_app, 25_000_00)

    chatcrm_example.on_event(event, chatcrm_app)
    chatcrm_example.on_event(event, chatcrm_app)  # redelivered

    sent = announcements(chatcrm_app)
    assert [row.idempotency_key for row in sent] == [f"example:bigdeal:{event.id}"]
    assert sent[0].conversation == "olga.owner"
    assert "€25,000.00" in sent[0].payload["reply"]["text"]


def test_a_small_won_deal_is_not_announced(fake_chat, emitted_events, chatcrm_app):
    event = won_deal_event(fake_chat, emitted_events, chatcrm_app, 9_000_00)

    chatcrm_example.on_event(event, chatcrm_app)

    assert announcements(chatcrm_app) == []
