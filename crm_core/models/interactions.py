"""Interactions with a customer: notes, calls, emails, meetings and chat messages."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.clock import utcnow
from crm_core.field_crypto import Encrypted
from crm_core.models.base import Base, enum_column
from crm_core.models.users import User


class InteractionKind(enum.StrEnum):
    NOTE = "note"
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    CHAT = "chat"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class Interaction(Base):
    __tablename__ = "interactions"
    __table_args__ = (sa.Index("ix_interactions_customer_occurred", "customer_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    # Who on our side (None for a message the customer sent).
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[InteractionKind] = mapped_column(enum_column(InteractionKind))
    direction: Mapped[Direction] = mapped_column(enum_column(Direction), default=Direction.INTERNAL)
    # Where it happened: slack, telegram, console, phone, email, ...
    channel: Mapped[str] = mapped_column(sa.String(20))
    # For a chat message with a photo, a file...: its caption, maybe empty. Encrypted at rest.
    text: Mapped[str] = mapped_column(Encrypted("interactions.text"))
    # What a chat message carried besides text (crm_core.attachments), as on its TicketMessage.
    attachment_kind: Mapped[str | None] = mapped_column(sa.String(20))
    attachment_name: Mapped[str | None] = mapped_column(sa.String(200))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tickets.id", ondelete="SET NULL"), index=True)

    user: Mapped[User | None] = relationship(lazy="joined")
