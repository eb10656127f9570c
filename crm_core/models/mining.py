"""Association-rule mining runs, the rules they found, and recommendations made from them."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.clock import utcnow
from crm_core.models.base import Base, enum_column
from crm_core.models.catalog import Product
from crm_core.models.customers import Customer


class MiningRun(Base):
    """One mining of the order history: its thresholds, what it found, how long it took."""

    __tablename__ = "mining_runs"
    __audited__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    window_days: Mapped[int]
    min_support: Mapped[float]
    min_confidence: Mapped[float]
    min_lift: Mapped[float | None]
    max_len: Mapped[int | None]
    n_baskets: Mapped[int] = mapped_column(default=0)
    n_itemsets: Mapped[int] = mapped_column(default=0)
    n_rules: Mapped[int] = mapped_column(default=0)
    n_recommendations: Mapped[int] = mapped_column(default=0)
    duration_ms: Mapped[int] = mapped_column(default=0)
    trigger: Mapped[str] = mapped_column(sa.String(20), default="nightly")
    # The window ends here (exclusive); crm_core.history says why: "now", "given" or "newest order".
    as_of: Mapped[datetime | None]
    as_of_source: Mapped[str | None] = mapped_column(sa.String(20))


class MinedRule(Base):
    """``antecedent -> consequent`` over products, from one run (older runs' rules are dropped)."""

    __tablename__ = "mined_rules"
    __audited__ = False
    __table_args__ = (sa.Index("ix_mined_rules_run_consequent", "run_id", "consequent_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("mining_runs.id", ondelete="CASCADE"))
    # Product ids, ascending.
    antecedent: Mapped[list[int]] = mapped_column(sa.JSON)
    consequent_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id", ondelete="CASCADE"))
    support: Mapped[float]
    confidence: Mapped[float]
    lift: Mapped[float]
    count: Mapped[int]

    consequent: Mapped[Product] = relationship(lazy="joined")


class RecommendationStatus(enum.StrEnum):
    POSTED = "posted"
    PITCHED = "pitched"
    NOT_RELEVANT = "not_relevant"


class Recommendation(Base):
    """A product suggested to a rep for a customer, and what the rep said about it."""

    __tablename__ = "recommendations"
    __table_args__ = (sa.Index("ix_recommendations_customer_product", "customer_id", "product_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("mining_runs.id", ondelete="SET NULL"))
    # The products the customer bought that triggered the rule ("because they bought …").
    because: Mapped[list[int]] = mapped_column(sa.JSON)
    confidence: Mapped[float]
    lift: Mapped[float]
    status: Mapped[RecommendationStatus] = mapped_column(
        enum_column(RecommendationStatus), default=RecommendationStatus.POSTED
    )
    posted_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    acted_at: Mapped[datetime | None]
    acted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    customer: Mapped[Customer] = relationship(lazy="joined")
    product: Mapped[Product] = relationship(lazy="joined")
