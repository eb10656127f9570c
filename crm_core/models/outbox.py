"""The durable outbox: every message the system sends on its own is a row here first.

A row is written in the same transaction as the change that caused it, with a unique
idempotency key, so a message is neither lost (the change committed, so did the row) nor
duplicated (the key). The sender in the worker moves rows pending -> sending (with a lease)
-> sent | failed | blocked | cancelled.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.clock import utcnow
from crm_core.models.base import Base, enum_column


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __audited__ = False
    __table_args__ = (sa.Index("ix_outbox_due", "status", "not_before"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    # reminder, digest, notification, campaign, recommendation, ...
    kind: Mapped[str] = mapped_column(sa.String(40))
    platform: Mapped[str] = mapped_column(sa.String(20))
    conversation: Mapped[str] = mapped_column(sa.String(100))
    # What to send, in the shape of bot.delivery.OutboundMessage: {"reply": {...}} for a neutral
    # reply, or {"formatted_text": ..., "blocks": ..., "buttons": [...], "image": {...}}.
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    status: Mapped[OutboxStatus] = mapped_column(enum_column(OutboxStatus), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    # Not to be sent before this time (scheduled sends, retry backoff).
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    # While status is "sending": the claim expires at this time (a crashed sender's rows come back).
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    platform_message_id: Mapped[str | None] = mapped_column(sa.String(100))
    # The CRM user or customer it is for, when there is one (for reports and opt-outs).
    user_id: Mapped[int | None] = mapped_column(index=True)
    customer_id: Mapped[int | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
