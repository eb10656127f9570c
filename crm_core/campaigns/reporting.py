"""What a campaign did, per run and in total: delivered, failed, blocked, opted out, and what it earned.

Outcomes come from the recipient rows once settled, and from their outbox rows while in flight.
"Opted out" counts recipients whose message was cancelled because they had opted out before it
went; "opted out after" counts those who got the message and opted out afterwards on that
platform. Attribution is last-touch within the campaign: a purchase by a recipient within
``ATTRIBUTION_WINDOW`` after a message of the campaign counts for the latest such message's
run (never twice within one campaign). Revenue is the orders' totals per currency (never
converted or added across currencies); later cancellations are not subtracted. ``until`` (an
as-of end, crm_core.history) leaves out orders placed after it.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import i18n
from crm_core.campaigns.delivery import outcome
from crm_core.i18n import pgettext
from crm_core.models import (
    Campaign,
    CampaignRecipient,
    CampaignRun,
    Consent,
    ConsentStatus,
    Order,
    OrderKind,
    OutboxMessage,
)

ATTRIBUTION_WINDOW = timedelta(days=14)
CHUNK = 1000


@dataclass
class Counts:
    recipients: int = 0
    pending: int = 0
    sent: int = 0
    failed: int = 0
    blocked: int = 0
    opted_out: int = 0
    cancelled: int = 0
    opted_out_after: int = 0
    orders: int = 0
    # Currency -> cents, as the orders were placed.
    revenue: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return self.recipients - self.pending

    def add(self, other: Counts) -> None:
        for f in fields(self):
            if f.name != "revenue":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        for currency, cents in other.revenue.items():
            self.revenue[currency] = self.revenue.get(currency, 0) + cents


@dataclass
class RunReport:
    number: int
    scheduled_for: datetime
    status: str
    counts: Counts


@dataclass
class CampaignReport:
    campaign_id: int
    runs: list[RunReport] = field(default_factory=list)
    total: Counts = field(default_factory=Counts)


def _join():  # noqa: ANN202 - the recipients with their outbox rows
    r, o = CampaignRecipient, OutboxMessage
    return sa.outerjoin(r, o, sa.and_(o.ref_id == r.id, o.kind == "campaign"))


def campaign_report(
    session: Session, campaign: Campaign, *, attribution: bool = True, until: datetime | None = None
) -> CampaignReport:
    r, o = CampaignRecipient, OutboxMessage
    runs = list(
        session.scalars(
            sa.select(CampaignRun).where(CampaignRun.campaign_id == campaign.id).order_by(CampaignRun.number)
        )
    )
    per_run: dict[int, Counts] = {run.id: Counts(recipients=0) for run in runs}
    # Grouped over a subquery: the outcome expression's parameters would otherwise appear twice,
    # and PostgreSQL does not accept that as the same GROUP BY expression.
    states = (
        sa.select(r.run_id, outcome().label("state"))
        .select_from(_join())
        .where(r.campaign_id == campaign.id)
        .subquery()
    )
    for run_id, state, n in session.execute(
        sa.select(states.c.run_id, states.c.state, sa.func.count()).group_by(states.c.run_id, states.c.state)
    ):
        counts = per_run.setdefault(run_id, Counts())
        counts.recipients += n
        setattr(counts, str(state), getattr(counts, str(state)) + n)
    sent_at = sa.func.coalesce(r.sent_at, o.sent_at)
    after = session.execute(
        sa.select(r.run_id, sa.func.count())
        .select_from(_join())
        .join(Consent, sa.and_(Consent.customer_id == r.customer_id, Consent.platform == r.platform))
        .where(
            r.campaign_id == campaign.id,
            sent_at.is_not(None),
            Consent.status == ConsentStatus.OPTED_OUT,
            Consent.opted_out_at >= sent_at,
        )
        .group_by(r.run_id)
    ).all()
    for run_id, n in after:
        per_run[run_id].opted_out_after = n
    if attribution:
        for run_id, (orders, revenue) in attribute(session, campaign.id, until=until).items():
            per_run[run_id].orders, per_run[run_id].revenue = orders, revenue
    report = CampaignReport(campaign.id)
    for run in runs:
        counts = per_run[run.id]
        report.runs.append(RunReport(run.number, run.scheduled_for, str(run.status), counts))
        report.total.add(counts)
    return report


def attribute(
    session: Session, campaign_id: int, window: timedelta = ATTRIBUTION_WINDOW, until: datetime | None = None
) -> dict[int, tuple[int, dict[str, int]]]:
    """Per run id: (orders, revenue per currency) attributed to the campaign's messages, last touch,
    counting only orders placed before ``until`` when given (an as-of end)."""
    r, o = CampaignRecipient, OutboxMessage
    sent_at = sa.func.coalesce(r.sent_at, o.sent_at)
    touches: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for customer_id, run_id, when in session.execute(
        sa.select(r.customer_id, r.run_id, sent_at)
        .select_from(_join())
        .where(r.campaign_id == campaign_id, sent_at.is_not(None))
    ):
        touches[customer_id].append((when, run_id))
    result: dict[int, tuple[list[int], dict[str, int]]] = defaultdict(lambda: ([0], {}))
    customers = sorted(touches)
    for start in range(0, len(customers), CHUNK):
        chunk = customers[start : start + CHUNK]
        earliest = min(t[0] for c in chunk for t in touches[c])
        statement = sa.select(Order.customer_id, Order.ordered_at, Order.total_cents, Order.currency).where(
            Order.customer_id.in_(chunk), Order.kind == OrderKind.PURCHASE, Order.ordered_at > earliest
        )
        if until is not None:
            statement = statement.where(Order.ordered_at < until)
        for buyer_id, ordered_at, total, currency in session.execute(statement):
            assert buyer_id is not None, "matched by customer_id IN (...)"
            mine = sorted(touches[buyer_id])
            # The latest message strictly before the order.
            index = bisect.bisect_left(mine, (ordered_at,)) - 1
            if index < 0:
                continue
            when, run_id = mine[index]
            if ordered_at - when <= window:
                count, revenue = result[run_id]
                count[0] += 1
                revenue[currency] = revenue.get(currency, 0) + total
    return {run_id: (count[0], revenue) for run_id, (count, revenue) in result.items()}


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """``▓▓▓▓▓░░░░░ 50%``: how much of a run is finished."""
    share = 1.0 if total == 0 else done / total
    filled = round(share * width)
    return "▓" * filled + "░" * (width - filled) + f" {i18n.format_percent(share)}"


def status_label(status: str) -> str:
    """A campaign's status as shown to people, in the current language (parsing keeps the English)."""
    labels = {
        "draft": pgettext("campaign status", "draft"),
        "scheduled": pgettext("campaign status", "scheduled"),
        "sending": pgettext("campaign status", "sending"),
        "paused": pgettext("campaign status", "paused"),
        "done": pgettext("campaign status", "done"),
        "cancelled": pgettext("campaign status", "cancelled"),
    }
    return labels.get(str(status), str(status))


def run_status_label(status: str) -> str:
    """A run's status as shown to people, in the current language."""
    labels = {
        "sending": pgettext("campaign run status", "sending"),
        "done": pgettext("campaign run status", "done"),
        "cancelled": pgettext("campaign run status", "cancelled"),
    }
    return labels.get(str(status), str(status))
