"""Support tickets and their threads: the fields, SLA due times, satisfaction rating and messages.

The workflow (opening, answering, assigning, resolving, rating) lives in crm_core.services.tickets.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.clock import utcnow
from crm_core.field_crypto import Encrypted
from crm_core.models.base import Base, Timestamped, enum_column
from crm_core.models.customers import Customer
from crm_core.models.interactions import Direction
from crm_core.models.users import User


class TicketStatus(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        return self in (TicketStatus.OPEN, TicketStatus.PENDING)


class TicketPriority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Ticket(Timestamped, Base):
    __tablename__ = "tickets"
    __table_args__ = (
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),
        sa.Index("ix_tickets_customer_status", "customer_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    # Encrypted at rest (crm_core.field_crypto), like the messages: often the first one's words.
    subject: Mapped[str] = mapped_column(Encrypted("tickets.subject", sqlite_length=300))
    status: Mapped[TicketStatus] = mapped_column(enum_column(TicketStatus), default=TicketStatus.OPEN, index=True)
    priority: Mapped[TicketPriority] = mapped_column(enum_column(TicketPriority), default=TicketPriority.NORMAL)
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # Where the ticket came in: a chat platform's name, "email", "phone", ... (the actor's platform by default).
    channel: Mapped[str] = mapped_column(sa.String(20), default="chat")
    first_response_due_at: Mapped[datetime | None]
    resolve_due_at: Mapped[datetime | None]
    first_responded_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    rating: Mapped[int | None]
    rated_at: Mapped[datetime | None]

    customer: Mapped[Customer] = relationship(lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")


class TicketMessage(Base):
    """One message of a ticket's thread: the customer's, our answer, or an internal note."""

    __tablename__ = "ticket_messages"
    __table_args__ = (sa.Index("ix_ticket_messages_relay", "relay_conversation", "relay_message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    # inbound: from the customer; outbound: our answer to them; internal: a note they never see.
    direction: Mapped[Direction] = mapped_column(enum_column(Direction))
    # Who on our side wrote it (None for the customer).
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(sa.String(20))
    # For a message with a photo, a file, a voice message...: its caption, maybe empty. Encrypted at rest.
    text: Mapped[str] = mapped_column(Encrypted("ticket_messages.text"))
    # What it carried besides text, as a kind (crm_core.attachments: "voice", "file") and its detail
    # (a file name, a sticker's emoji), named in the reader's language where it is shown.
    attachment_kind: Mapped[str | None] = mapped_column(sa.String(20))
    attachment_name: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The message's id in the customer's chat (theirs, or the one we sent them).
    external_message_id: Mapped[str | None] = mapped_column(sa.String(64))
    # Where it stands in a staff chat: the copy of a customer's message relayed there, or a staff answer
    # typed in a ticket's thread there (so it is not posted into that thread again); a reply to it
    # finds its ticket.
    relay_conversation: Mapped[str | None] = mapped_column(sa.String(64))
    relay_message_id: Mapped[str | None] = mapped_column(sa.String(64))
    # Why an answer did not reach the customer (blocked the bot, ...); None when it did.
    delivery_error: Mapped[str | None] = mapped_column(sa.String(200))

    author: Mapped[User | None] = relationship(lazy="joined")


class ExternalThread(Base):
    """A ticket's own thread in a staff conversation on a chat platform (a support channel where every
    ticket gets a thread): the customer's messages are posted there, and a reply there is about this
    ticket. ``thread_id`` is the platform's id of the thread's first message (a Slack ts), written once
    that message was sent."""

    __tablename__ = "external_threads"
    __table_args__ = (
        # One thread per ticket and conversation; a thread belongs to one ticket.
        sa.UniqueConstraint("ticket_id", "platform", "conversation"),
        sa.UniqueConstraint("platform", "conversation", "thread_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("tickets.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(sa.String(20))
    conversation: Mapped[str] = mapped_column(sa.String(64))
    thread_id: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
