"""Announcing big won deals to their owner: the plugin's ``on_event`` listener for ``deal.won``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from crm_core import outbox
from crm_core.errors import ValidationError
from crm_core.models import Deal
from crm_core.money import format_money, parse_amount
from crm_core.services import users

if TYPE_CHECKING:
    from bot.bootstrap import App

log = logging.getLogger("chatcrm_example.big_deals")

THRESHOLD_SETTING = "CHATCRM_EXAMPLE_BIG_DEAL"
DEFAULT_THRESHOLD = "10000"


def threshold_cents(app: App) -> int:
    """The amount (in the deal's currency) a won deal must exceed to be announced."""
    raw = app.settings.extra.get(THRESHOLD_SETTING) or DEFAULT_THRESHOLD
    try:
        cents, _currency = parse_amount(raw, field=THRESHOLD_SETTING)
    except ValidationError:
        log.warning("%s=%r is not an amount; using %s", THRESHOLD_SETTING, raw, DEFAULT_THRESHOLD)
        cents, _currency = parse_amount(DEFAULT_THRESHOLD)
    return cents


def idempotency_key(event: Any) -> str:
    return f"example:bigdeal:{event.id}"


def announce_big_deal(event: Any, app: App) -> None:
    """DM the deal's owner when the won deal is over the threshold; a redelivered event sends once
    (the outbox key is the event's id)."""
    from bot.messages import Button, Field, Reply, Tone

    with app.uow() as uow:
        deal = uow.session.get(Deal, int(event.entity_id))
        if deal is None:
            log.info("deal.won event %s: deal %s is gone", event.id, event.entity_id)
            return
        if deal.amount_cents <= threshold_cents(app):
            return
        owner = deal.owner
        address = users.dm_address(owner) if owner is not None and owner.active else None
        if address is None:
            log.info("deal #%s won: its owner has no chat account to tell", deal.id)
            return
        reply = Reply(
            title=f"Big deal won: {deal.title}",
            text=f"{deal.customer.name} signed for {format_money(deal.amount_cents, deal.currency)}. Well done!",
            fields=(Field("Customer", f"{deal.customer.name} (#{deal.customer_id})"),),
            buttons=(Button("Open deal", f"/deal {deal.id}"),),
            tone=Tone.SUCCESS,
        )
        outbox.enqueue(
            uow,
            idempotency_key=idempotency_key(event),
            kind="notification",
            platform=str(address.platform),
            conversation=address.external_id,
            payload={"reply": reply.to_dict()},
            user_id=owner.id,
            customer_id=deal.customer_id,
        )
