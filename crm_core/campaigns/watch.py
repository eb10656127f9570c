"""Live status cards: a ``/campaign status`` message that is edited in place while the campaign sends.

``watch`` posts the first version through the outbox; ``refresh`` (every few seconds, from the
campaign tick) posts a new version when the numbers changed, as an edit of the first message
(outbox payload ``replace``: the platform message id the first version got). A version waits
until the previous one went out, so a slow platform never gets a pile of edits; the card's last
version, with what the campaign earned, is sent when no run is in flight any more.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from crm_core import i18n, outbox, platforms
from crm_core.campaigns.reporting import (
    ATTRIBUTION_WINDOW,
    CampaignReport,
    campaign_report,
    progress_bar,
    status_label,
)
from crm_core.models import (
    Campaign,
    CampaignRun,
    CampaignStatus,
    CampaignWatch,
    OutboxMessage,
    OutboxStatus,
    RunStatus,
)
from crm_core.money import format_totals
from crm_core.templating import render_message
from crm_core.uow import UnitOfWork

TEMPLATE = "status_card"
KIND = "campaign_status"


def _describe(campaign: Campaign) -> str:
    from crm_core.campaigns.service import describe

    return describe(campaign)


def status_context(campaign: Campaign, report: CampaignReport, currency: str, *, finished: bool) -> dict[str, Any]:
    """The ``status_card`` template's data, its words and figures in the current language."""
    latest = report.runs[-1] if report.runs else None
    counts = report.total
    return {
        "campaign": {
            "name": campaign.name,
            "status": str(campaign.status),
            "status_label": status_label(campaign.status),
            "describe": _describe(campaign),
        },
        "run": None
        if latest is None
        else {
            "number": latest.number,
            "runs": len(report.runs),
            "recipients": latest.counts.recipients,
            "bar": progress_bar(latest.counts.finished, latest.counts.recipients),
        },
        "counts": {
            "recipients": counts.recipients,
            "pending": counts.pending,
            "sent": counts.sent,
            "failed": counts.failed,
            "blocked": counts.blocked,
            "opted_out": counts.opted_out,
            "cancelled": counts.cancelled,
            "opted_out_after": counts.opted_out_after,
            "orders": counts.orders,
            "revenue": format_totals(counts.revenue, currency) if counts.orders else None,
        },
        "finished": finished,
        "attribution_days": ATTRIBUTION_WINDOW.days,
    }


def in_flight(uow: UnitOfWork, campaign: Campaign) -> bool:
    return (
        uow.session.execute(
            sa.select(sa.func.count()).where(
                CampaignRun.campaign_id == campaign.id, CampaignRun.status == RunStatus.SENDING
            )
        ).scalar_one()
        > 0
    )


def _key(row: CampaignWatch, version: int) -> str:
    return f"campaign-watch:{row.id}:{version}"


def _queue_version(
    uow: UnitOfWork,
    row: CampaignWatch,
    campaign: Campaign,
    report: CampaignReport,
    currency: str,
    *,
    finished: bool,
    replace: str | None,
) -> None:
    # The card is written in the language of whoever asked for it, also when the tick edits it later.
    with i18n.use_language(row.language):
        text_context = status_context(campaign, report, currency, finished=finished)
        rendered = render_message(uow.session, TEMPLATE, row.platform, row.language, text_context)
    if rendered.text == row.last_text:
        return
    row.version += 1
    row.last_text = rendered.text
    payload = rendered.payload(replace=replace)
    outbox.enqueue(
        uow,
        idempotency_key=_key(row, row.version),
        kind=KIND,
        platform=row.platform,
        conversation=row.conversation,
        payload=payload,
    )


def watch(
    uow: UnitOfWork, campaign: Campaign, platform: str, conversation: str, language: str | None, currency: str = "EUR"
) -> CampaignWatch | None:
    """Post a live card here; None when this platform's messages cannot be edited."""
    if platform not in platforms.editable_platforms():
        return None
    row = CampaignWatch(campaign_id=campaign.id, platform=platform, conversation=conversation, language=language)
    uow.session.add(row)
    uow.session.flush()
    report = campaign_report(uow.session, campaign, attribution=False)
    _queue_version(uow, row, campaign, report, currency, finished=False, replace=None)
    return row


def refresh(uow: UnitOfWork, currency: str = "EUR") -> int:
    """Queue a new version of every live card whose numbers changed; returns how many were queued."""
    queued = 0
    for row in uow.session.scalars(sa.select(CampaignWatch).where(CampaignWatch.finished.is_(False))):
        campaign = uow.session.get(Campaign, row.campaign_id)
        if campaign is None:
            row.finished = True
            continue
        first = uow.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.idempotency_key == _key(row, 1))
        ).one_or_none()
        latest = uow.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.idempotency_key == _key(row, row.version))
        ).one_or_none()
        if first is None or first.status in (OutboxStatus.FAILED, OutboxStatus.BLOCKED, OutboxStatus.CANCELLED):
            row.finished = True  # the card never arrived: nothing to edit
            continue
        if latest is None or latest.status is not OutboxStatus.SENT or not first.platform_message_id:
            continue  # the previous version is still on its way
        finished = not (in_flight(uow, campaign) or campaign.status is CampaignStatus.SENDING)
        report = campaign_report(uow.session, campaign, attribution=finished)
        before = row.version
        _queue_version(uow, row, campaign, report, currency, finished=finished, replace=first.platform_message_id)
        queued += row.version - before
        row.finished = finished
    return queued
