"""Managers' digests: subscriptions per channel, the digest itself (numbers, chart, template), and
the scheduled task that sends it.

A subscription is a row plus a ``digest:<id>`` job in the scheduled-job registry (a calendar
trigger at the local time in the subscription's timezone). The task covers the local day (or
seven days) before the day it fires, compares it with the one before, draws the chart and puts
one message in the outbox, keyed by subscription and period: a retried or repeated run for the
same period does not send twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import clock, i18n, outbox
from crm_core.campaigns.reporting import ATTRIBUTION_WINDOW, Counts, campaign_report
from crm_core.errors import ValidationError
from crm_core.i18n import _, pgettext
from crm_core.models import (
    Campaign,
    CampaignRun,
    Customer,
    CustomerScore,
    DigestFrequency,
    DigestSubscription,
    OutboxMessage,
    User,
)
from crm_core.money import format_totals
from crm_core.outbox_payload import PayloadImage
from crm_core.reports.charts import chart_path, draw_digest_chart
from crm_core.reports.digest_numbers import (
    Period,
    PeriodNumbers,
    local_days,
    period_numbers,
    revenue_trend,
    stage_label,
)
from crm_core.scheduling import Calendar, JobRun, parse_hhmm, schedule, unschedule
from crm_core.services import deals
from crm_core.templating import render_message
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.digests")

DIGEST_TEMPLATE = "digest"
SEND_TASK = "digests.send"
# A digest that could not go out at its time (worker down) is still sent within six hours;
# later than that it would be stale, and the next one comes at its own time.
MISFIRE_GRACE_SECONDS = 6 * 3600
PERIOD_DAYS = {DigestFrequency.DAILY: 1, DigestFrequency.WEEKLY: 7}
TREND_BUCKETS = {DigestFrequency.DAILY: 14, DigestFrequency.WEEKLY: 8}
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def job_id(subscription_id: int) -> str:
    return f"digest:{subscription_id}"


def subscribe(
    uow: UnitOfWork,
    *,
    platform: str,
    conversation: str,
    frequency: DigestFrequency,
    at: str = "08:00",
    timezone: str = "UTC",
    language: str = "en",
    weekday: int = 0,
    user_id: int | None = None,
) -> DigestSubscription:
    """Subscribe a conversation (or change its subscription of that frequency)."""
    try:
        at_time = parse_hhmm(at)
        clock.zone(timezone)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    subscription = uow.session.scalars(
        sa.select(DigestSubscription).where(
            DigestSubscription.platform == platform,
            DigestSubscription.conversation == conversation,
            DigestSubscription.frequency == frequency,
        )
    ).one_or_none()
    if subscription is None:
        subscription = DigestSubscription(platform=platform, conversation=conversation, frequency=frequency)
        uow.session.add(subscription)
    subscription.at_time = at_time.strftime("%H:%M")
    subscription.timezone = timezone
    subscription.language = language
    subscription.weekday = weekday
    subscription.created_by_id = user_id
    uow.session.flush()
    trigger = Calendar(at_time, timezone, weekdays=(weekday,) if frequency is DigestFrequency.WEEKLY else None)
    schedule(
        uow,
        job_id(subscription.id),
        SEND_TASK,
        trigger,
        args={"subscription_id": subscription.id},
        misfire_grace_seconds=MISFIRE_GRACE_SECONDS,
    )
    return subscription


def unsubscribe(
    uow: UnitOfWork, platform: str, conversation: str, frequency: DigestFrequency | None = None
) -> list[DigestSubscription]:
    removed = list_subscriptions(uow, platform=platform, conversation=conversation)
    removed = [s for s in removed if frequency is None or s.frequency is frequency]
    for subscription in removed:
        unschedule(uow, job_id(subscription.id))
        uow.session.delete(subscription)
    uow.session.flush()
    return removed


def list_subscriptions(
    uow: UnitOfWork, *, platform: str | None = None, conversation: str | None = None
) -> list[DigestSubscription]:
    statement = sa.select(DigestSubscription)
    if platform is not None:
        statement = statement.where(DigestSubscription.platform == platform)
    if conversation is not None:
        statement = statement.where(DigestSubscription.conversation == conversation)
    return list(uow.session.scalars(statement.order_by(DigestSubscription.id)))


def weekday_label(weekday: int) -> str:
    """Monday (0) to Sunday (6) as people read it in the current language."""
    return (
        pgettext("weekday", "monday"),
        pgettext("weekday", "tuesday"),
        pgettext("weekday", "wednesday"),
        pgettext("weekday", "thursday"),
        pgettext("weekday", "friday"),
        pgettext("weekday", "saturday"),
        pgettext("weekday", "sunday"),
    )[weekday]


def describe(subscription: DigestSubscription) -> str:
    """ "daily at 08:00 Europe/Berlin" / "weekly on monday at 08:00 UTC", in the current language."""
    if subscription.frequency is DigestFrequency.WEEKLY:
        return _(
            "weekly on {weekday} at {time} {timezone}",
            weekday=weekday_label(subscription.weekday),
            time=subscription.at_time,
            timezone=subscription.timezone,
        )
    return _("daily at {time} {timezone}", time=subscription.at_time, timezone=subscription.timezone)


# The digest


@dataclass(frozen=True)
class Digest:
    frequency: DigestFrequency
    timezone: str
    currency: str
    current: PeriodNumbers
    previous: PeriodNumbers
    trend: list[tuple[str, int]]
    # Each rep's customers most likely to churn (latest published churn model), riskiest first.
    at_risk: list[tuple[str, list[tuple[str, float]]]] = field(default_factory=list)
    # Campaigns that sent within the period or whose messages can still earn (attribution window).
    campaigns: list[tuple[str, Counts]] = field(default_factory=list)
    # Open deals past their expected close date at the period's end, per owner.
    deals_overdue: list[deals.OverdueDeals] = field(default_factory=list)


AT_RISK_THRESHOLD = 0.6
AT_RISK_PER_REP = 3


def at_risk_by_rep(
    session: Session, threshold: float = AT_RISK_THRESHOLD, per_rep: int = AT_RISK_PER_REP
) -> list[tuple[str, list[tuple[str, float]]]]:
    """[(rep name, [(customer name, churn risk), …]), …] for customers at or above ``threshold``."""
    rows = session.execute(
        sa.select(User.name, Customer.name, CustomerScore.churn_risk)
        .join(Customer, Customer.id == CustomerScore.customer_id)
        .join(User, User.id == Customer.owner_id)
        .where(CustomerScore.churn_risk >= threshold)
        .order_by(User.name, CustomerScore.churn_risk.desc(), Customer.name)
    ).all()
    grouped: dict[str, list[tuple[str, float]]] = {}
    for rep, customer, risk in rows:
        found = grouped.setdefault(rep, [])
        if len(found) < per_rep:
            assert risk is not None, "selected by churn_risk >= threshold"
            found.append((customer, risk))
    return list(grouped.items())


def campaign_lines(session: Session, period: Period) -> list[tuple[str, Counts]]:
    """(campaign name, totals) for campaigns with a run started before the period's end whose
    messages could still earn in it (started at most the attribution window before it)."""
    since = period.start - ATTRIBUTION_WINDOW
    found = session.scalars(
        sa.select(Campaign)
        .where(
            Campaign.id.in_(
                sa.select(CampaignRun.campaign_id).where(
                    CampaignRun.started_at >= since, CampaignRun.started_at < period.end
                )
            )
        )
        .order_by(Campaign.name)
    ).all()
    return [(campaign.name, campaign_report(session, campaign).total) for campaign in found]


def build_digest(session: Session, frequency: DigestFrequency, end_day: date, timezone: str, currency: str) -> Digest:
    """The digest for the period ending at the local midnight starting ``end_day``."""
    days = PERIOD_DAYS[frequency]
    current = local_days(end_day, days, timezone)
    previous = local_days(end_day - timedelta(days=days), days, timezone)
    buckets: list[Period] = [
        local_days(end_day - timedelta(days=days * back), days, timezone)
        for back in range(TREND_BUCKETS[frequency] - 1, -1, -1)
    ]
    trend_values = revenue_trend(session, buckets, currency)
    trend = [(bucket.label.split(" – ")[0][5:], cents) for bucket, cents in zip(buckets, trend_values, strict=True)]
    return Digest(
        frequency,
        timezone,
        currency,
        period_numbers(session, current, currency),
        period_numbers(session, previous, currency),
        trend,
        at_risk_by_rep(session),
        campaign_lines(session, current),
        # end_day is the local day the period ends before: a deal due to close before it is late.
        deals.overdue_by_owner(session, end_day),
    )


def _change(current: int | float, previous: int | float) -> str:
    difference = current - previous
    if difference == 0:
        return "±0"
    return f"+{difference:g}" if difference > 0 else f"−{abs(difference):g}"


def _percent_change(current: int, previous: int) -> str:
    if previous == 0:
        return "±0%" if current == 0 else pgettext("digest change", "new")
    change = round((current - previous) * 100 / abs(previous))
    return "±0%" if change == 0 else (f"+{change}%" if change > 0 else f"−{abs(change)}%")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return _("{minutes}m", minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        padded = f"{minutes:02d}"
        return _("{hours}h {minutes}m", hours=hours, minutes=padded)
    days, hours = divmod(hours, 24)
    return _("{days}d {hours}h", days=days, hours=hours)


def digest_context(digest: Digest, *, has_chart: bool = False) -> dict[str, Any]:
    """The data the ``digest`` template gets (plain values; see templates/digest/sample.json), its
    words, amounts, percentages and days written in the current language (the recipient's)."""
    cur, prev = digest.current, digest.previous

    def amounts(found: dict[str, int]) -> str:
        # Each currency as stored ("€300.50 + £1,200.00"), never converted or added up under one symbol.
        return format_totals(found, digest.currency)

    def change(current: dict[str, int], previous: dict[str, int]) -> str:
        shown = sorted(c for c in set(current) | set(previous) if current.get(c) or previous.get(c))
        if set(shown) <= {digest.currency}:
            return _percent_change(current.get(digest.currency, 0), previous.get(digest.currency, 0))
        return ", ".join(f"{c} {_percent_change(current.get(c, 0), previous.get(c, 0))}" for c in shown)

    return {
        "frequency": digest.frequency.value,
        "timezone": digest.timezone,
        "currency": digest.currency,
        "period": {"label": cur.period.shown(), "previous_label": prev.period.shown()},
        "customers": {
            "new": cur.new_customers,
            "previous": prev.new_customers,
            "change": _change(cur.new_customers, prev.new_customers),
        },
        "orders": {
            "count": cur.orders,
            "previous": prev.orders,
            "change": _change(cur.orders, prev.orders),
            "revenue": amounts(cur.revenue),
            "revenue_previous": amounts(prev.revenue),
            "revenue_change": change(cur.revenue, prev.revenue),
        },
        "deals": {
            "won": cur.deals_won,
            "won_previous": prev.deals_won,
            "won_change": _change(cur.deals_won, prev.deals_won),
            "won_value": amounts(cur.won),
            "lost": cur.deals_lost,
            "lost_previous": prev.deals_lost,
            "lost_change": _change(cur.deals_lost, prev.deals_lost),
        },
        "pipeline": {
            "stages": [
                {
                    "stage": s.stage,
                    "stage_label": stage_label(s.stage),
                    "deals": s.deals,
                    "value": amounts(s.amounts(digest.currency)),
                    "weighted": amounts(s.weighted(digest.currency)),
                }
                for s in cur.pipeline
            ],
            "total": amounts(cur.pipeline_totals),
            "total_previous": amounts(prev.pipeline_totals),
            "weighted": amounts(cur.weighted_totals),
            "weighted_previous": amounts(prev.weighted_totals),
            "weighted_change": change(cur.weighted_totals, prev.weighted_totals),
        },
        "funnel": [
            {
                "from": f.from_stage,
                "to": f.to_stage,
                "from_label": stage_label(f.from_stage),
                "to_label": stage_label(f.to_stage),
                "entered": f.entered,
                "moved_on": f.moved_on,
                "rate": "—" if f.rate is None else i18n.format_percent(f.rate),
            }
            for f in cur.funnel
        ],
        "tickets": {
            "opened": cur.tickets_opened,
            "opened_previous": prev.tickets_opened,
            "opened_change": _change(cur.tickets_opened, prev.tickets_opened),
            "resolved": cur.tickets_resolved,
            "resolved_previous": prev.tickets_resolved,
            "resolved_change": _change(cur.tickets_resolved, prev.tickets_resolved),
            "overdue": cur.tickets_overdue,
            "overdue_previous": prev.tickets_overdue,
            "median_first_response": format_duration(cur.median_first_response_seconds),
            "median_first_response_previous": format_duration(prev.median_first_response_seconds),
            "satisfaction": "—" if cur.satisfaction is None else i18n.format_number(cur.satisfaction, digits=1),
            "satisfaction_previous": "—"
            if prev.satisfaction is None
            else i18n.format_number(prev.satisfaction, digits=1),
            "ratings": cur.ratings,
        },
        "followups_overdue": [{"rep": r.name, "count": r.count} for r in cur.followups_overdue],
        "deals_overdue": [
            {"rep": d.owner or _("unassigned"), "count": d.count, "value": amounts(d.amounts)}
            for d in digest.deals_overdue
        ],
        "at_risk": [
            {"rep": rep, "customers": [{"name": name, "risk": i18n.format_percent(risk)} for name, risk in found]}
            for rep, found in digest.at_risk
        ],
        "campaigns": [
            {
                "name": name,
                "sent": c.sent,
                "failed": c.failed + c.blocked,
                "pending": c.pending,
                "opted_out": c.opted_out + c.opted_out_after,
                "orders": c.orders,
                "revenue": amounts(c.revenue),
            }
            for name, c in digest.campaigns
        ],
        "has_chart": has_chart,
    }


def draw_chart(digest: Digest, config: dict[str, str] | None, name: str) -> Path | None:
    """The chart PNG, or None (logged) if drawing fails: the numbers still go out."""
    try:
        return draw_digest_chart(
            chart_path(config, name),
            title=_digest_title(digest),
            currency=digest.currency,
            trend=digest.trend,
            pipeline=[(s.stage, s.amount_cents) for s in digest.current.pipeline],
        )
    except Exception:  # noqa: BLE001 - a chart is an extra; never lose the digest over it
        log.exception("drawing the digest chart %s failed", name)
        return None


def _digest_title(digest: Digest) -> str:
    if digest.frequency is DigestFrequency.WEEKLY:
        return _("Weekly digest · {period}", period=digest.current.period.shown())
    return _("Daily digest · {period}", period=digest.current.period.shown())


def image_payload(path: Path, digest: Digest) -> PayloadImage:
    period = digest.current.period.shown()
    return PayloadImage(
        path=str(path),
        title=_("Digest {period}", period=period),
        alt_text=_("Revenue trend and open pipeline by stage, {period}", period=period),
    )


def send_digest(run: JobRun) -> None:
    """Scheduled task: the digest of one subscription, for the period before the day it fires."""
    with run.uow() as uow:
        subscription = uow.session.get(DigestSubscription, run.args["subscription_id"])
        if subscription is None:
            return
        # Everything the digest writes (chart title, amounts, days, words) is in the subscriber's language.
        with i18n.use_language(subscription.language):
            _send(uow, run, subscription)


def _send(uow: UnitOfWork, run: JobRun, subscription: DigestSubscription) -> None:
    end_day = run.fire_time.astimezone(clock.zone(subscription.timezone)).date()
    currency = run.config.get("CHATCRM_CURRENCY", "EUR")
    digest = build_digest(uow.session, subscription.frequency, end_day, subscription.timezone, currency)
    key = f"digest:{subscription.id}:{digest.current.period.start.isoformat()}"
    if uow.session.scalar(sa.select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)):
        return  # this period's digest is already on its way
    chart = draw_chart(
        digest,
        dict(run.config),
        f"digest-{subscription.id}-{subscription.frequency}-{digest.current.period.start.date()}",
    )
    rendered = render_message(
        uow.session,
        DIGEST_TEMPLATE,
        subscription.platform,
        subscription.language,
        digest_context(digest, has_chart=chart is not None),
    )
    payload = rendered.payload(image=image_payload(chart, digest) if chart is not None else None)
    outbox.enqueue(
        uow,
        idempotency_key=key,
        kind="digest",
        platform=subscription.platform,
        conversation=subscription.conversation,
        payload=payload,
    )
