"""Digest subscriptions: a channel or chat that gets the managers' daily or weekly digest."""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models.base import Base, Timestamped, enum_column


class DigestFrequency(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class DigestSubscription(Timestamped, Base):
    __tablename__ = "digest_subscriptions"
    __table_args__ = (sa.UniqueConstraint("platform", "conversation", "frequency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(sa.String(20))
    conversation: Mapped[str] = mapped_column(sa.String(100))
    frequency: Mapped[DigestFrequency] = mapped_column(enum_column(DigestFrequency))
    # Local time of day ("08:00") in ``timezone``; weekly digests go out on ``weekday`` (0 = Monday).
    at_time: Mapped[str] = mapped_column(sa.String(5), default="08:00")
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    weekday: Mapped[int] = mapped_column(default=0)
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
