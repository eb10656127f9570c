"""Per-customer behaviour as of a cut-off time, computed with SQL that runs on both databases.

Only what happened before the cut-off goes into the features; the label (did they order in the
following ``horizon``) only looks after it, so a model never sees its own future.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core.clock import as_utc
from crm_core.models import Customer, Interaction, Order, OrderKind, Ticket

if TYPE_CHECKING:
    import numpy as np

FEATURES = (
    "recency_days",
    "orders_total",
    "orders_365d",
    "log_spend_365d",
    "log_avg_order",
    "tenure_days",
    "tickets",
    "interactions_180d",
)


@dataclass
class Snapshot:
    cutoff: datetime
    customer_ids: np.ndarray
    X: np.ndarray
    # 1 = churned (no purchase within the horizon after the cut-off); None when the future is unknown.
    y: np.ndarray | None
    recency_days: np.ndarray
    orders_total: np.ndarray
    spend_total: np.ndarray


def snapshot(session: Session, cutoff: datetime, horizon: timedelta | None = None) -> Snapshot:
    """Features of every customer with a purchase before ``cutoff`` (and labels if ``horizon``)."""
    # Imported here: the predictions handler imports this module in every process that builds the
    # app, and numpy cost each start of chatcrm worker, console, import … a tenth of a second.
    import numpy as np

    year_ago = cutoff - timedelta(days=365)
    purchases = sa.and_(Order.kind == OrderKind.PURCHASE, Order.customer_id.is_not(None), Order.ordered_at < cutoff)
    rows = session.execute(
        sa.select(
            Order.customer_id,
            sa.func.count(),
            sa.func.sum(sa.case((Order.ordered_at >= year_ago, 1), else_=0)),
            sa.func.sum(sa.case((Order.ordered_at >= year_ago, Order.total_cents), else_=0)),
            sa.func.sum(Order.total_cents),
            sa.func.max(Order.ordered_at),
            sa.func.min(Order.ordered_at),
        )
        .where(purchases)
        .group_by(Order.customer_id)
        .order_by(Order.customer_id)
    ).all()
    if not rows:
        empty = np.zeros(0)
        return Snapshot(
            cutoff,
            np.zeros(0, dtype=int),
            np.zeros((0, len(FEATURES))),
            None if horizon is None else empty,
            empty,
            empty,
            empty,
        )
    tickets = dict(
        session.execute(
            sa.select(Ticket.customer_id, sa.func.count())
            .where(Ticket.created_at < cutoff)
            .group_by(Ticket.customer_id)
        ).all()
    )
    interactions = dict(
        session.execute(
            sa.select(Interaction.customer_id, sa.func.count())
            .where(Interaction.occurred_at < cutoff, Interaction.occurred_at >= cutoff - timedelta(days=180))
            .group_by(Interaction.customer_id)
        ).all()
    )
    created = dict(session.execute(sa.select(Customer.id, Customer.created_at)).all())
    ids, features, recency, totals, spend = [], [], [], [], []
    for customer_id, count, count_365, spend_365, spend_all, last, first in rows:
        # PostgreSQL sums bigints as numeric (Decimal); SQLite as int.
        count_365, spend_365, spend_all = int(count_365 or 0), float(spend_365 or 0), float(spend_all or 0)
        last, first = _aware(last), _aware(first)
        start = min(first, _aware(created.get(customer_id, first)))
        recency_days = (cutoff - last).total_seconds() / 86400
        ids.append(customer_id)
        recency.append(recency_days)
        totals.append(count)
        spend.append(spend_all)
        features.append(
            [
                recency_days,
                count,
                count_365,
                np.log1p(max(spend_365, 0) / 100),
                np.log1p(max(spend_all, 0) / 100 / count),
                (cutoff - start).total_seconds() / 86400,
                tickets.get(customer_id, 0),
                interactions.get(customer_id, 0),
            ]
        )
    labels = None
    if horizon is not None:
        bought = set(
            session.scalars(
                sa.select(Order.customer_id)
                .distinct()
                .where(
                    Order.kind == OrderKind.PURCHASE, Order.ordered_at >= cutoff, Order.ordered_at < cutoff + horizon
                )
            )
        )
        labels = np.array([0 if customer_id in bought else 1 for customer_id in ids], dtype=int)
    return Snapshot(
        cutoff,
        np.array(ids),
        np.array(features, dtype=float),
        labels,
        np.array(recency),
        np.array(totals, dtype=float),
        np.array(spend, dtype=float),
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands aggregate timestamps back as naive UTC (or text); normalise them.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return as_utc(value)
