"""Marketing to customers: saved segments, per-channel consent, campaigns, their runs and the
frozen recipient list of each run.

A campaign sends a template to a segment on a schedule (once, weekly, monthly) or after an
event (a trigger campaign). Each run freezes its recipients (one row per customer and run) and
puts one outbox row per recipient (``OutboxMessage.ref_id`` points back here); what happened to
each message is read from the outbox while it is in flight and copied onto the recipient row
("settled") once it is final, so reports outlive the outbox's purge.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.clock import utcnow
from crm_core.models import chat_ids
from crm_core.models.base import Base, Timestamped, enum_column


class Segment(Timestamped, Base):
    """A saved, named filter over customers (syntax: crm_core.campaigns.filters)."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Lower-case, unique: what people type after segment=.
    name: Mapped[str] = mapped_column(sa.String(60), unique=True)
    filter: Mapped[str] = mapped_column(sa.String(1000), default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))


class ConsentStatus(enum.StrEnum):
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class Consent(Base):
    """Whether a customer may get campaign messages on a platform, and where.

    Telegram: opted in by starting the bot, out by /stop, the unsubscribe button or blocking the
    bot. Slack: opted in when an admin records it (a shared channel with the customer), out by
    /stop or the unsubscribe button in that channel. Every change is kept in the audit log.
    """

    __tablename__ = "customer_consents"
    __table_args__ = (
        sa.UniqueConstraint("customer_id", "platform"),
        sa.Index("ix_customer_consents_address", "platform", "conversation_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(sa.String(20))
    # Encrypted, and found by its blind index (crm_core.models.chat_ids).
    conversation: Mapped[str] = mapped_column(chat_ids.chat_id_type(sqlite_length=100))
    conversation_index: Mapped[str | None] = mapped_column(chat_ids.index_type())
    status: Mapped[ConsentStatus] = mapped_column(enum_column(ConsentStatus))
    opted_in_at: Mapped[datetime | None]
    opted_in_source: Mapped[str | None] = mapped_column(sa.String(100))
    opted_out_at: Mapped[datetime | None]
    opted_out_source: Mapped[str | None] = mapped_column(sa.String(100))


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    # Started: waiting for its (next) run time, or listening for its trigger.
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"


class Campaign(Timestamped, Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(60), unique=True)
    segment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("segments.id", ondelete="RESTRICT"))
    # A template kind (a folder of templates/, or one created with /template set).
    template: Mapped[str] = mapped_column(sa.String(60))
    # "auto" (each recipient's own language) or a language code.
    language: Mapped[str] = mapped_column(sa.String(8), default="auto")
    # First (or only) run time; None for trigger campaigns.
    starts_at: Mapped[datetime | None]
    # None (once), "weekly" or "monthly", on the local calendar of ``timezone``.
    repeat: Mapped[str | None] = mapped_column(sa.String(10))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    # Trigger campaigns: the event ("first_order", "ticket_resolved") and the delay after it.
    trigger_event: Mapped[str | None] = mapped_column(sa.String(30))
    trigger_delay_minutes: Mapped[int | None]
    status: Mapped[CampaignStatus] = mapped_column(enum_column(CampaignStatus), default=CampaignStatus.DRAFT)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    started_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime | None]
    # A large campaign's second confirmation: who confirmed, for how many recipients.
    confirmed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    confirmed_size: Mapped[int | None]

    segment: Mapped[Segment | None] = relationship(lazy="joined")


class RunStatus(enum.StrEnum):
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


class CampaignRun(Base):
    """One sending of a campaign: its recipients were frozen when it started."""

    __tablename__ = "campaign_runs"
    __audited__ = False
    # A run per scheduled time: a retried scheduler run finds it and sends nothing twice.
    __table_args__ = (sa.UniqueConstraint("campaign_id", "scheduled_for"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    scheduled_for: Mapped[datetime]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    recipients: Mapped[int] = mapped_column(default=0)
    status: Mapped[RunStatus] = mapped_column(enum_column(RunStatus), default=RunStatus.SENDING)


class RecipientStatus(enum.StrEnum):
    # In the outbox (its row tells where it is).
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"
    OPTED_OUT = "opted_out"
    CANCELLED = "cancelled"


class CampaignRecipient(Base):
    """A customer frozen into a run, where their message goes, and (once settled) what happened."""

    __tablename__ = "campaign_recipients"
    __audited__ = False
    __table_args__ = (
        sa.UniqueConstraint("run_id", "customer_id"),
        # Trigger campaigns: one message per customer and event, whichever run found it.
        sa.UniqueConstraint("campaign_id", "event_key"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign_runs.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(sa.String(20))
    # Encrypted, with its blind index (crm_core.models.chat_ids), both copied from the consent.
    conversation: Mapped[str] = mapped_column(chat_ids.chat_id_type(sqlite_length=100))
    conversation_index: Mapped[str | None] = mapped_column(chat_ids.index_type())
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    # "first_order", "ticket:12": the event a trigger campaign answers.
    event_key: Mapped[str | None] = mapped_column(sa.String(60))
    status: Mapped[RecipientStatus] = mapped_column(enum_column(RecipientStatus), default=RecipientStatus.QUEUED)
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


chat_ids.keep_indexed(Consent, "conversation")
chat_ids.keep_indexed(CampaignRecipient, "conversation")


class CampaignWatch(Base):
    """A ``/campaign status`` message that is edited in place while the campaign sends."""

    __tablename__ = "campaign_watches"
    __audited__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(sa.String(20))
    conversation: Mapped[str] = mapped_column(sa.String(100))
    language: Mapped[str | None] = mapped_column(sa.String(8))
    # How many versions were queued; the outbox key of version n is "campaign-watch:<id>:<n>".
    version: Mapped[int] = mapped_column(default=0)
    # What the last version said, so an unchanged status is not sent again.
    last_text: Mapped[str | None] = mapped_column(sa.Text)
    finished: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
