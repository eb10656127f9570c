"""Domain events: what happened in the CRM, recorded in the transaction of the change.

A service that changes something worth telling the world calls ``emit(uow, "deal.won", ...)``.
The event is part of the unit of work: it is written when the transaction commits and vanishes
with it when it rolls back (a savepoint rolled back takes its own events with it). A worker
(crm_core.event_delivery) hands committed events to listeners afterwards, at least once, in order.

Why events get their ids at commit and not at ``emit``: the id is the global order listeners
read in ("every event after 41"). PostgreSQL hands out sequence values when rows are inserted,
and transactions commit in another order than they inserted: a reader could see 42 committed,
move past it, and never see 41 that commits a moment later. So the rows are inserted right
before the commit, under a transaction-scoped advisory lock that is held until the commit is
done: ids then grow in commit order. The lock is taken after everything else is flushed, so a
transaction waiting for it holds no lock another one waits for (no deadlock); it serialises
only the insert of the events and the commit itself. SQLite needs no lock: its writers take
turns anyway (BEGIN IMMEDIATE, crm_core.db). A consequence: an event is not visible in the
database (``recent``) until its transaction has committed, not even to that transaction.

Types are catalogued in ``EVENT_TYPES`` with their payload fields; ``emit`` refuses an unknown
type and, for a built-in type, a payload whose fields differ from the catalogue. Plugins add
their own types (a name with a dot, e.g. ``quotes.sent``) with ``register_event_type``.
Listeners receive an ``Event``, never the ORM row.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, SessionTransaction

from crm_core.actor import SYSTEM, Actor
from crm_core.clock import utcnow
from crm_core.models.events import DomainEvent
from crm_core.scheduling.leader import advisory_key
from crm_core.uow import UnitOfWork


@dataclass(frozen=True)
class EventType:
    name: str
    # One line: what happened.
    description: str
    # Payload field -> what it holds. Empty for a plugin type that declares no fields (not checked).
    payload: Mapping[str, str]
    builtin: bool = False


# Shared field descriptions, so the same field means the same thing in every type.
_CUSTOMER = {"customer_id": "the customer's id", "customer": "the customer's name"}
_DEAL = {
    "deal_id": "the deal's id",
    **_CUSTOMER,
    "title": "the deal's title",
    "amount": 'the amount as a decimal string, e.g. "12500.00"',
    "currency": 'ISO 4217 code, e.g. "EUR"',
    "owner_id": "the owning user's id, or null",
    "owner": "the owning user's name, or null",
}
_TICKET = {"ticket_id": "the ticket's id", **_CUSTOMER, "subject": "the ticket's subject"}
_CUSTOMER_FIELDS = {
    "customer_id": "the customer's id",
    "name": "the customer's name",
    "kind": "person or account",
    "email": "email address, or null",
    "phone": "phone number as entered, or null",
    "company": "company name, or null",
    "country": "two-letter country code, or null",
    "language": "language code, or null",
    "owner_id": "the owning user's id, or null",
    "owner": "the owning user's name, or null",
    "tags": "list of tags",
}
_CAMPAIGN_RUN = {
    "campaign_id": "the campaign's id",
    "campaign": "the campaign's name",
    "run_id": "the run's id",
    "run_number": "1 for the first run of the campaign, 2 for the next, ...",
    "recipients": "how many customers the run reaches",
}


def _builtin(name: str, description: str, payload: Mapping[str, str]) -> EventType:
    return EventType(name, description, MappingProxyType(dict(payload)), builtin=True)


_BUILTIN_TYPES = [
    _builtin(
        "customer.created",
        "a customer record was created (by a command, a form, an import or a first chat)",
        _CUSTOMER_FIELDS,
    ),
    _builtin(
        "customer.updated",
        "fields of a customer changed",
        {
            "customer_id": "the customer's id",
            "name": "the customer's name after the change",
            "changes": 'field -> {"old": text or null, "new": text or null}, only the fields that changed '
            "(core fields, tags as a comma list, custom fields by key)",
        },
    ),
    _builtin(
        "customer.merged",
        "another customer record was merged into this one (a duplicate, or a chat's placeholder found by "
        "phone) and deleted; what hung off it now belongs to this customer",
        {
            "customer_id": "the kept customer's id",
            "merged_id": "the deleted customer's id (events before this one name it)",
            "name": "the kept customer's name",
        },
    ),
    _builtin(
        "customer.erased",
        "a customer's personal data was erased on request; subscribers delete their copies",
        {"customer_id": "the erased customer's id"},
    ),
    _builtin(
        "customer.deleted",
        "a customer was deleted with their deals, tickets, notes and follow-ups (their orders stay, anonymous); "
        "subscribers delete their copies",
        {"customer_id": "the deleted customer's id", "name": "their name"},
    ),
    _builtin(
        "deal.created",
        "a deal was opened",
        {
            **_DEAL,
            "stage": "the stage it starts in",
            "probability": "win probability in percent",
            "expected_close_on": "ISO date, or null",
        },
    ),
    _builtin(
        "deal.stage_changed",
        "a deal moved to another stage (also sent for won and lost, before deal.won / deal.lost)",
        {**_DEAL, "from_stage": "the stage before", "to_stage": "the stage now", "probability": "win probability now"},
    ),
    _builtin(
        "deal.updated",
        "a deal's title, amount, expected close, owner or custom fields changed (not its stage)",
        {**_DEAL, "changes": 'field -> {"old": text or null, "new": text or null}, only what changed'},
    ),
    _builtin("deal.won", "a deal was won", {**_DEAL, "from_stage": "the stage before, or null if opened as won"}),
    _builtin(
        "deal.lost",
        "a deal was lost",
        {**_DEAL, "from_stage": "the stage before, or null if opened as lost", "reason": "why, or null"},
    ),
    _builtin(
        "ticket.created",
        "a support ticket was opened (by staff, or by a customer's first message)",
        {**_TICKET, "priority": "low, normal, high or urgent", "channel": "where it came in (telegram, slack, ...)"},
    ),
    _builtin(
        "ticket.assigned",
        "a ticket got another assignee (or none)",
        {
            **_TICKET,
            "previous_assignee_id": "the user id before, or null",
            "assignee_id": "the user id now, or null",
            "assignee": "the assignee's name now, or null",
        },
    ),
    _builtin(
        "ticket.status_changed",
        "a ticket's status changed (open, pending, resolved, closed)",
        {**_TICKET, "from_status": "the status before", "to_status": "the status now"},
    ),
    _builtin(
        "ticket.priority_changed",
        "a ticket's priority changed; its SLA due times moved with it",
        {
            **_TICKET,
            "from_priority": "the priority before",
            "to_priority": "the priority now",
            "first_response_due_at": "when the first response is now due",
            "resolve_due_at": "when the resolution is now due",
        },
    ),
    _builtin(
        "ticket.updated",
        "a ticket's subject or custom fields changed",
        {**_TICKET, "changes": 'field -> {"old": text or null, "new": text or null}, only what changed'},
    ),
    _builtin(
        "ticket.answered",
        "staff answered a ticket's customer (from a staff room, a ticket thread, /ticket reply or the API): the "
        "answer is kept on the ticket and sent to the customer's chat where they have one",
        {
            **_TICKET,
            "message_id": "the answer's id among the ticket's messages",
            "text": "the answer",
            "user_id": "who answered, or null",
            "channel": "the chat platform the answer is for (the customer's)",
        },
    ),
    _builtin(
        "ticket.noted",
        "staff added an internal note to a ticket (/ticket note, or a plain reply in an alerts-mode ticket thread); "
        "the customer never sees it",
        {
            **_TICKET,
            "message_id": "the note's id among the ticket's messages",
            "user_id": "who wrote it, or null",
        },
    ),
    _builtin(
        "ticket.rated",
        "the customer rated a resolved ticket (only the first rating counts)",
        {**_TICKET, "rating": "1 to 5", "assignee_id": "who had the ticket, or null"},
    ),
    _builtin(
        "note.created",
        "an interaction was logged on a customer: a note, call, email or meeting, or a ticket message",
        {
            "interaction_id": "the interaction's id",
            **_CUSTOMER,
            "kind": "note, call, email, meeting or chat",
            "direction": "internal, inbound (from the customer) or outbound (to them)",
            "channel": "where it happened (slack, telegram, console, phone, ...)",
            "text": "the text (up to 4,000 characters; a photo's or a file's caption, maybe empty)",
            "attachment": "what a chat message carried besides text (photo, file, sticker, voice, video, audio, "
            "location), or null",
            "user_id": "who on our side, or null for the customer",
            "ticket_id": "the ticket it belongs to, or null",
        },
    ),
    _builtin(
        "order.imported",
        "orders were imported in bulk (an order file, or a bulk API request): one event per import, with counts "
        "(not one per order)",
        {
            "source": "the file name, or api:<token name> for a bulk API request",
            "currency": "the currency of the file's prices",
            "rows": "rows read",
            "orders": "purchase orders created",
            "cancellations": "cancellations created",
            "order_lines": "order lines created",
            "customers": "customers created for the file's customer numbers (no customer.created each)",
            "products": "products created",
            "already_there": "orders of the file that existed already and were left alone",
            "skipped_rows": "malformed rows skipped",
            "first_ordered_at": "ISO time of the earliest order created, or null",
            "last_ordered_at": "ISO time of the latest order created, or null",
        },
    ),
    _builtin(
        "campaign.started",
        "a campaign run froze its recipients and queued their messages",
        {**_CAMPAIGN_RUN, "scheduled_for": "ISO time the run was due", "trigger": "the trigger event, or null"},
    ),
    _builtin(
        "campaign.finished",
        "every message of a campaign run reached a final state",
        {
            **_CAMPAIGN_RUN,
            "status": "done, or cancelled when the campaign was cancelled",
            "sent": "messages delivered",
            "failed": "messages that failed",
            "blocked": "recipients that blocked us",
            "opted_out": "recipients who opted out before their message went",
            "cancelled": "messages dropped (campaign cancelled)",
        },
    ),
    _builtin(
        "followup.due",
        "a follow-up came due; its reminder goes to the rep's DM (when they have a chat account)",
        {
            "followup_id": "the follow-up's id",
            **_CUSTOMER,
            "user_id": "the rep's user id",
            "user": "the rep's name",
            "due_at": "ISO time it was due",
            "text": "what to follow up on",
            "snoozed": "how many times it was snoozed before",
        },
    ),
]

_TYPES: dict[str, EventType] = {t.name: t for t in _BUILTIN_TYPES}
# The catalogue, read-only; plugins add to it through register_event_type.
EVENT_TYPES: Mapping[str, EventType] = MappingProxyType(_TYPES)

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def register_event_type(name: str, description: str, payload: Mapping[str, str] | None = None) -> EventType:
    """Declare a plugin's own event type, e.g. ``register_event_type("quotes.sent", "a quote was sent")``.

    The name is lowercase words joined by dots (at least one dot). Registering the same name
    again with the same description is harmless; a built-in type cannot be redefined.
    """
    if not _TYPE_NAME.match(name or ""):
        raise ValueError(f"{name!r} is not an event type name: write lowercase words joined by dots, e.g. quotes.sent")
    if not (description or "").strip():
        raise ValueError(f"event type {name!r} needs a description")
    existing = _TYPES.get(name)
    if existing is not None:
        if existing.builtin:
            raise ValueError(f"{name!r} is a built-in event type and cannot be redefined")
        if existing.description != description.strip():
            raise ValueError(f"event type {name!r} is registered already with another description")
        return existing
    declared = EventType(name, description.strip(), MappingProxyType(dict(payload or {})))
    _TYPES[name] = declared
    return declared


@dataclass(frozen=True)
class Event:
    """What a listener receives: a committed event (each listener call gets its own copy)."""

    id: int
    type: str
    entity_type: str
    entity_id: str
    occurred_at: datetime
    actor: Actor
    payload: Mapping[str, Any]

    @classmethod
    def from_row(cls, row: DomainEvent) -> Event:
        actor = row.actor or {}
        return cls(
            id=row.id,
            type=row.type,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            occurred_at=row.occurred_at,
            actor=Actor(
                user_id=actor.get("user_id"),
                name=actor.get("name") or SYSTEM.name,
                platform=actor.get("platform") or SYSTEM.platform,
            ),
            payload=copy.deepcopy(row.payload or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for webhooks, logs and ``chatcrm events tail``)."""
        return {
            "id": self.id,
            "type": self.type,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "occurred_at": self.occurred_at.isoformat(),
            "actor": {"user_id": self.actor.user_id, "name": self.actor.name, "platform": self.actor.platform},
            "payload": copy.deepcopy(dict(self.payload)),
        }


