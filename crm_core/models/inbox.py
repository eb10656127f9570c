"""The inbox: one row per inbound platform event already handled, so a repeat takes effect once.

Chat platforms deliver at least once: Slack retries an event it thinks was missed
(``X-Slack-Retry-Num``), Telegram re-sends an update after a restart, and a signed request can be
replayed. Each adapter names every inbound delivery with a key that a repeat shares (Slack
``event_id``, team/channel/ts of a message or the ``trigger_id`` of an interaction; Telegram
``update_id``) and inserts it here first, in the transaction that carries out the event: the
unique constraint lets exactly one of any number of copies through, even concurrent ones.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.clock import utcnow
from crm_core.models.base import Base


class InboundEvent(Base):
    __tablename__ = "inbound_events"
    __audited__ = False
    __table_args__ = (sa.UniqueConstraint("platform", "key"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    # slack, telegram, ... (a plain string: the inbox does not care which platforms exist).
    platform: Mapped[str] = mapped_column(sa.String(20))
    # The platform's name for this delivery, e.g. "event:Ev123" or "msg:T1:C1:1700000000.000100".
    key: Mapped[str] = mapped_column(sa.String(200))
    # For pruning: keys older than any retry window can go (crm_core.inbox.prune).
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
