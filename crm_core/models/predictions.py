"""Prediction runs (churn model training with its honest evaluation) and per-customer scores."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.clock import utcnow
from crm_core.models.base import Base


class ModelRun(Base):
    """One training of a model: what it was trained on, how it did on data it never saw, and
    whether it was good enough to publish (only published runs score customers)."""

    __tablename__ = "model_runs"
    __audited__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(30), index=True)
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Training features end at train_cutoff; the holdout is scored at test_cutoff (later), so the
    # evaluation only uses what happened after the training data ends.
    train_cutoff: Mapped[datetime | None]
    test_cutoff: Mapped[datetime | None]
    # What the run counts as "now" (crm_core.history): the holdout's labels end here.
    as_of: Mapped[datetime | None]
    as_of_source: Mapped[str | None] = mapped_column(sa.String(20))
    algorithm: Mapped[str | None] = mapped_column(sa.String(60))
    train_size: Mapped[int] = mapped_column(default=0)
    test_size: Mapped[int] = mapped_column(default=0)
    roc_auc: Mapped[float | None]
    # {"brier": ..., "calibration": [[mean predicted, observed rate, count], ...], "candidates": {...}}
    metrics: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    published: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str | None] = mapped_column(sa.String(500))
    duration_ms: Mapped[int] = mapped_column(default=0)


class CustomerScore(Base):
    """The latest churn risk and RFM segment of a customer (one row per customer, replaced nightly)."""

    __tablename__ = "customer_scores"
    __audited__ = False

    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    churn_risk: Mapped[float | None]
    churn_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("model_runs.id", ondelete="SET NULL"))
    recency_score: Mapped[int | None]
    frequency_score: Mapped[int | None]
    monetary_score: Mapped[int | None]
    rfm_segment: Mapped[str | None] = mapped_column(sa.String(30), index=True)
    scored_at: Mapped[datetime] = mapped_column(default=utcnow)