def decimal_amount(cents: int) -> str:
    """Minor units as a decimal string, the way payloads carry amounts: 1250050 -> "12500.50"."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"


# -- recording ------------------------------------------------------------------------------------

# session.info key: the events of this transaction, not yet inserted.
_PENDING = "chatcrm.pending_events"
# Held from the insert of a transaction's events until its commit (PostgreSQL).
EVENT_LOCK_KEY = advisory_key("events")


@dataclass
class _Pending:
    # The transaction (or savepoint) the event was emitted in; rolling it back drops the event.
    transaction: SessionTransaction
    row: dict[str, Any]


def emit(
    uow: UnitOfWork | Session,
    type: str,
    *,
    entity_type: str,
    entity_id: int | str,
    payload: Mapping[str, Any],
) -> None:
    """Record an event in the current transaction; it is written when the transaction commits.

    Raises ValueError for an unknown type, a built-in type's payload with other fields than the
    catalogue's, or a payload that is not JSON (these are programming errors, not user errors).
    """
    declared = _TYPES.get(type)
    if declared is None:
        raise ValueError(f"unknown event type {type!r}; plugins declare theirs with register_event_type")
    if declared.builtin and set(payload) != set(declared.payload):
        missing = sorted(set(declared.payload) - set(payload))
        extra = sorted(set(payload) - set(declared.payload))
        raise ValueError(f"payload of {type} does not match the catalogue: missing {missing}, unexpected {extra}")
    try:
        # A snapshot: later changes to the caller's objects do not change what happened.
        snapshot = json.loads(json.dumps(dict(payload), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"payload of {type} is not JSON: {exc}") from None
    session = uow.session if isinstance(uow, UnitOfWork) else uow
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:
        session.connection()  # begin the transaction the event belongs to
        transaction = session.get_transaction()
        assert transaction is not None
    actor: Actor = session.info.get("actor") or SYSTEM
    row = {
        "type": type,
        "entity_type": entity_type,
        "entity_id": str(entity_id),
        "occurred_at": utcnow(),
        "actor": {"user_id": actor.user_id, "name": actor.name, "platform": actor.platform},
        "payload": snapshot,
        "customer_id": customer if isinstance(customer := snapshot.get("customer_id"), int) else None,
    }
    session.info.setdefault(_PENDING, []).append(_Pending(transaction, row))


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _before_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint is committing: its events wait for the outer commit
    pending: list[_Pending] = session.info.pop(_PENDING, None) or []
    if not pending:
        return
    # Everything else first, so that once we hold the event lock we wait for nobody (see above).
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(EVENT_LOCK_KEY)))
    session.execute(sa.insert(DomainEvent), [p.row for p in pending])


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    pending: list[_Pending] | None = session.info.get(_PENDING)
    if pending:
        pending[:] = [p for p in pending if not _within(p.transaction, previous_transaction)]


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def install() -> None:
    """Register the session hooks that write pending events at commit (idempotent)."""
    for name, hook in (
        ("before_commit", _before_commit),
        ("after_soft_rollback", _after_soft_rollback),
        ("after_transaction_end", _after_transaction_end),
    ):
        if not sa.event.contains(Session, name, hook):
            sa.event.listen(Session, name, hook)


# Importing this module is what every emitter does, so the hooks are always there before an emit.
install()


# -- reading --------------------------------------------------------------------------------------


def _of_type(statement: sa.Select, type_prefix: str | None) -> sa.Select:
    if type_prefix:
        statement = statement.where(DomainEvent.type.startswith(type_prefix, autoescape=True))
    return statement


def recent(session: Session, limit: int = 20, type_prefix: str | None = None) -> list[Event]:
    """The latest ``limit`` committed events (of types starting with ``type_prefix``), oldest first."""
    statement = _of_type(sa.select(DomainEvent), type_prefix).order_by(DomainEvent.id.desc()).limit(limit)
    return [Event.from_row(row) for row in reversed(list(session.scalars(statement)))]


def after(session: Session, after_id: int, limit: int = 100, type_prefix: str | None = None) -> list[Event]:
    """Committed events with an id above ``after_id``, oldest first (for following the stream)."""
    statement = _of_type(sa.select(DomainEvent).where(DomainEvent.id > after_id), type_prefix)
    return [Event.from_row(row) for row in session.scalars(statement.order_by(DomainEvent.id).limit(limit))]


def get(session: Session, event_id: int) -> Event | None:
    """Committed event ``event_id``; None when there is none (never was, or pruned)."""
    row = session.get(DomainEvent, event_id)
    return Event.from_row(row) if row is not None else None
