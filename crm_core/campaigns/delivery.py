"""Sending a campaign: freeze a run's recipients, queue their messages, render each right before
it goes out, and settle what happened.

- ``run_task`` (a scheduled job per campaign) starts the run for its fire time. The run row is
  unique per campaign and time, so a retried or repeated job run sends nothing twice. Freezing
  and queueing are two INSERT … SELECT statements in one transaction: the recipients are the
  segment's customers with consent on a platform (Telegram first, then Slack), one row each;
  the outbox gets one row per recipient whose payload says "render me when you send me".
- ``prepare_message`` is what the outbox sender calls for such a row just before sending: it
  re-checks the campaign (paused → the row is held; cancelled → cancelled) and the recipient's
  consent (opted out → cancelled), then renders the template with the recipient's current data.
- ``settle`` copies final outcomes from the outbox onto the recipient rows and finishes runs
  whose messages are all final; ``tick_task`` does that every few seconds and refreshes the
  live status messages (crm_core.campaigns.watch).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import events
from crm_core.campaigns.audience import eligible
from crm_core.campaigns.rendering import CampaignRenderer, Recipient, contexts
from crm_core.clock import utcnow
from crm_core.models import (
    BlockedRecipient,
    Campaign,
    CampaignRecipient,
    CampaignRun,
    CampaignStatus,
    OutboxMessage,
    OutboxStatus,
    RecipientStatus,
    RunStatus,
)
from crm_core.outbox import Claimed, Withheld
from crm_core.outbox_payload import MessagePayload
from crm_core.scheduling import JobRun
from crm_core.services import consent
from crm_core.services.consent import OPTED_OUT_ERROR
from crm_core.templating import TemplateRefused
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.campaigns")

KIND = "campaign"
# The outbox payload of a campaign row until the sender renders it.
DEFERRED_PAYLOAD = MessagePayload(deferred=KIND).to_json()
FINAL = (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.BLOCKED, OutboxStatus.CANCELLED)
IN_FLIGHT = (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.HELD)
CAMPAIGN_CANCELLED = "campaign cancelled"


def outbox_key(recipient_id: int) -> str:
    return f"campaign:{recipient_id}"


def freeze_recipients(
    uow: UnitOfWork,
    campaign: Campaign,
    run: CampaignRun,
    customer_ids: sa.Select | None = None,
    event_keys: dict[int, str] | None = None,
) -> int:
    """Add the run's recipients (crm_core.campaigns.audience.eligible: the segment's, or
    ``customer_ids``', customers with consent), one row each, in one INSERT … SELECT. Returns how many."""
    chosen = eligible(uow.session, campaign, customer_ids).subquery()
    now = utcnow()
    rows = sa.select(
        sa.literal(run.id),
        sa.literal(campaign.id),
        chosen.c.customer_id,
        chosen.c.platform,
        # The encrypted id and its blind index are copied as stored (crm_core.models.chat_ids).
        chosen.c.conversation,
        chosen.c.conversation_index,
        chosen.c.language,
        sa.literal(RecipientStatus.QUEUED.value),
        sa.literal(now, type_=CampaignRecipient.created_at.type),
    )
    uow.session.execute(
        sa.insert(CampaignRecipient).from_select(
            [
                "run_id",
                "campaign_id",
                "customer_id",
                "platform",
                "conversation",
                "conversation_index",
                "language",
                "status",
                "created_at",
            ],
            rows,
        )
    )
    if event_keys:
        # Trigger runs: which event each recipient answers (unique per campaign and event).
        for customer_id, key in event_keys.items():
            uow.session.execute(
                sa.update(CampaignRecipient)
                .where(CampaignRecipient.run_id == run.id, CampaignRecipient.customer_id == customer_id)
                .values(event_key=key)
                .execution_options(synchronize_session=False)
            )
    # (INSERT … SELECT's rowcount is not reported by every driver.)
    return uow.session.execute(sa.select(sa.func.count()).where(CampaignRecipient.run_id == run.id)).scalar_one()


def enqueue_run(uow: UnitOfWork, run: CampaignRun, not_before: datetime) -> int:
    """One outbox row per recipient of the run (blocked recipients are recorded as blocked at once).
    Returns the run's recipient count."""
    r = CampaignRecipient
    blocked = (
        sa.select(BlockedRecipient.platform)
        .where(BlockedRecipient.platform == r.platform, BlockedRecipient.conversation_index == r.conversation_index)
        .exists()
    )
    now = utcnow()
    time_type = OutboxMessage.not_before.type
    rows = sa.select(
        sa.literal("campaign:") + sa.cast(r.id, sa.String),
        sa.literal(KIND),
        r.platform,
        r.conversation,
        r.conversation_index,
        sa.literal(DEFERRED_PAYLOAD, type_=sa.JSON),
        sa.case((blocked, OutboxStatus.BLOCKED.value), else_=OutboxStatus.PENDING.value),
        sa.case((blocked, "recipient is blocked"), else_=sa.null()),
        sa.literal(0),
        sa.literal(not_before, type_=time_type),
        sa.literal(now, type_=time_type),
        r.customer_id,
        r.id,
    ).where(r.run_id == run.id)
    uow.session.execute(
        sa.insert(OutboxMessage).from_select(
            [
                "idempotency_key",
                "kind",
                "platform",
                "conversation",
                "conversation_index",
                "payload",
                "status",
                "last_error",
                "attempts",
                "not_before",
                "created_at",
                "customer_id",
                "ref_id",
            ],
            rows,
        )
    )
    _refresh_statistics(uow.session, run.recipients)
    return run.recipients


