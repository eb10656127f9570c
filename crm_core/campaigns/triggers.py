"""Trigger campaigns: a templated message to a customer some time after an event of theirs.

Events: ``first_order`` (their first purchase; once per customer) and ``ticket_resolved`` (each
resolved ticket). Every scan (a scheduler job per campaign, every few minutes) finds the events
whose delay has passed since the campaign started, and sends them as one run; a customer gets
one message per event however many scans see it (recipient rows are unique per campaign and
event). Only events after the campaign started count, so starting one does not write to every
customer who ever ordered.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from crm_core.campaigns.audience import customers_of
from crm_core.campaigns.delivery import (
    emit_started,
    enqueue_run,
    freeze_recipients,
    locked_campaign,
    next_run_number,
)
from crm_core.clock import as_utc, utcnow
from crm_core.models import (
    Campaign,
    CampaignRecipient,
    CampaignRun,
    CampaignStatus,
    Consent,
    ConsentStatus,
    Customer,
    Ticket,
    TicketStatus,
)
from crm_core.scheduling import JobRun
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.campaigns")
# How many events one scan sends at most (the rest go with the next scan).
SCAN_LIMIT = 5000


def due_events(uow: UnitOfWork, campaign: Campaign, now: datetime) -> dict[int, str]:
    """customer id -> event key, for events due now that the campaign has not answered yet (one
    event per customer per scan; a second resolved ticket waits for the next scan)."""
    delay = timedelta(minutes=campaign.trigger_delay_minutes or 0)
    since = as_utc(campaign.started_at) if campaign.started_at else now
    # Only customers the campaign can reach: the others would be found again at every scan.
    in_segment = customers_of(uow.session, campaign).where(
        Customer.id.in_(sa.select(Consent.customer_id).where(Consent.status == ConsentStatus.OPTED_IN))
    )
    answered = sa.select(CampaignRecipient.event_key).where(
        CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.event_key.is_not(None)
    )
    found: dict[int, str] = {}
    if campaign.trigger_event == "first_order":
        rows = uow.session.execute(
            sa.select(Customer.id)
            .where(
                Customer.first_order_at >= since,
                Customer.first_order_at <= now - delay,
                Customer.id.in_(in_segment),
                (sa.literal("first_order:") + sa.cast(Customer.id, sa.String)).not_in(answered),
            )
            .order_by(Customer.id)
            .limit(SCAN_LIMIT)
        )
        found = {cid: f"first_order:{cid}" for (cid,) in rows}
    elif campaign.trigger_event == "ticket_resolved":
        resolved = uow.session.execute(
            sa.select(Ticket.customer_id, Ticket.id)
            .where(
                Ticket.resolved_at >= since,
                Ticket.resolved_at <= now - delay,
                Ticket.status.in_([TicketStatus.RESOLVED, TicketStatus.CLOSED]),
                Ticket.customer_id.in_(in_segment),
                (sa.literal("ticket:") + sa.cast(Ticket.id, sa.String)).not_in(answered),
            )
            .order_by(Ticket.id)
            .limit(SCAN_LIMIT)
        )
        for customer_id, ticket_id in resolved:
            found.setdefault(customer_id, f"ticket:{ticket_id}")
    return found


def scan(uow: UnitOfWork, campaign: Campaign, now: datetime | None = None) -> CampaignRun | None:
    """Send the due events' messages as one run; None when nothing is due."""
    now = now or utcnow()
    events = due_events(uow, campaign, now)
    if not events:
        return None
    run = CampaignRun(
        campaign_id=campaign.id, number=next_run_number(uow.session, campaign.id), scheduled_for=now, started_at=now
    )
    uow.session.add(run)
    uow.session.flush()
    run.recipients = freeze_recipients(
        uow, campaign, run, sa.select(Customer.id).where(Customer.id.in_(list(events))), events
    )
    enqueue_run(uow, run, not_before=now)
    campaign.status = CampaignStatus.SENDING
    emit_started(uow, campaign, run)
    log.info("trigger campaign %s: %d events, %d reachable", campaign.name, len(events), run.recipients)
    return run


def scan_task(run: JobRun) -> None:
    with run.uow() as uow:
        campaign = locked_campaign(uow, int(run.args["campaign_id"]))
        if campaign is None or campaign.status not in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING):
            return
        scan(uow, campaign, run.fire_time)
