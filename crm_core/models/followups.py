"""Follow-ups: a rep's promise to get back to a customer at a given time, and its reminder."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.field_crypto import Encrypted
from crm_core.models.base import Base, Timestamped, enum_column
from crm_core.models.customers import Customer
from crm_core.models.users import User


class FollowUpStatus(enum.StrEnum):
    # Waiting for its time.
    PENDING = "pending"
    # The reminder went out; still open until the rep marks it done.
    REMINDED = "reminded"
    DONE = "done"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        return self in (FollowUpStatus.PENDING, FollowUpStatus.REMINDED)


class FollowUp(Timestamped, Base):
    __tablename__ = "followups"
    __table_args__ = (sa.Index("ix_followups_user_status_due", "user_id", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    # The rep who gets the reminder.
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    due_at: Mapped[datetime] = mapped_column(index=True)
    # Encrypted at rest (crm_core.field_crypto): what was promised to a person.
    text: Mapped[str] = mapped_column(Encrypted("followups.text", sqlite_length=1000))
    # The zone the rep's "<when>" was read in, for showing the time back to them.
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    status: Mapped[FollowUpStatus] = mapped_column(enum_column(FollowUpStatus), default=FollowUpStatus.PENDING)
    reminded_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    snooze_count: Mapped[int] = mapped_column(default=0)

    customer: Mapped[Customer] = relationship(lazy="joined")
    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
