"""The support ticket workflow: open, converse (customer messages, answers, internal notes),
assign, change status, rate; SLA due times, overdue flags and satisfaction figures.

Every message of a thread is a ``TicketMessage`` and is also logged as an interaction on the
customer, so the customer card's history shows support conversations too.

Statuses and priorities are typed as their English values (``resolved``, ``high``) or their Chinese
names (``已解决``, ``高``): ``TICKET_STATUS_ALIASES`` / ``PRIORITY_ALIASES`` map those to the values,
and ``status_label`` / ``priority_label`` name a value in the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from crm_core import attachments, clock, events, outbox, paging
from crm_core.attachments import Attachment
from crm_core.errors import Conflict, NotFound, ValidationError
from crm_core.i18n import _, format_number, pgettext
from crm_core.models import (
    Direction,
    FieldEntity,
    InteractionKind,
    Ticket,
    TicketMessage,
    TicketPriority,
    TicketStatus,
    User,
)
from crm_core.services import custom_fields, customers, interactions, ownership, sla
from crm_core.text import check_text, clip, without_control
from crm_core.uow import UnitOfWork

MAX_SUBJECT = 300
# Chat platforms allow a little more than the interaction log keeps (Telegram: 4,096).
MAX_MESSAGE = 10_000
OPEN_STATUSES = (TicketStatus.OPEN, TicketStatus.PENDING)
# For sorting: most urgent first.
# What /ticket new takes as key=value besides custom fields (named in the unknown-option message).
CREATE_OPTIONS = ("priority",)
PRIORITY_RANK = {TicketPriority.URGENT: 0, TicketPriority.HIGH: 1, TicketPriority.NORMAL: 2, TicketPriority.LOW: 3}
# What a Chinese-speaking agent types for a priority or a status (besides the English values).
PRIORITY_ALIASES: dict[str, TicketPriority] = {
    "低": TicketPriority.LOW,
    "普通": TicketPriority.NORMAL,
    "高": TicketPriority.HIGH,
    "紧急": TicketPriority.URGENT,
}
STATUS_ALIASES: dict[str, TicketStatus] = {
    "处理中": TicketStatus.OPEN,
    "未解决": TicketStatus.OPEN,
    "待回复": TicketStatus.PENDING,
    "等待客户": TicketStatus.PENDING,
    "已解决": TicketStatus.RESOLVED,
    "已关闭": TicketStatus.CLOSED,
}


def parse_priority(text: str) -> TicketPriority:
    """``high``, ``HIGH`` or ``高`` -> TicketPriority.HIGH; ValueError for anything else."""
    value = text.strip().lower()
    return PRIORITY_ALIASES.get(value) or TicketPriority(value)


def parse_status(text: str) -> TicketStatus:
    """``resolved`` or ``已解决`` -> TicketStatus.RESOLVED; ValueError for anything else."""
    value = text.strip().lower()
    return STATUS_ALIASES.get(value) or TicketStatus(value)


def _names() -> dict[str, str]:
    # Built per call: the words are looked up in the reader's language. Status and priority values
    # never coincide, so one table serves both.
    return {
        TicketStatus.OPEN: pgettext("ticket status", "open"),
        TicketStatus.PENDING: pgettext("ticket status", "pending"),
        TicketStatus.RESOLVED: pgettext("ticket status", "resolved"),
        TicketStatus.CLOSED: pgettext("ticket status", "closed"),
        TicketPriority.LOW: pgettext("ticket priority", "low"),
        TicketPriority.NORMAL: pgettext("ticket priority", "normal"),
        TicketPriority.HIGH: pgettext("ticket priority", "high"),
        TicketPriority.URGENT: pgettext("ticket priority", "urgent"),
    }


def status_label(status: TicketStatus) -> str:
    """The status as the reader says it ("resolved", "已解决")."""
    return _names()[TicketStatus(status)]


def priority_label(priority: TicketPriority) -> str:
    """The priority as the reader says it ("high", "高")."""
    return _names()[TicketPriority(priority)]


def get_ticket(uow: UnitOfWork, ticket_id: int) -> Ticket:
    ticket = uow.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(_("there is no ticket #{ticket_id}", ticket_id=ticket_id))
    return ticket


def _subject(raw: str) -> str:
    subject = check_text(" ".join((raw or "").split()), "subject", field="subject")
    if not subject:
        raise ValidationError(_("a ticket needs a subject"), field="subject")
    if len(subject) > MAX_SUBJECT:
        raise ValidationError(_("the subject is longer than {limit} characters", limit=MAX_SUBJECT), field="subject")
    return subject


def _body(raw: str) -> str:
    body = (raw or "").strip()
    if not body:
        raise ValidationError(_("the message is empty"), field="text")
    if len(body) > MAX_MESSAGE:
        raise ValidationError(
            _(
                "that is too long ({length} characters; the limit is {limit}); please shorten it",
                length=format_number(len(body)),
                limit=format_number(MAX_MESSAGE),
            ),
            field="text",
        )
    return body


def create_ticket(
    uow: UnitOfWork,
    customer_id: int,
    subject: str,
    priority: TicketPriority = TicketPriority.NORMAL,
    *,
    channel: str | None = None,
    targets: Mapping[TicketPriority, sla.Target] | None = None,
    fields: Mapping[str, str | None] | None = None,
) -> Ticket:
    """Open a ticket; ``fields`` are custom field values as typed (key -> text). A ticket a customer's
    message opens has none, so a required ticket field is required of staff only."""
    customer = customers.get_customer(uow, customer_id)
    custom = custom_fields.parse_changes(uow, FieldEntity.TICKET, fields or {}, options=CREATE_OPTIONS)
    if fields is not None:
        custom_fields.check_required(uow, FieldEntity.TICKET, custom, creating=True)
    now = clock.utcnow()
    first_due, resolve_due = sla.due_times(priority, now, targets)
    ticket = Ticket(
        customer_id=customer_id,
        subject=_subject(subject),
        priority=priority,
        status=TicketStatus.OPEN,
        created_by_id=uow.actor.user_id,
        channel=channel or uow.actor.platform,
        first_response_due_at=first_due,
        resolve_due_at=resolve_due,
        created_at=now,
    )
    uow.session.add(ticket)
    uow.session.flush()
    custom_fields.apply_changes(uow, custom, ticket.id)
    events.emit(
        uow,
        "ticket.created",
        entity_type="ticket",
        entity_id=ticket.id,
        payload={
            "ticket_id": ticket.id,
            "customer_id": customer.id,
            "customer": customer.name,
            "subject": ticket.subject,
            "priority": str(ticket.priority),
            "channel": ticket.channel,
        },
    )
    return ticket


def _facts(ticket: Ticket) -> dict[str, object]:
    """What every ticket event says about the ticket (crm_core.events.EVENT_TYPES)."""
    return {
        "ticket_id": ticket.id,
        "customer_id": ticket.customer_id,
        "customer": ticket.customer.name,
        "subject": ticket.subject,
    }


def _emit_status_changed(uow: UnitOfWork, ticket: Ticket, previous: TicketStatus) -> None:
    events.emit(
        uow,
        "ticket.status_changed",
        entity_type="ticket",
        entity_id=ticket.id,
        payload={**_facts(ticket), "from_status": str(previous), "to_status": str(ticket.status)},
    )


def _add_message(
    uow: UnitOfWork,
    ticket: Ticket,
    text: str,
    direction: Direction,
    channel: str,
    external_message_id: str | None = None,
    attachment: Attachment | None = None,
) -> TicketMessage:
    # A photo or a voice message needs no caption.
    body = (text or "").strip() if attachment is not None else _body(text)
    message = TicketMessage(
        ticket_id=ticket.id,
        direction=direction,
        author_id=uow.actor.user_id,
        channel=channel,
        text=body,
        attachment_kind=attachment.kind if attachment else None,
        attachment_name=attachment.name if attachment else None,
        external_message_id=external_message_id,
        created_at=clock.utcnow(),
    )
    uow.session.add(message)
    kind = InteractionKind.NOTE if direction is Direction.INTERNAL else InteractionKind.CHAT
    logged = body if len(body) <= interactions.MAX_TEXT else body[: interactions.MAX_TEXT - 1] + "…"
    interactions.log_interaction(
        uow,
        ticket.customer_id,
        logged,
        kind=kind,
        channel=channel,
        direction=direction,
        ticket_id=ticket.id,
        attachment=attachment,
    )
    return message


@dataclass(frozen=True)
class Incoming:
    ticket: Ticket
    message: TicketMessage
    # True when this message opened the ticket.
    opened: bool


def open_ticket_of(uow: UnitOfWork, customer_id: int) -> Ticket | None:
    """The customer's most recent open (or pending) ticket."""
    return uow.session.scalars(
        sa.select(Ticket)
        .where(Ticket.customer_id == customer_id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
    ).first()


def customer_wrote(
    uow: UnitOfWork,
    customer_id: int,
    text: str,
    *,
    channel: str,
    attachment: Attachment | None = None,
    external_message_id: str | None = None,
    targets: Mapping[TicketPriority, sla.Target] | None = None,
) -> Incoming:
    """A message from the customer: appended to their open ticket, or opening a new one. A message over
    MAX_MESSAGE characters is kept cut to that, with a note saying so, and control characters (which a
    customer cannot be asked to remove) are dropped; the stored text is the message's. With an
    ``attachment`` (a photo, a voice message) ``text`` is its caption and may be empty; a ticket it
    opens without one is named by the attachment's language-neutral stand-in (an emoji)."""
    text = clip(without_control(text), MAX_MESSAGE)
    ticket = open_ticket_of(uow, customer_id)
    opened = ticket is None
    if ticket is None:
        if attachment is not None and not text.strip():
            first_line = attachments.stand_in(attachment.kind, attachment.name)
        else:
            first_line = next((line for line in _body(text).splitlines() if line.strip()), text)
        subject = " ".join(first_line.split())
        if len(subject) > 80:
            subject = subject[:79].rstrip() + "…"
        ticket = create_ticket(uow, customer_id, subject, channel=channel, targets=targets)
    elif ticket.status is TicketStatus.PENDING:
        # Pending means "waiting for the customer": they answered, so it is ours again.
        ticket.status = TicketStatus.OPEN
        _emit_status_changed(uow, ticket, TicketStatus.PENDING)
    message = _add_message(uow, ticket, text, Direction.INBOUND, channel, external_message_id, attachment)
    uow.session.flush()
    return Incoming(ticket, message, opened)


def answer(
    uow: UnitOfWork, ticket_id: int, text: str, *, channel: str, external_message_id: str | None = None
) -> TicketMessage:
    """Our answer to the customer, by the acting user; the first one is the ticket's first response."""
    ticket = get_ticket(uow, ticket_id)
    message = _add_message(uow, ticket, text, Direction.OUTBOUND, channel, external_message_id)
    if ticket.first_responded_at is None:
        ticket.first_responded_at = message.created_at
    uow.session.flush()
    events.emit(
        uow,
        "ticket.answered",
        entity_type="ticket",
        entity_id=ticket.id,
        payload={
            **_facts(ticket),
            "message_id": message.id,
            "text": message.text,
            "user_id": message.author_id,
            "channel": channel,
        },
    )
    return message


def add_note(uow: UnitOfWork, ticket_id: int, text: str) -> TicketMessage:
    """An internal note on the ticket; the customer never sees it."""
    ticket = get_ticket(uow, ticket_id)
    check_text(text, "note", field="text")
    message = _add_message(uow, ticket, text, Direction.INTERNAL, uow.actor.platform)
    uow.session.flush()
    # For whoever follows the ticket elsewhere (its Slack thread: bot/handlers/ticket_threads.py). The text
    # is not in the payload: an internal note leaves only where it is read from the ticket, as staff see it.
    events.emit(
        uow,
        "ticket.noted",
        entity_type="ticket",
        entity_id=ticket.id,
        payload={**_facts(ticket), "message_id": message.id, "user_id": message.author_id},
    )
    return message


def record_relay(uow: UnitOfWork, message_id: int, conversation: str, relay_message_id: str | None) -> None:
    """Remember where a message stands in a staff conversation (a customer's message relayed there, or a
    staff answer typed in a ticket's thread there), so a reply to it finds the ticket."""
    message = uow.session.get(TicketMessage, message_id)
    if message is not None:
        message.relay_conversation = conversation
        message.relay_message_id = relay_message_id
        uow.session.flush()


# What ``delivery_error`` holds when an answer had no customer chat on its channel to go to; otherwise
# it holds the outbox's reason: a code and the chat platform's own words ("unreachable: Forbidden: bot
# was blocked by the user", crm_core.outbox.failure).
NO_CHAT = "no-chat"


def delivery_error_text(error: str, channel: str) -> str:
    """Why an answer did not reach the customer, in the reader's language (the platform's own words,
    which are in English, stay in the record and the log)."""
    if error == NO_CHAT:
        return _("the customer has no {platform} chat with us", platform=channel.capitalize())
    code, detail = outbox.failure_code(error)
    if code == outbox.UNREACHABLE:
        return _("the customer blocked us or the chat is gone")
    if code == outbox.REFUSED:
        return _("{platform} refused the message", platform=channel.capitalize())
    if code == outbox.GAVE_UP:
        return _("{platform} could not be reached after several attempts", platform=channel.capitalize())
    return detail


def record_delivery(
    uow: UnitOfWork, message_id: int, *, external_message_id: str | None = None, error: str | None = None
) -> None:
    message = uow.session.get(TicketMessage, message_id)
    if message is not None:
        message.external_message_id = external_message_id or message.external_message_id
        message.delivery_error = error[:200] if error else None
        uow.session.flush()


def ticket_for_relay(uow: UnitOfWork, conversation: str, relay_message_id: str) -> Ticket | None:
    return uow.session.scalars(
        sa.select(Ticket)
        .join(TicketMessage, TicketMessage.ticket_id == Ticket.id)
        .where(TicketMessage.relay_conversation == conversation, TicketMessage.relay_message_id == relay_message_id)
    ).first()


def assign(uow: UnitOfWork, ticket_id: int, user: User | None) -> Ticket:
    ticket = get_ticket(uow, ticket_id)
    ownership.check_ticket(uow, ticket)
    if user is not None and not user.active:
        raise ValidationError(_("{name} is not an active user", name=user.name), field="user")
    previous = ticket.assignee_id
    ticket.assignee_id = user.id if user else None
    uow.session.flush()
    uow.session.refresh(ticket, ["assignee"])
    if ticket.assignee_id != previous:
        events.emit(
            uow,
            "ticket.assigned",
            entity_type="ticket",
            entity_id=ticket.id,
            payload={
                **_facts(ticket),
                "previous_assignee_id": previous,
                "assignee_id": ticket.assignee_id,
                "assignee": user.name if user else None,
            },
        )
    return ticket


# What /ticket edit changes besides custom fields (priority has its own command, with its SLA).
EDIT_FIELDS = ("subject",)


def update_ticket(uow: UnitOfWork, ticket_id: int, changes: Mapping[str, str | None]) -> dict[str, object]:
    """Change a ticket's subject and custom fields (key -> text as typed; empty clears a custom field).
    Returns field -> {old, new} for what changed (also the ``ticket.updated`` event's ``changes``)."""
    if not changes:
        raise ValidationError(_("nothing to change: give field=value pairs, e.g. subject=…"))
    ticket = get_ticket(uow, ticket_id)
    ownership.check_ticket(uow, ticket)
    given = {key.strip().lower(): value for key, value in changes.items()}
    subject = _subject(given.pop("subject") or "") if "subject" in given else None
    custom = custom_fields.parse_changes(uow, FieldEntity.TICKET, given, options=EDIT_FIELDS)
    custom_fields.check_required(uow, FieldEntity.TICKET, custom, creating=False)
    before = {"subject": ticket.subject, **custom_fields.current_text(uow, FieldEntity.TICKET, ticket.id)}
    if subject is not None:
        ticket.subject = subject
    custom_fields.apply_changes(uow, custom, ticket.id)
    uow.session.flush()
    diff = custom_fields.changed(
        before, {"subject": ticket.subject, **custom_fields.current_text(uow, FieldEntity.TICKET, ticket.id)}
    )
    if diff:
        events.emit(
            uow,
            "ticket.updated",
            entity_type="ticket",
            entity_id=ticket.id,
            payload={**_facts(ticket), "changes": diff},
        )
    return dict(diff)


def set_status(uow: UnitOfWork, ticket_id: int, status: TicketStatus) -> Ticket:
    ticket = get_ticket(uow, ticket_id)
    ownership.check_ticket(uow, ticket)
    if ticket.status is status:
        raise Conflict(_("ticket #{ticket_id} is already {status}", ticket_id=ticket.id, status=status_label(status)))
    now = clock.utcnow()
    if status is TicketStatus.RESOLVED:
        ticket.resolved_at = now
    elif status is TicketStatus.CLOSED:
        ticket.closed_at = now
        ticket.resolved_at = ticket.resolved_at or now
    else:
        # Reopened: the ticket is live again; earlier rating stays as it was given.
        ticket.resolved_at = None
        ticket.closed_at = None
    previous = ticket.status
    ticket.status = status
    uow.session.flush()
    _emit_status_changed(uow, ticket, previous)
    return ticket


def set_priority(
    uow: UnitOfWork,
    ticket_id: int,
    priority: TicketPriority,
    targets: Mapping[TicketPriority, sla.Target] | None = None,
) -> Ticket:
    """Change a live ticket's priority; its SLA due times move to the new priority's targets.

    The targets count from when the ticket was opened, as they did at creation, so raising an old
    ticket to urgent can make it overdue at once: that is the point of raising it.
    """
    ticket = get_ticket(uow, ticket_id)
    ownership.check_ticket(uow, ticket)
    if ticket.priority is priority:
        raise Conflict(
            _("ticket #{ticket_id} is already {priority}", ticket_id=ticket.id, priority=priority_label(priority))
        )
    if not ticket.status.is_open:
        raise Conflict(
            _(
                "ticket #{ticket_id} is {status}: reopen it to change its priority",
                ticket_id=ticket.id,
                status=status_label(ticket.status),
            )
        )
    previous = ticket.priority
    ticket.priority = priority
    first_due, resolve_due = sla.due_times(priority, ticket.created_at, targets)
    ticket.first_response_due_at, ticket.resolve_due_at = first_due, resolve_due
    uow.session.flush()
    events.emit(
        uow,
        "ticket.priority_changed",
        entity_type="ticket",
        entity_id=ticket.id,
        payload={
            **_facts(ticket),
            "from_priority": str(previous),
            "to_priority": str(priority),
            "first_response_due_at": first_due.isoformat(),
            "resolve_due_at": resolve_due.isoformat(),
        },
    )
    return ticket


def rate(uow: UnitOfWork, ticket_id: int, rating: int) -> bool:
    """Store the customer's 1–5 rating; False (nothing changed) when the ticket was rated before."""
    if not 1 <= rating <= 5:
        raise ValidationError(_("a rating is a number from 1 to 5"), field="rating")
    ticket = get_ticket(uow, ticket_id)
    # Conditional, so two presses racing each other count once.
    result = uow.session.execute(
        sa.update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.rating.is_(None))
        .values(rating=rating, rated_at=clock.utcnow())
        .execution_options(synchronize_session=False)
    )
    uow.session.refresh(ticket)
    if result.rowcount != 1:  # type: ignore[attr-defined]  # DML returns a CursorResult
        return False
    events.emit(
        uow,
        "ticket.rated",
        entity_type="ticket",
        entity_id=ticket.id,
        payload={**_facts(ticket), "rating": rating, "assignee_id": ticket.assignee_id},
    )
    return True


