"""The inbox: inbound platform events (Telegram updates, Slack events) already taken in.

A re-delivered event finds its row and is skipped; the row is inserted first, in the same
transaction as the event's effect, so an event takes effect once.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.clock import utcnow
from crm_core.models.base import Base


class InboundEvent(Base):
    __tablename__ = "inbox"
    __audited__ = False
    __table_args__ = (sa.UniqueConstraint("platform", "key"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    platform: Mapped[str] = mapped_column(sa.String(20))
    # The platform's id of the event: Telegram update_id, Slack event_id, ...
    key: Mapped[str] = mapped_column(sa.String(200))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
