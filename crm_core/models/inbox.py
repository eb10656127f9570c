"""The inbox: one row per inbound platform delivery, so a repeat takes effect once and none is lost.

Chat platforms deliver at least once: Slack retries an event it thinks was missed
(``X-Slack-Retry-Num``), Telegram re-sends an update after a restart, and a signed request can be
replayed. Each adapter names every inbound delivery with a key that a repeat shares (Slack
``event_id``, team/channel/ts of a message or the ``trigger_id`` of an interaction; Telegram
``update_id``). A durable adapter (Telegram) writes the raw delivery here and commits before it
answers the platform (``pending``), then processes it; the transaction of its effect marks it
``done``. A process that dies in between leaves it ``pending`` with an expired lease, and it is
processed again from ``payload``; one that keeps failing ends ``poisoned``. Adapters that handle a
delivery in one go insert the row ``done`` in the transaction of the effect. Either way the unique
constraint and the conditional ``done`` let exactly one of any number of copies take effect.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.clock import utcnow
from crm_core.field_crypto import Encrypted
from crm_core.models.base import Base, enum_column


class InboxStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    # Failed on every attempt: kept for inspection, never processed or answered again.
    POISONED = "poisoned"


class InboundEvent(Base):
    __tablename__ = "inbound_events"
    __audited__ = False
    __table_args__ = (
        sa.UniqueConstraint("platform", "key"),
        sa.Index("ix_inbound_events_pending", "status", "lease_until"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    # slack, telegram, ... (a plain string: the inbox does not care which platforms exist).
    platform: Mapped[str] = mapped_column(sa.String(20))
    # The platform's name for this delivery, e.g. "event:Ev123" or "msg:T1:C1:1700000000.000100".
    key: Mapped[str] = mapped_column(sa.String(200))
    # For pruning: keys older than any retry window can go (crm_core.inbox.prune).
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # The raw delivery (a Telegram update as JSON) while it is to be processed; None once done.
    # Encrypted at rest: it holds what the customer wrote, a shared phone number.
    payload: Mapped[str | None] = mapped_column(Encrypted("inbound_events.payload"))
    status: Mapped[InboxStatus] = mapped_column(enum_column(InboxStatus), default=InboxStatus.DONE)
    # Processing attempts so far (each claim counts one).
    attempts: Mapped[int] = mapped_column(default=0)
    # While pending: someone is processing it until then; after that it is up for recovery.
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
