"""Deals moving through the sales pipeline, and the history of their stage changes."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.clock import utcnow
from crm_core.models.base import Base, Timestamped, enum_column
from crm_core.models.customers import Customer
from crm_core.models.users import User


class DealStage(enum.StrEnum):
    LEAD = "lead"
    QUALIFIED = "qualified"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    WON = "won"
    LOST = "lost"

    @property
    def is_open(self) -> bool:
        return self not in (DealStage.WON, DealStage.LOST)


# The pipeline order of the open stages, and the win probability a deal gets on entering a
# stage unless someone set one explicitly.
PIPELINE = (DealStage.LEAD, DealStage.QUALIFIED, DealStage.PROPOSAL, DealStage.NEGOTIATION)
DEFAULT_PROBABILITY = {
    DealStage.LEAD: 10,
    DealStage.QUALIFIED: 25,
    DealStage.PROPOSAL: 50,
    DealStage.NEGOTIATION: 75,
    DealStage.WON: 100,
    DealStage.LOST: 0,
}


class Deal(Timestamped, Base):
    __tablename__ = "deals"
    __table_args__ = (sa.CheckConstraint("probability BETWEEN 0 AND 100", name="probability_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    stage: Mapped[DealStage] = mapped_column(enum_column(DealStage), default=DealStage.LEAD, index=True)
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    expected_close_on: Mapped[date | None]
    probability: Mapped[int] = mapped_column(default=10)
    closed_at: Mapped[datetime | None]
    lost_reason: Mapped[str | None] = mapped_column(sa.String(500))
    # Its id in the system it was imported from, so re-running an import updates it (chatcrm import).
    external_ref: Mapped[str | None] = mapped_column(sa.String(100), unique=True)

    customer: Mapped[Customer] = relationship(lazy="joined")
    owner: Mapped[User | None] = relationship(lazy="joined")


class DealStageChange(Base):
    """Every move between stages, so funnels and win rates can be computed for any period."""

    __tablename__ = "deal_stage_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(sa.ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    from_stage: Mapped[DealStage | None] = mapped_column(enum_column(DealStage))
    to_stage: Mapped[DealStage] = mapped_column(enum_column(DealStage))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    changed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
