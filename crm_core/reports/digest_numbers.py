"""The numbers of the managers' digest for one period, in SQL that runs on SQLite and PostgreSQL.

A period is ``[start, end)`` in UTC, built from local midnights so a day is the manager's day
(23 or 25 hours long across a DST change). Definitions:

- new customers: customers created in the period;
- orders: purchases placed in the period; revenue: their total net of cancellations placed in
  the period, per currency (never converted or added across currencies); the digest's currency
  (the CRM's) is the one its changes and chart are computed in, the others are shown beside it;
- deals won / lost: distinct deals that moved to won / lost in the period; won value per currency;
- pipeline by stage: open deals by the stage they were in at the period's end (from the stage
  history), their value and the weighted forecast per currency (value × win probability; the deal's own
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
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from crm_core import i18n
from crm_core.clock import local_instant
from crm_core.i18n import _
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
    # ISO days ("2026-06-09" or "2026-06-03 – 2026-06-09"): the chart's keys; people read ``shown``.
    label: str
    first_day: date | None = None
    last_day: date | None = None

    def shown(self) -> str:
        """The period's days for people, in the current language: ``Jun 9, 2026`` / ``2026年6月9日``."""
        if self.first_day is None or self.last_day is None:
            return self.label
        if self.first_day == self.last_day:
            return i18n.format_date(self.first_day)
        return _("{first} – {last}", first=i18n.format_date(self.first_day), last=i18n.format_date(self.last_day))


def local_days(end_day: date, days: int, tz_name: str) -> Period:
    """The ``days`` local days before ``end_day`` (exclusive), e.g. yesterday for (today, 1)."""
    first = end_day - timedelta(days=days)
    last = end_day - timedelta(days=1)
    label = first.isoformat() if days == 1 else f"{first.isoformat()} – {last.isoformat()}"
    return Period(local_instant(first, time(0), tz_name), local_instant(end_day, time(0), tz_name), label, first, last)


@dataclass(frozen=True)
class StageValue:
    stage: str
    deals: int
    # In the digest's currency.
    amount_cents: int
    weighted_cents: int
    # (currency, amount, weighted) of the stage's deals in other currencies.
    other: tuple[tuple[str, int, int], ...] = ()

    def amounts(self, currency: str) -> dict[str, int]:
        return {currency: self.amount_cents, **{c: amount for c, amount, _w in self.other}}

    def weighted(self, currency: str) -> dict[str, int]:
        return {currency: self.weighted_cents, **{c: weighted for c, _a, weighted in self.other}}


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
    currency: str = "EUR"
    # Revenue and won value in currencies other than ``currency`` (currency -> cents).
    revenue_other: dict[str, int] = field(default_factory=dict)
    won_other: dict[str, int] = field(default_factory=dict)

    @property
    def pipeline_cents(self) -> int:
        return sum(s.amount_cents for s in self.pipeline)

    @property
    def weighted_cents(self) -> int:
        return sum(s.weighted_cents for s in self.pipeline)

    @property
    def revenue(self) -> dict[str, int]:
        return {self.currency: self.revenue_cents, **self.revenue_other}

    @property
    def won(self) -> dict[str, int]:
        return {self.currency: self.won_cents, **self.won_other}

    @property
    def pipeline_totals(self) -> dict[str, int]:
        return _add(s.amounts(self.currency) for s in self.pipeline)

    @property
    def weighted_totals(self) -> dict[str, int]:
        return _add(s.weighted(self.currency) for s in self.pipeline)


def stage_label(stage: str) -> str:
    """A deal stage as the digest shows it, in the current language."""
    # Imported here: the reports are imported by services (digests) while crm_core.services loads.
    from crm_core.services.deals import stage_label as label

    return label(str(stage))


def _add(amounts) -> dict[str, int]:
    total: dict[str, int] = {}
    for found in amounts:
        for currency, cents in found.items():
            total[currency] = total.get(currency, 0) + cents
    return total


def _in(column, period: Period) -> sa.ColumnElement[bool]:
    return sa.and_(column >= period.start, column < period.end)


def period_numbers(session: Session, period: Period, currency: str) -> PeriodNumbers:
    orders, revenue = _orders(session, period)
    won, won_value, lost = _closed_deals(session, period)
    opened, resolved, overdue = _tickets(session, period)
    satisfaction, ratings = _satisfaction(session, period)
    return PeriodNumbers(
        period=period,
        new_customers=session.scalar(sa.select(sa.func.count()).where(_in(Customer.created_at, period))) or 0,
        orders=orders,
        revenue_cents=revenue.pop(currency, 0),
        deals_won=won,
        won_cents=won_value.pop(currency, 0),
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
        currency=currency,
        revenue_other={c: v for c, v in revenue.items() if v},
        won_other={c: v for c, v in won_value.items() if v},
    )


def _orders(session: Session, period: Period) -> tuple[int, dict[str, int]]:
    """Purchases placed in the period, and net revenue per currency."""
    purchases, revenue = 0, {}
    for currency, count, total in session.execute(
        sa.select(
            Order.currency,
            sa.func.coalesce(sa.func.sum(sa.case((Order.kind == OrderKind.PURCHASE, 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(Order.total_cents), 0),
        )
        .where(_in(Order.ordered_at, period))
        .group_by(Order.currency)
    ):
        purchases += int(count)
        revenue[currency] = int(total)
    return purchases, revenue


def _closed_deals(session: Session, period: Period) -> tuple[int, dict[str, int], int]:
    change = DealStageChange
    counts = dict(
        session.execute(
            sa.select(change.to_stage, sa.func.count(sa.distinct(change.deal_id)))
            .where(change.to_stage.in_([DealStage.WON, DealStage.LOST]), _in(change.changed_at, period))
            .group_by(change.to_stage)
        ).all()
    )
    won_ids = sa.select(change.deal_id).where(change.to_stage == DealStage.WON, _in(change.changed_at, period))
    won_value = {
        currency: int(total or 0)
        for currency, total in session.execute(
            sa.select(Deal.currency, sa.func.sum(Deal.amount_cents)).where(Deal.id.in_(won_ids)).group_by(Deal.currency)
        )
    }
    return int(counts.get(DealStage.WON, 0)), won_value, int(counts.get(DealStage.LOST, 0))


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
    rows = session.execute(
        sa.select(
            deals.c.stage,
            deals.c.currency,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(deals.c.amount), 0),
            sa.func.coalesce(sa.func.sum(deals.c.amount * probability), 0),
        )
        .where(deals.c.stage.in_([s.value for s in PIPELINE]))
        .group_by(deals.c.stage, deals.c.currency)
    ).all()
    # stage -> currency -> (deals, amount, weighted); weighted is cents × percent / 100, rounded half up.
    found: dict[str, dict[str, tuple[int, int, int]]] = {}
    for stage, deal_currency, count, total, weighted in rows:
        found.setdefault(str(getattr(stage, "value", stage)), {})[deal_currency] = (
            int(count),
            int(total),
            (int(weighted) + 50) // 100,
        )
    values = []
    for stage in PIPELINE:
        per_currency = found.get(stage.value, {})
        _n, amount, weighted = per_currency.get(currency, (0, 0, 0))
        other = tuple((c, a, w) for c, (_n, a, w) in sorted(per_currency.items()) if c != currency and a)
        values.append(StageValue(stage.value, sum(n for n, _a, _w in per_currency.values()), amount, weighted, other))
    return tuple(values)


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
