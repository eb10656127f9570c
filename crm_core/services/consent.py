"""Customers' consent to campaign messages, per platform: opting in, opting out, and who may be sent to.

A customer is reachable on a platform only while their consent row there says ``opted_in``:
Telegram customers opt in by starting the bot; a Slack shared channel is opted in when an admin
records it. Opting out (``/stop``, the unsubscribe button, blocking the bot, or staff recording
it) takes effect at once: in the same transaction every campaign message to them that has not
gone out yet is cancelled, and the sender re-checks consent right before each campaign message.
Every change lands in the audit log with its time and source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import platforms
from crm_core.clock import utcnow
from crm_core.errors import ValidationError
from crm_core.i18n import _
from crm_core.models import Consent, ConsentStatus, CustomerChat, OutboxMessage, OutboxStatus, chat_ids
from crm_core.outbox import unblock_recipient
from crm_core.uow import UnitOfWork

# The outbox kinds consent governs: messages the customer did not ask for.
CAMPAIGN_KINDS = ("campaign",)
OPTED_OUT_ERROR = "opted out"


@dataclass(frozen=True)
class OptOut:
    customers: int
    # Campaign messages that were waiting and are now cancelled.
    cancelled: int


def consent_of(uow: UnitOfWork, customer_id: int, platform: str) -> Consent | None:
    return uow.session.scalars(
        sa.select(Consent).where(Consent.customer_id == customer_id, Consent.platform == platform)
    ).one_or_none()


def opt_in(
    uow: UnitOfWork, customer_id: int, platform: str, conversation: str, source: str, now: datetime | None = None
) -> Consent:
    """Record that the customer may get campaign messages on ``platform`` at ``conversation``."""
    allowed = platforms.consent_platforms()
    if platform not in allowed:
        if not allowed:
            raise ValidationError(_("consent is recorded for no installed platform, not {platform}", platform=platform))
        raise ValidationError(
            _(
                "consent is recorded for {platforms}, not {platform}",
                platforms=_(" or ").join(allowed),
                platform=platform,
            )
        )
    now = now or utcnow()
    row = consent_of(uow, customer_id, platform)
    if row is None:
        row = Consent(
            customer_id=customer_id, platform=platform, conversation=conversation, status=ConsentStatus.OPTED_IN
        )
        uow.session.add(row)
    elif row.status is ConsentStatus.OPTED_IN and row.conversation == conversation:
        return row
    row.status, row.conversation = ConsentStatus.OPTED_IN, conversation
    row.opted_in_at, row.opted_in_source = now, source[:100]
    # Someone who blocked the bot and comes back may be written to again.
    unblock_recipient(uow.session, platform, conversation)
    uow.session.flush()
    return row


def _cancel_pending(uow: UnitOfWork, customer_ids: list[int], platform: str) -> int:
    o = OutboxMessage
    return uow.session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
        sa.update(o)
        .where(
            o.customer_id.in_(customer_ids),
            o.platform == platform,
            o.kind.in_(CAMPAIGN_KINDS),
            o.status.in_([OutboxStatus.PENDING, OutboxStatus.HELD]),
        )
        .values(status=OutboxStatus.CANCELLED, last_error=OPTED_OUT_ERROR)
        .execution_options(synchronize_session=False)
    ).rowcount


def opt_out_customer(
    uow: UnitOfWork,
    customer_id: int,
    platform: str,
    source: str,
    conversation: str | None = None,
    now: datetime | None = None,
) -> OptOut:
    """Stop campaign messages to a customer on ``platform`` (recorded even without an earlier opt-in,
    so a later import cannot make them reachable by accident)."""
    now = now or utcnow()
    row = consent_of(uow, customer_id, platform)
    if row is None:
        if conversation is None:
            chat = uow.session.scalars(
                sa.select(CustomerChat).where(
                    CustomerChat.customer_id == customer_id, CustomerChat.platform == platform
                )
            ).first()
            conversation = chat.conversation if chat is not None else ""
        row = Consent(
            customer_id=customer_id, platform=platform, conversation=conversation, status=ConsentStatus.OPTED_OUT
        )
        uow.session.add(row)
    if row.status is not ConsentStatus.OPTED_OUT or row.opted_out_at is None:
        row.status, row.opted_out_at, row.opted_out_source = ConsentStatus.OPTED_OUT, now, source[:100]
    uow.session.flush()
    return OptOut(1, _cancel_pending(uow, [customer_id], platform))


def opt_out_address(
    uow: UnitOfWork,
    platform: str,
    conversation: str,
    source: str,
    user_external_id: str | None = None,
    now: datetime | None = None,
) -> OptOut:
    """``/stop`` or the unsubscribe button, from a chat: whoever gets our campaign messages there.

    In a private Telegram chat that is the customer behind the chat (by their user id); in a Slack
    shared channel, every customer whose consent points at that channel.
    """
    customer_ids = set(
        uow.session.scalars(
            sa.select(Consent.customer_id).where(
                Consent.platform == platform, chat_ids.is_chat(uow.session, Consent.conversation_index, conversation)
            )
        )
    )
    if user_external_id is not None:
        customer_ids |= set(
            uow.session.scalars(
                sa.select(CustomerChat.customer_id).where(
                    CustomerChat.platform == platform,
                    chat_ids.is_chat(uow.session, CustomerChat.external_id_index, user_external_id),
                )
            )
        )
    cancelled = 0
    for customer_id in sorted(customer_ids):
        cancelled += opt_out_customer(uow, customer_id, platform, source, conversation=conversation, now=now).cancelled
    return OptOut(len(customer_ids), cancelled)


def reachable(session: Session, customer_id: int, platform: str, conversation: str) -> bool:
    """Whether a campaign message may go to this customer at this address now."""
    return (
        session.execute(
            sa.select(sa.func.count())
            .select_from(Consent)
            .where(
                Consent.customer_id == customer_id,
                Consent.platform == platform,
                chat_ids.is_chat(session, Consent.conversation_index, conversation),
                Consent.status == ConsentStatus.OPTED_IN,
            )
        ).scalar_one()
        > 0
    )


def consents_of(uow: UnitOfWork, customer_id: int) -> list[Consent]:
    return list(
        uow.session.scalars(sa.select(Consent).where(Consent.customer_id == customer_id).order_by(Consent.platform))
    )