# A run at least this large refreshes PostgreSQL's statistics of the tables it filled.
ANALYZE_OVER = 1000


def _refresh_statistics(session: Session, added: int) -> None:
    """After thousands of rows arrive at once, PostgreSQL's planner still believes the outbox holds
    next to no pending rows until autovacuum analyses it (a minute later, or never when it is off),
    and plans the sender's claim as a nested loop over every due row and every row in flight:
    seconds per claim with 10,000 queued. ANALYZE in this transaction counts its own new rows, and
    the statistics become visible with them."""
    if added >= ANALYZE_OVER and session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text(f"ANALYZE {OutboxMessage.__tablename__}, {CampaignRecipient.__tablename__}"))


def next_run_number(session: Session, campaign_id: int) -> int:
    return (
        session.scalar(sa.select(sa.func.max(CampaignRun.number)).where(CampaignRun.campaign_id == campaign_id)) or 0
    ) + 1


def start_run(uow: UnitOfWork, campaign: Campaign, scheduled_for: datetime) -> CampaignRun | None:
    """Freeze and queue the run for ``scheduled_for``; None when that run exists already."""
    existing = uow.session.scalars(
        sa.select(CampaignRun).where(CampaignRun.campaign_id == campaign.id, CampaignRun.scheduled_for == scheduled_for)
    ).one_or_none()
    if existing is not None:
        return None
    run = CampaignRun(
        campaign_id=campaign.id,
        number=next_run_number(uow.session, campaign.id),
        scheduled_for=scheduled_for,
        started_at=utcnow(),
    )
    uow.session.add(run)
    uow.session.flush()
    run.recipients = freeze_recipients(uow, campaign, run)
    enqueue_run(uow, run, not_before=utcnow())
    campaign.status = CampaignStatus.SENDING
    emit_started(uow, campaign, run)
    log.info("campaign %s run %s: %s recipients queued", campaign.name, run.number, run.recipients)
    return run


def _run_facts(campaign: Campaign, run: CampaignRun) -> dict[str, Any]:
    return {
        "campaign_id": campaign.id,
        "campaign": campaign.name,
        "run_id": run.id,
        "run_number": run.number,
        "recipients": run.recipients,
    }


def emit_started(uow: UnitOfWork, campaign: Campaign, run: CampaignRun) -> None:
    """campaign.started, in the transaction that froze and queued the run."""
    events.emit(
        uow,
        "campaign.started",
        entity_type="campaign",
        entity_id=campaign.id,
        payload={
            **_run_facts(campaign, run),
            "scheduled_for": run.scheduled_for.isoformat(),
            "trigger": campaign.trigger_event,
        },
    )


def locked_campaign(uow: UnitOfWork, campaign_id: int) -> Campaign | None:
    """The campaign, locked until the transaction ends (PostgreSQL), so a pause or cancel and a run
    starting do not interleave."""
    uow.session.execute(sa.select(Campaign.id).where(Campaign.id == campaign_id).with_for_update())
    return uow.session.get(Campaign, campaign_id)


def run_task(run: JobRun) -> None:
    """Scheduled task: one run of campaign ``args["campaign_id"]`` for the job's fire time."""
    with run.uow() as uow:
        campaign = locked_campaign(uow, int(run.args["campaign_id"]))
        if campaign is None or campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.DRAFT):
            return
        if campaign.status is CampaignStatus.PAUSED:
            # A paused recurring campaign skips its run; resuming does not send old runs late.
            log.info("campaign %s is paused: the run due %s is skipped", campaign.name, run.fire_time)
            return
        start_run(uow, campaign, run.fire_time)


# -- right before sending -------------------------------------------------------------------------


