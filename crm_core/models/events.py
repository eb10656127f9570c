"""Domain events and their delivery bookkeeping.

- ``events``: one row per state change worth telling the world ("deal.won", "ticket.created",
  ...), written in the transaction of the change (crm_core.events). The id is the global order:
  rows are given their ids while the transaction commits, one committing transaction at a time
  (see crm_core.events), so a reader never sees a higher id before a lower one.
- ``event_listeners``: one cursor per listener (a plugin's ``on_event``, a webhook, ...): the
  last event it was handed, the retry state of the event it is failing on, and a lease so two
  workers never deliver to the same listener at once.
- ``event_dead_letters``: events a listener gave up on after its last attempt. A table rather
  than columns on the cursor because a listener can give up on many events over its life and
  every one of them must stay inspectable (and replayable) after the cursor has moved on; the
  events they name are kept by ``prune`` until the dead letter is removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.clock import utcnow
from crm_core.field_crypto import EncryptedJSON
from crm_core.models.base import Base

# Event ids grow without bound (imports, chats); BIGINT on PostgreSQL, SQLite's INTEGER is 64-bit.
EventId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class DomainEvent(Base):
    __tablename__ = "events"
    # Bookkeeping: the change itself is audited; its event would only duplicate the entry.
    __audited__ = False
    __table_args__ = (
        # "Everything that happened to deal 7, in order", and erasing a customer's events.
        sa.Index("ix_events_entity", "entity_type", "entity_id", "id"),
        sa.Index("ix_events_occurred_at", "occurred_at"),
        # SQLite would otherwise hand out the id of a deleted (pruned) last row again, and a
        # listener whose cursor is past it would never see the new event.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    # "deal.won"; the catalogue is crm_core.events.EVENT_TYPES.
    type: Mapped[str] = mapped_column(sa.String(100))
    entity_type: Mapped[str] = mapped_column(sa.String(40))
    entity_id: Mapped[str] = mapped_column(sa.String(100))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    # {"user_id": 3, "name": "Rita Rep", "platform": <the platform's name>}: who made the change.
    actor: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    # Encrypted at rest (crm_core.field_crypto): payloads name customers, their emails, ticket subjects.
    payload: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("events.payload"))
    # The payload's customer_id, in the clear: erasing a customer finds the events about them.
    customer_id: Mapped[int | None] = mapped_column(index=True)


class EventCursor(Base):
    """Where one listener is in the event stream."""

    __tablename__ = "event_listeners"
    __audited__ = False

    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    # Every event up to this id has been handed to the listener (or dead-lettered for it).
    last_event_id: Mapped[int] = mapped_column(EventId, default=0)
    # Failed attempts on the event after last_event_id; 0 when it is not failing.
    attempts: Mapped[int] = mapped_column(default=0)
    # Not to be tried again before this time (retry backoff); None: whenever.
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    # The worker delivering to this listener right now, until lease_until (a crashed worker's
    # lease runs out and another takes over).
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    lease_until: Mapped[datetime | None]
    # When a dispatcher first saw the listener, and last claimed it to deliver (a caught-up
    # listener is not claimed, so nothing is written while there is nothing new). prune ignores
    # the cursors of listeners not claimed for a while: an uninstalled plugin must not keep every event.
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class EventDeadLetter(Base):
    """An event a listener failed on ``attempts`` times; the listener's cursor moved past it."""

    __tablename__ = "event_dead_letters"
    __audited__ = False
    __table_args__ = (sa.UniqueConstraint("listener", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    listener: Mapped[str] = mapped_column(sa.String(200))
    # No foreign key: prune keeps dead-lettered events, and a dead letter must never block a delete.
    event_id: Mapped[int] = mapped_column(EventId, index=True)
    attempts: Mapped[int]
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    # The reference the last failure was logged under.
    reference: Mapped[str | None] = mapped_column(sa.String(16))
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)
