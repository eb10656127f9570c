"""The numbers of the managers' digest for one period, in SQL that runs on SQLite and PostgreSQL.

A period is ``[start, end)`` in UTC, built from local midnights so a day is the manager's day
(23 or 25 hours long across a DST change). Definitions:

- new customers: customers created in the period;
- orders: purchases placed in the period; revenue: their total net of cancellations placed in
  the period, in the CRM currency (other currencies are not converted, so not summed);
- deals won / lost: distinct deals that moved to won / lost in the period; won value in the CRM currency;
- pipeline by stage: open deals by the stage they were in at the period's end (from the stage
  history), their value and the weighted forecast (value × win probability; the deal's own
  probability when it is still in that stage, else the stage's default);
- funnel: for each step (lead→qualified→proposal→negotiation→won), of the deals that entered the
  step's first stage in the period, how many went on to a later stage before the period's end;
- tickets opened and resolved in the period; overdue: open at the period's end past their
  resolution due time; median first response time of tickets first answered in the period;
  satisfaction: the mean rating given in the period;
- follow-ups overdue per rep: open at the period's end and due before it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from crm_core.clock import local_instant
from crm_core.models import (
    DEFAULT_PROBABILITY,
    PIPELINE,
    Customer,
    Deal,
    DealStage,
    DealStageChange,
    FollowUp,
    FollowUpStatus,
    Order,
    OrderKind,
    Ticket,
    User,
)

# The funnel's stages in order: the open pipeline, then won.
FUNNEL = (*PIPELINE, DealStage.WON)


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    label: str


def local_days(end_day: date, days: int, tz_name: str) -> Period:
    """The ``days`` local days before ``end_day`` (exclusive), e.g. yesterday for (today, 1)."""
    first = end_day - timedelta(days=days)
    last = end_day - timedelta(days=1)
    label = first.isoformat() if days == 1 else f"{first.isoformat()} – {last.isoformat()}"
    return Period(local_instant(first, time(0), tz_name), local_instant(end_day, time(0), tz_name), label)


@dataclass(frozen=True)
class StageValue:
    stage: str
    deals: int
    amount_cents: int
    weighted_cents: int


@dataclass(frozen=True)
class FunnelStep:
    from_stage: str
    to_stage: str
    entered: int
    moved_on: int

    @property
    def rate(self) -> float | None:
        return self.moved_on / self.entered if self.entered else None


@dataclass(frozen=True)
class RepCount:
    name: str
    count: int


@dataclass(frozen=True)
class PeriodNumbers:
    period: Period
    new_customers: int
    orders: int
    revenue_cents: int
    deals_won: int
    won_cents: int
    deals_lost: int
    pipeline: tuple[StageValue, ...]
    funnel: tuple[FunnelStep, ...]
    tickets_opened: int
    tickets_resolved: int
    tickets_overdue: int
    median_first_response_seconds: float | None
    satisfaction: float | None
    ratings: int
    followups_overdue: tuple[RepCount, ...]

    @property
    def pipeline_cents(self) -> int:
        return sum(s.amount_cents for s in self.pipeline)

    @property
    def weighted_cents(self) -> int:
        return sum(s.weighted_cents for s in self.pipeline)


def _in(column, period: Period) -> sa.ColumnElement[bool]:
    return sa.and_(column >= period.start, column < period.end)


def _in_currency(currency: str, amount, currency_column) -> sa.ColumnElement:
    return sa.case((currency_column == currency, amount), else_=0)


def period_numbers(session: Session, period: Period, currency: str) -> PeriodNumbers:
    orders, revenue = _orders(session, period, currency)
    won, won_cents, lost = _closed_deals(session, period, currency)
    opened, resolved, overdue = _tickets(session, period)
    satisfaction, ratings = _satisfaction(session, period)
    return PeriodNumbers(
        period=period,
        new_customers=session.scalar(sa.select(sa.func.count()).where(_in(Customer.created_at, period))) or 0,
        orders=orders,
        revenue_cents=revenue,
        deals_won=won,
        won_cents=won_cents,
        deals_lost=lost,
        pipeline=pipeline_at(session, period.end, currency),
        funnel=_funnel(session, period),
        tickets_opened=opened,
        tickets_resolved=resolved,
        tickets_overdue=overdue,
        median_first_response_seconds=_median_first_response(session, period),
        satisfaction=satisfaction,
        ratings=ratings,
        followups_overdue=_followups_overdue(session, period.end),
    )


def _orders(session: Session, period: Period, currency: str) -> tuple[int, int]:
    purchases, revenue = session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(sa.case((Order.kind == OrderKind.PURCHASE, 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(_in_currency(currency, Order.total_cents, Order.currency)), 0),
        ).where(_in(Order.ordered_at, period))
    ).one()
    return int(purchases), int(revenue)


def _closed_deals(session: Session, period: Period, currency: str) -> tuple[int, int, int]:
    change = DealStageChange
    counts = dict(
        session.execute(
            sa.select(change.to_stage, sa.func.count(sa.distinct(change.deal_id)))
            .where(change.to_stage.in_([DealStage.WON, DealStage.LOST]), _in(change.changed_at, period))
            .group_by(change.to_stage)
        ).all()
    )
    won_ids = sa.select(change.deal_id).where(change.to_stage == DealStage.WON, _in(change.changed_at, period))
    won_cents = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(_in_currency(currency, Deal.amount_cents, Deal.currency)), 0)).where(
            Deal.id.in_(won_ids)
        )
    )
    return int(counts.get(DealStage.WON, 0)), int(won_cents or 0), int(counts.get(DealStage.LOST, 0))


def stage_at(moment: datetime) -> sa.ColumnElement:
    """A deal's stage at ``moment``: its last stage change before then (a deal without any
    recorded change is taken to have always been in its current stage)."""
    earlier = aliased(DealStageChange)
    last_before = (
        sa.select(earlier.to_stage)
        .where(earlier.deal_id == Deal.id, earlier.changed_at < moment)
        .order_by(earlier.changed_at.desc(), earlier.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    has_history = sa.select(DealStageChange.id).where(DealStageChange.deal_id == Deal.id).exists()
    return sa.case((has_history, last_before), else_=Deal.stage)


def pipeline_at(session: Session, moment: datetime, currency: str) -> tuple[StageValue, ...]:
    deals = (
        sa.select(
            Deal.amount_cents.label("amount"),
            Deal.currency.label("currency"),
            Deal.probability.label("probability"),
            Deal.stage.label("current"),
            stage_at(moment).label("stage"),
        )
        .where(Deal.created_at < moment)
        .subquery()
    )
    default_probability = sa.case(
        {stage.value: DEFAULT_PROBABILITY[stage] for stage in PIPELINE}, value=deals.c.stage, else_=0
    )
    probability = sa.case((deals.c.stage == deals.c.current, deals.c.probability), else_=default_probability)
    amount = _in_currency(currency, deals.c.amount, deals.c.currency)
    rows = session.execute(
        sa.select(
            deals.c.stage,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(amount), 0),
            sa.func.coalesce(sa.func.sum(amount * probability), 0),
        )
        .where(deals.c.stage.in_([s.value for s in PIPELINE]))
        .group_by(deals.c.stage)
    ).all()
    found = {str(getattr(stage, "value", stage)): (count, total, weighted) for stage, count, total, weighted in rows}
    return tuple(
        StageValue(
            stage.value,
            int(found.get(stage.value, (0, 0, 0))[0]),
            int(found.get(stage.value, (0, 0, 0))[1]),
            # cents × percent / 100, rounded half up
            (int(found.get(stage.value, (0, 0, 0))[2]) + 50) // 100,
        )
        for stage in PIPELINE
    )


def _funnel(session: Session, period: Period) -> tuple[FunnelStep, ...]:
    steps = []
    for index, stage in enumerate(FUNNEL[:-1]):
        entry = aliased(DealStageChange)
        later = aliased(DealStageChange)
        moved_on = (
            sa.select(later.id)
            .where(
                later.deal_id == entry.deal_id,
                later.to_stage.in_(list(FUNNEL[index + 1 :])),
                later.changed_at >= entry.changed_at,
                later.changed_at < period.end,
            )
            .exists()
        )
        entered, moved = session.execute(
            sa.select(
                sa.func.count(sa.distinct(entry.deal_id)),
                sa.func.count(sa.distinct(sa.case((moved_on, entry.deal_id)))),
            ).where(entry.to_stage == stage, _in(entry.changed_at, period))
        ).one()
        steps.append(FunnelStep(stage.value, FUNNEL[index + 1].value, int(entered), int(moved)))
    return tuple(steps)


def _tickets(session: Session, period: Period) -> tuple[int, int, int]:
    finished = sa.func.coalesce(Ticket.resolved_at, Ticket.closed_at)
    opened = session.scalar(sa.select(sa.func.count()).where(_in(Ticket.created_at, period))) or 0
    resolved = session.scalar(sa.select(sa.func.count()).where(_in(Ticket.resolved_at, period))) or 0
    overdue = (
        session.scalar(
            sa.select(sa.func.count()).where(
                Ticket.created_at < period.end,
                Ticket.resolve_due_at < period.end,
                sa.or_(finished.is_(None), finished >= period.end),
            )
        )
        or 0
    )
    return int(opened), int(resolved), int(overdue)


def _median_first_response(session: Session, period: Period) -> float | None:
    # Durations are computed here rather than in SQL: date arithmetic differs between the databases.
    pairs = session.execute(
        sa.select(Ticket.created_at, Ticket.first_responded_at).where(_in(Ticket.first_responded_at, period))
    ).all()
    # (The period filter already leaves out tickets without a first response.)
    durations = [(answered - opened).total_seconds() for opened, answered in pairs if answered is not None]
    return statistics.median(durations) if durations else None


def _satisfaction(session: Session, period: Period) -> tuple[float | None, int]:
    mean, count = session.execute(
        sa.select(sa.func.avg(Ticket.rating), sa.func.count(Ticket.rating)).where(
            Ticket.rating.is_not(None), _in(Ticket.rated_at, period)
        )
    ).one()
    return (float(mean) if mean is not None else None), int(count)


def _followups_overdue(session: Session, moment: datetime) -> tuple[RepCount, ...]:
    rows = session.execute(
        sa.select(User.name, sa.func.count(FollowUp.id))
        .join(User, User.id == FollowUp.user_id)
        .where(
            FollowUp.status != FollowUpStatus.CANCELLED,
            FollowUp.created_at < moment,
            FollowUp.due_at < moment,
            sa.or_(FollowUp.done_at.is_(None), FollowUp.done_at >= moment),
        )
        .group_by(User.id, User.name)
        .order_by(sa.func.count(FollowUp.id).desc(), User.name)
    ).all()
    return tuple(RepCount(name, int(count)) for name, count in rows)


def revenue_trend(session: Session, buckets: list[Period], currency: str) -> list[int]:
    """Revenue (net, CRM currency) per bucket, in one query."""
    if not buckets:
        return []
    columns = [
        sa.func.coalesce(
            sa.func.sum(
                sa.case(
                    (sa.and_(_in(Order.ordered_at, bucket), Order.currency == currency), Order.total_cents), else_=0
                )
            ),
            0,
        )
        for bucket in buckets
    ]
    row = session.execute(
        sa.select(*columns).where(Order.ordered_at >= buckets[0].start, Order.ordered_at < buckets[-1].end)
    ).one()
    return [int(value) for value in row]