def prepare_message(session: Session, row: Claimed, currency: str = "EUR") -> dict[str, Any] | Withheld:
    """The payload of a campaign row, rendered now; or why it is not to be sent."""
    recipient = session.get(CampaignRecipient, _recipient_id(row))
    if recipient is None:
        return Withheld(OutboxStatus.CANCELLED, "the recipient was deleted")
    campaign = session.get(Campaign, recipient.campaign_id)
    if campaign is None or campaign.status is CampaignStatus.CANCELLED:
        return Withheld(OutboxStatus.CANCELLED, CAMPAIGN_CANCELLED)
    if campaign.status is CampaignStatus.PAUSED:
        return Withheld(OutboxStatus.HELD, "campaign paused")
    if not consent.reachable(session, recipient.customer_id, recipient.platform, recipient.conversation):
        return Withheld(OutboxStatus.CANCELLED, OPTED_OUT_ERROR)
    context = contexts(session, campaign, [recipient.customer_id], currency).get(recipient.customer_id)
    if context is None:
        return Withheld(OutboxStatus.CANCELLED, "the customer was deleted")
    target = Recipient(
        recipient.customer_id,
        recipient.platform,
        recipient.conversation,
        recipient.language,
        recipient.event_key,
        recipient.id,
    )
    try:
        return CampaignRenderer(session, campaign).payload(target, context).to_json()
    except TemplateRefused as exc:
        return Withheld(OutboxStatus.FAILED, f"the template failed for this recipient: {exc}")


def _recipient_id(row: Claimed) -> int:
    return int(row.idempotency_key.rsplit(":", 1)[1])


# -- settling -------------------------------------------------------------------------------------


PENDING = "pending"


def outcome() -> sa.ColumnElement[str]:
    """A recipient's outcome as a RecipientStatus value, or "pending" while its message is in
    flight: the settled status once copied, else read from its outbox row (joined as ``outbox``).
    ``settle`` writes it; reports count by it."""
    r, o = CampaignRecipient, OutboxMessage
    return sa.case(
        (r.status != RecipientStatus.QUEUED, r.status),
        (sa.or_(o.status.is_(None), o.status.in_(IN_FLIGHT)), PENDING),
        (o.status == OutboxStatus.SENT, RecipientStatus.SENT.value),
        (o.status == OutboxStatus.FAILED, RecipientStatus.FAILED.value),
        (o.status == OutboxStatus.BLOCKED, RecipientStatus.BLOCKED.value),
        (o.last_error == OPTED_OUT_ERROR, RecipientStatus.OPTED_OUT.value),
        else_=RecipientStatus.CANCELLED.value,
    )


def settle(uow: UnitOfWork, run_ids: list[int] | None = None) -> int:
    """Copy final outcomes onto queued recipient rows; finish runs (and campaigns) with nothing in
    flight. Returns how many recipients were settled."""
    session = uow.session
    r, o = CampaignRecipient, OutboxMessage
    runs = (
        run_ids
        if run_ids is not None
        else list(session.scalars(sa.select(CampaignRun.id).where(CampaignRun.status == RunStatus.SENDING)))
    )
    settled = 0
    for run_id in runs:
        settled += session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
            sa.update(r)
            .where(
                r.run_id == run_id,
                r.status == RecipientStatus.QUEUED,
                o.ref_id == r.id,
                o.kind == KIND,
                o.status.in_(FINAL),
            )
            .values(status=outcome(), sent_at=o.sent_at, error=o.last_error)
            .execution_options(synchronize_session=False)
        ).rowcount
        left = session.scalar(sa.select(sa.func.count()).where(r.run_id == run_id, r.status == RecipientStatus.QUEUED))
        if left == 0:
            _finish_run(session, run_id)
    return settled


def _finish_run(session: Session, run_id: int) -> None:
    run = session.get(CampaignRun, run_id)
    if run is None or run.status is not RunStatus.SENDING:
        return
    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None, "a run's campaign exists (foreign key)"
    run.status = RunStatus.CANCELLED if campaign.status is CampaignStatus.CANCELLED else RunStatus.DONE
    run.finished_at = utcnow()
    if campaign.status is CampaignStatus.SENDING:
        recurring = campaign.repeat is not None or campaign.trigger_event is not None
        campaign.status = CampaignStatus.SCHEDULED if recurring else CampaignStatus.DONE
    outcomes = dict(
        session.execute(
            sa.select(CampaignRecipient.status, sa.func.count())
            .where(CampaignRecipient.run_id == run.id)
            .group_by(CampaignRecipient.status)
        ).all()
    )
    events.emit(
        session,
        "campaign.finished",
        entity_type="campaign",
        entity_id=campaign.id,
        payload={
            **_run_facts(campaign, run),
            "status": str(run.status),
            **{
                status.value: outcomes.get(status, 0)
                for status in (
                    RecipientStatus.SENT,
                    RecipientStatus.FAILED,
                    RecipientStatus.BLOCKED,
                    RecipientStatus.OPTED_OUT,
                    RecipientStatus.CANCELLED,
                )
            },
        },
    )


def tick_task(run: JobRun) -> None:
    """Scheduled every few seconds: settle runs in flight and refresh live status messages."""
    from crm_core.campaigns import watch

    with run.uow() as uow:
        settle(uow)
    with run.uow() as uow:
        watch.refresh(uow, currency=run.config.get("CHATCRM_CURRENCY", "EUR"))
