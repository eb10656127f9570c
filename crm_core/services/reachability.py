"""Whether a chat can still be written to: unreachable recipients, their return, and moved chats.

- **Unreachable** (Telegram 403 "bot was blocked by the user", 400 "chat not found"; Slack
  ``channel_not_found``, ``is_archived``, ``account_inactive``, ...): in one transaction the
  recipient is remembered as blocked (its waiting messages are blocked, later ones are blocked on
  enqueue) and every customer reached there is opted out of campaigns, with the source
  ``blocked (<reason>)`` in the consent row and the audit log; their waiting campaign messages
  are cancelled as ``/stop`` would.
- **Back**: a message from a blocked chat lifts the block, so support answers reach them again.
  Consent stays opted out until they opt in again (``/start``): writing to support is not
  consent to marketing.
- **Moved** (a Telegram group upgraded to a supergroup gets a new chat id): every place that
  keeps the old id is updated to the new one, and the message that found out is sent again there.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from crm_core import field_crypto, outbox
from crm_core.models import (
    CampaignRecipient,
    CampaignWatch,
    Consent,
    CustomerChat,
    DigestSubscription,
    ExternalThread,
    FormSession,
    OutboxMessage,
    OutboxStatus,
    TicketMessage,
    chat_ids,
)
from crm_core.models.campaigns import RecipientStatus
from crm_core.outbox import Claimed
from crm_core.services import consent
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.outbox")


def customers_at(session: Session, platform: str, conversation: str) -> set[int]:
    """The customers we write to at this address: their chat with us, or their consent points there."""
    chats = sa.select(CustomerChat.customer_id).where(
        CustomerChat.platform == platform, chat_ids.is_chat(session, CustomerChat.conversation_index, conversation)
    )
    consents = sa.select(Consent.customer_id).where(
        Consent.platform == platform, chat_ids.is_chat(session, Consent.conversation_index, conversation)
    )
    return set(session.scalars(chats)) | set(session.scalars(consents))


def recipient_unreachable(uow: UnitOfWork, platform: str, conversation: str, reason: str) -> int:
    """Opt out the customers at this address and block it (in the caller's transaction). Returns
    how many customers were opted out."""
    customer_ids = sorted(customers_at(uow.session, platform, conversation))
    source = f"blocked ({reason})"[:100]
    for customer_id in customer_ids:
        # First, so their waiting campaign messages are cancelled as by /stop, not merely blocked.
        consent.opt_out_customer(uow, customer_id, platform, source, conversation=conversation)
    outbox.block_recipient(uow.session, platform, conversation, reason)
    return len(customer_ids)


def mark_blocked(session_factory: sessionmaker[Session], message: Claimed, owner: str, reason: str) -> int:
    """The outbox sender's outcome for an unreachable recipient: this row is blocked, the recipient
    is blocked and its customers opted out, all in one transaction. Returns customers opted out."""
    with UnitOfWork(session_factory) as uow:
        outbox.block_held(uow.session, message.id, owner, reason)
        return recipient_unreachable(uow, message.platform, message.conversation, reason)


def recipient_wrote(uow: UnitOfWork, platform: str, conversation: str) -> bool:
    """Someone wrote to us from this chat, so it is reachable again: lift a block (consent unchanged)."""
    return outbox.unblock_recipient(uow.session, platform, conversation)


def chat_moved(uow: UnitOfWork, platform: str, old: str, new: str) -> None:
    """Move every reference to chat ``old`` to ``new`` (in the caller's transaction): waiting
    messages, consents, customer chats, digest subscriptions, live campaign cards, campaign
    recipients still queued, ticket relays and ticket threads. Forms in progress there are dropped (they were
    asked in the old chat)."""
    session = uow.session
    new_index = chat_ids.blind(field_crypto.keys_for(session), new)

    def move(model, *conditions) -> None:  # noqa: ANN001 - any model with platform and conversation
        if model.__tablename__ in chat_ids.INDEXED:
            # An encrypted chat id (crm_core.models.chat_ids): found, and moved, with its blind index.
            where = chat_ids.is_chat(session, model.conversation_index, old)
            values = {"conversation": new, "conversation_index": new_index}
        else:
            where, values = model.conversation == old, {"conversation": new}
        session.execute(
            sa.update(model)
            .where(model.platform == platform, where, *conditions)
            .values(values)
            .execution_options(synchronize_session=False)
        )

    # Rows in flight too: their sender hears "moved" for the old id and puts them back for the new.
    move(OutboxMessage, OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.HELD, OutboxStatus.SENDING]))
    move(Consent)
    move(CustomerChat)
    move(CampaignWatch)
    move(CampaignRecipient, CampaignRecipient.status == RecipientStatus.QUEUED)
    # A subscription the new chat already has wins over the old chat's copy (one per frequency).
    digests = DigestSubscription
    taken = list(
        session.scalars(sa.select(digests.frequency).where(digests.platform == platform, digests.conversation == new))
    )
    if taken:
        session.execute(
            sa.delete(digests).where(
                digests.platform == platform, digests.conversation == old, digests.frequency.in_(taken)
            )
        )
    move(DigestSubscription)
    move(ExternalThread)
    session.execute(
        sa.update(TicketMessage)
        .where(TicketMessage.channel == platform, TicketMessage.relay_conversation == old)
        .values(relay_conversation=new)
        .execution_options(synchronize_session=False)
    )
    session.execute(sa.delete(FormSession).where(FormSession.platform == platform, FormSession.conversation == old))
    log.warning(
        "%s chat %s moved to %s (a group upgraded to a supergroup); the CRM now writes there. If it is "
        "configured anywhere (e.g. TELEGRAM_SUPPORT_CHAT_ID), set it to %s.",
        platform,
        old,
        new,
        new,
    )


def resend_moved(session_factory: sessionmaker[Session], message: Claimed, owner: str, new: str) -> bool:
    """The outbox sender's outcome for a moved chat: every reference is moved, and this row goes back
    to pending for the new chat id (not counted as an attempt). False if the claim was lost."""
    with UnitOfWork(session_factory) as uow:
        chat_moved(uow, message.platform, message.conversation, new)
        return outbox.requeue_held(uow.session, message.id, owner, conversation=new, note=f"chat moved to {new}")
