"""Interactions: log a note, call, email, meeting or chat message against a customer."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from crm_core import clock, events
from crm_core.errors import ValidationError
from crm_core.models import Direction, Interaction, InteractionKind
from crm_core.services.customers import get_customer
from crm_core.text import check_text
from crm_core.uow import UnitOfWork

MAX_TEXT = 4000


def log_interaction(
    uow: UnitOfWork,
    customer_id: int,
    text: str,
    kind: InteractionKind = InteractionKind.NOTE,
    channel: str | None = None,
    direction: Direction = Direction.INTERNAL,
    occurred_at: datetime | None = None,
    ticket_id: int | None = None,
) -> Interaction:
    body = check_text((text or "").strip(), "note", field="text")
    if not body:
        raise ValidationError("the note is empty: write some text after the customer", field="text")
    if len(body) > MAX_TEXT:
        raise ValidationError(f"the note is longer than {MAX_TEXT} characters", field="text")
    customer = get_customer(uow, customer_id)
    interaction = Interaction(
        customer_id=customer_id,
        user_id=uow.actor.user_id,
        kind=kind,
        direction=direction,
        channel=channel or uow.actor.platform,
        text=body,
        occurred_at=occurred_at or clock.utcnow(),
        ticket_id=ticket_id,
    )
    uow.session.add(interaction)
    uow.session.flush()
    events.emit(
        uow,
        "note.created",
        entity_type="interaction",
        entity_id=interaction.id,
        payload={
            "interaction_id": interaction.id,
            "customer_id": customer.id,
            "customer": customer.name,
            "kind": str(interaction.kind),
            "direction": str(interaction.direction),
            "channel": interaction.channel,
            "text": interaction.text,
            "user_id": interaction.user_id,
            "ticket_id": interaction.ticket_id,
        },
    )
    return interaction


def recent_interactions(uow: UnitOfWork, customer_id: int, limit: int = 10) -> list[Interaction]:
    return list(
        uow.session.scalars(
            sa.select(Interaction)
            .where(Interaction.customer_id == customer_id)
            .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
            .limit(limit)
        )
    )
