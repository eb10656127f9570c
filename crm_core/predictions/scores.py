"""Nightly refresh of customer scores: train the churn model and recompute RFM segments.

Both are computed as of the churn run's end (crm_core.history): now, or for a history that
stopped more than the churn horizon ago, its newest order's day, so recency means "days before
the history ends" rather than "years before today".
"""

from __future__ import annotations

import logging
from datetime import date, datetime

import sqlalchemy as sa

from crm_core.clock import as_utc, utcnow
from crm_core.models import CustomerScore, ModelRun
from crm_core.predictions import rfm
from crm_core.predictions.features import snapshot
from crm_core.scheduling import JobRun
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.predictions")


def refresh_scores(uow: UnitOfWork, now: datetime | None = None, as_of: date | None = None) -> ModelRun:
    """Train and evaluate the churn model, then replace every customer's scores. One transaction.

    ``as_of`` (a day) ends the history there; by default it ends now, or at the newest order's day."""
    # scikit-learn is imported by the training, not by every process that can show a score.
    from crm_core.predictions import churn

    now = now or utcnow()
    result = churn.train(uow, now, as_of=as_of)
    assert result.run.as_of is not None, "train records where its history ends"
    current = snapshot(uow.session, as_utc(result.run.as_of))
    r = rfm.quintile_scores(current.recency_days, higher_is_better=False)
    f = rfm.quintile_scores(current.orders_total)
    m = rfm.quintile_scores(current.spend_total)
    previous = {} if result.run.published else _previous_risks(uow)
    uow.session.execute(sa.delete(CustomerScore))
    rows = []
    for index, customer_id in enumerate(current.customer_ids.tolist()):
        risk, run_id = (
            (result.risks.get(customer_id), result.run.id)
            if result.run.published
            else previous.get(customer_id, (None, None))
        )
        rows.append(
            {
                "customer_id": customer_id,
                "churn_risk": risk,
                "churn_run_id": run_id,
                "recency_score": int(r[index]),
                "frequency_score": int(f[index]),
                "monetary_score": int(m[index]),
                "rfm_segment": rfm.segment(int(r[index]), int(f[index]), int(m[index])),
                "scored_at": now,
            }
        )
    if rows:
        uow.session.execute(sa.insert(CustomerScore), rows)
    return result.run


def _previous_risks(uow: UnitOfWork) -> dict[int, tuple[float | None, int | None]]:
    # An unpublished run keeps the last published risks rather than wiping them.
    return {
        cid: (risk, run_id)
        for cid, risk, run_id in uow.session.execute(
            sa.select(CustomerScore.customer_id, CustomerScore.churn_risk, CustomerScore.churn_run_id)
        )
    }


def latest_run(uow: UnitOfWork, kind: str = "churn", published_only: bool = False) -> ModelRun | None:
    statement = sa.select(ModelRun).where(ModelRun.kind == kind)
    if published_only:
        statement = statement.where(ModelRun.published.is_(True))
    return uow.session.scalars(statement.order_by(ModelRun.id.desc()).limit(1)).first()


def nightly_task(run: JobRun) -> None:
    """Scheduled task: retrain the churn model on the latest history and rescore every customer."""
    with run.uow() as uow:
        result = refresh_scores(uow, now=run.fire_time)
    log.info("churn model run #%s: %s", result.id, result.note)
