"""Putting messages into the outbox. Delivery (claiming, leases, retries, rate limits) is the
worker's outbox sender; this module is what every feature calls to send something later."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from crm_core.clock import utcnow
from crm_core.models.outbox import OutboxMessage, OutboxStatus
from crm_core.uow import UnitOfWork


def enqueue(
    uow: UnitOfWork,
    *,
    idempotency_key: str,
    kind: str,
    platform: str,
    conversation: str,
    payload: dict[str, Any],
    not_before: datetime | None = None,
    user_id: int | None = None,
    customer_id: int | None = None,
) -> OutboxMessage:
    """Add a message in the caller's transaction. Enqueuing the same key twice returns the first row."""
    existing = uow.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
    ).one_or_none()
    if existing is not None:
        return existing
    message = OutboxMessage(
        idempotency_key=idempotency_key,
        kind=kind,
        platform=platform,
        conversation=conversation,
        payload=payload,
        status=OutboxStatus.PENDING,
        not_before=not_before or utcnow(),
        user_id=user_id,
        customer_id=customer_id,
    )
    uow.session.add(message)
    uow.session.flush()
    return message