@dataclass(frozen=True)
class Overdue:
    # "first response" or "resolution"
    what: str
    by: timedelta


def overdue(ticket: Ticket, now: datetime | None = None) -> Overdue | None:
    """What of an open ticket is past its SLA due time (the first response before the resolution)."""
    if ticket.status not in OPEN_STATUSES:
        return None
    now = now or clock.utcnow()
    if ticket.first_responded_at is None and ticket.first_response_due_at and ticket.first_response_due_at < now:
        return Overdue("first response", now - ticket.first_response_due_at)
    if ticket.resolve_due_at and ticket.resolve_due_at < now:
        return Overdue("resolution", now - ticket.resolve_due_at)
    return None


def _overdue_clause(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        Ticket.status.in_(OPEN_STATUSES),
        sa.or_(
            sa.and_(Ticket.first_responded_at.is_(None), Ticket.first_response_due_at < now),
            Ticket.resolve_due_at < now,
        ),
    )


def _tickets_matching(
    now: datetime,
    *,
    assignee_id: int | None = None,
    customer_id: int | None = None,
    open_only: bool = True,
    overdue_only: bool = False,
) -> sa.Select[Ticket]:
    statement = sa.select(Ticket)
    if assignee_id is not None:
        statement = statement.where(Ticket.assignee_id == assignee_id)
    if customer_id is not None:
        statement = statement.where(Ticket.customer_id == customer_id)
    if overdue_only:
        statement = statement.where(_overdue_clause(now))
    elif open_only:
        statement = statement.where(Ticket.status.in_(OPEN_STATUSES))
    rank = sa.case({p.value: r for p, r in PRIORITY_RANK.items()}, value=Ticket.priority, else_=9)
    is_closed = sa.case((Ticket.status.in_(OPEN_STATUSES), 0), else_=1)
    return statement.order_by(is_closed, rank, Ticket.resolve_due_at, Ticket.id.desc())


