"""The durable outbox: every message the system sends on its own is a row here first.

A row is written in the same transaction as the change that caused it, with a unique
idempotency key, so a message is neither lost (the change committed, so did the row) nor
duplicated (the key). The sender in the worker moves rows pending -> sending (with a lease)
-> sent | failed | blocked | cancelled. A recipient that can never be reached (blocked the bot,
channel gone) is remembered in ``blocked_recipients`` so later messages to it are not sent.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.clock import utcnow
from crm_core.field_crypto import EncryptedJSON
from crm_core.models import chat_ids
from crm_core.models.base import Base, enum_column


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"
    # Kept back (a paused campaign): not sent until put back to pending.
    HELD = "held"


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __audited__ = False
    __table_args__ = (
        sa.Index("ix_outbox_due", "status", "not_before"),
        # The sender asks "does this conversation have a message in flight?" for every candidate.
        sa.Index("ix_outbox_recipient", "platform", "conversation_index", "status"),
        # The interactive lane is claimed first (crm_core.outbox.claim_due).
        sa.Index("ix_outbox_lane", "priority", "status", "not_before"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    # reminder, digest, notification, campaign, recommendation, ...
    kind: Mapped[str] = mapped_column(sa.String(40))
    platform: Mapped[str] = mapped_column(sa.String(20))
    # Encrypted (a customer's chat id is personal data); the sender compares, groups and orders
    # rows by conversation through the blind index (crm_core.models.chat_ids).
    conversation: Mapped[str] = mapped_column(chat_ids.chat_id_type(sqlite_length=100))
    conversation_index: Mapped[str | None] = mapped_column(chat_ids.index_type())
    # What to send: crm_core.outbox_payload.MessagePayload.to_json() ({"v": 1, ...}), a neutral
    # reply or text in the platform's format, with buttons and an image; see that module.
    # Optional "replace": the platform_message_id of an earlier sent row to the same conversation
    # (a Slack ts, a Telegram message id): that message is edited in place (Slack chat.update,
    # Telegram editMessageText, text clipped to one message) instead of a new one being posted,
    # and this row's platform_message_id is the same id. An image is not sent with an edit. If the
    # message to edit is gone the row fails at once (no retries) and the conversation stays open.
    # Encrypted at rest (crm_core.field_crypto): what we write to customers, their names.
    payload: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("outbox.payload"))
    status: Mapped[OutboxStatus] = mapped_column(enum_column(OutboxStatus), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    # Not to be sent before this time (scheduled sends, retry backoff).
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    # While status is "sending": the claim expires at this time (a crashed sender's rows come back).
    lease_until: Mapped[datetime | None]
    # Which sender process holds the lease (a random id per process), so a sender never takes
    # back its own rows and only the holder can complete them.
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    platform_message_id: Mapped[str | None] = mapped_column(sa.String(100))
    # The CRM user or customer it is for, when there is one (for reports and opt-outs).
    user_id: Mapped[int | None] = mapped_column(index=True)
    customer_id: Mapped[int | None] = mapped_column(index=True)
    # The row of the feature that made the message (campaign_recipients.id for kind "campaign").
    ref_id: Mapped[int | None] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), index=True)
    # 0: interactive (answers to someone waiting: replies, relays, staff answers), claimed before
    # 1: bulk (reminders, digests, campaigns). See crm_core.outbox.INTERACTIVE / BULK.
    priority: Mapped[int] = mapped_column(default=1, server_default="1")
    # What to write down once it was sent or finally failed (bot.messages.AfterSend as JSON):
    # e.g. the relay's message id on its ticket message, so staff replies to it find the ticket.
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class BlockedRecipient(Base):
    """A conversation that refused our messages for good (Telegram 403, Slack channel_not_found)."""

    __tablename__ = "blocked_recipients"
    __audited__ = False
    # One row per conversation, known by its blind index (the id itself is encrypted).
    __table_args__ = (sa.UniqueConstraint("platform", "conversation_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(sa.String(20))
    conversation: Mapped[str] = mapped_column(chat_ids.chat_id_type(sqlite_length=100))
    conversation_index: Mapped[str | None] = mapped_column(chat_ids.index_type())
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    blocked_at: Mapped[datetime] = mapped_column(default=utcnow)


chat_ids.keep_indexed(OutboxMessage, "conversation")
chat_ids.keep_indexed(BlockedRecipient, "conversation")