def list_tickets(
    uow: UnitOfWork,
    *,
    assignee_id: int | None = None,
    customer_id: int | None = None,
    open_only: bool = True,
    overdue_only: bool = False,
    limit: int = 50,
) -> list[Ticket]:
    """Tickets, open ones first, then most urgent, then the earliest due."""
    statement = _tickets_matching(
        clock.utcnow(), assignee_id=assignee_id, customer_id=customer_id, open_only=open_only, overdue_only=overdue_only
    )
    return list(uow.session.scalars(statement.limit(limit)))


@dataclass(frozen=True)
class TicketPage:
    page: paging.Page[Ticket]
    # Overdue tickets among all the matching ones (every page).
    overdue: int


def ticket_page(
    uow: UnitOfWork,
    number: int = 1,
    *,
    assignee_id: int | None = None,
    customer_id: int | None = None,
    open_only: bool = True,
    overdue_only: bool = False,
    size: int = paging.PAGE_SIZE,
) -> TicketPage:
    """One page of tickets in the order of ``list_tickets``, and counts over all of them."""
    now = clock.utcnow()
    statement = _tickets_matching(
        now, assignee_id=assignee_id, customer_id=customer_id, open_only=open_only, overdue_only=overdue_only
    )
    page = paging.fetch(uow.session, statement, number, size)
    late = uow.session.scalar(
        sa.select(sa.func.count()).select_from(statement.where(_overdue_clause(now)).order_by(None).subquery())
    )
    return TicketPage(page, int(late or 0))


def thread(uow: UnitOfWork, ticket_id: int, limit: int = 20) -> tuple[list[TicketMessage], int]:
    """The last ``limit`` messages of a ticket, oldest first, and how many there are in all."""
    total = uow.session.scalar(
        sa.select(sa.func.count()).select_from(TicketMessage).where(TicketMessage.ticket_id == ticket_id)
    )
    latest = list(
        uow.session.scalars(
            sa.select(TicketMessage)
            .where(TicketMessage.ticket_id == ticket_id)
            .order_by(TicketMessage.created_at.desc(), TicketMessage.id.desc())
            .limit(limit)
        )
    )
    return list(reversed(latest)), total or 0
