"""Ticket threads in a staff conversation: every ticket gets a thread of its own there.

Where a platform offers threads (a support channel), each customer message of a ticket is
posted into that ticket's thread, and a staff reply in the thread is about that ticket. The first
message posted for a ticket starts the thread; once the platform said what that message's id is
(``thread_started``), later posts go into it. Which message starts the thread is decided when it is
sent, not when it is queued: posts of one conversation leave one at a time, in order, and the id
is written down in the transaction that marks the first one sent, so the next one finds it.

The rest of a ticket's life is mirrored there too (``bot/handlers/thread_mirror.py``): staff answers
given anywhere else, and status, assignment, priority and rating changes. A staff answer typed in
the thread itself is already there: ``typed_in_thread`` writes down where it stands, so it is not
posted there again.

Platform-neutral: a thread is (platform, conversation, thread id); the chat side (what the posts
look like, which conversation) lives in ``bot/handlers/support.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core.models import ExternalThread, Ticket, TicketMessage
from crm_core.services import tickets
from crm_core.uow import UnitOfWork


@dataclass(frozen=True)
class ThreadTicket:
    """A ticket as its thread in one staff conversation introduces it, as it stands now."""

    ticket_id: int
    customer_id: int
    customer_name: str
    subject: str
    priority: str
    # The thread to post into; None: the next post starts the thread.
    thread_id: str | None


@dataclass(frozen=True)
class ThreadPost:
    """A ticket message on its way into the ticket's thread, as it stands when it is sent."""

    ticket_id: int
    message_id: int
    customer_id: int
    customer_name: str
    subject: str
    priority: str
    text: str
    # The thread to post into; None: this post starts the thread.
    thread_id: str | None


@dataclass(frozen=True)
class Answer:
    """A staff answer (or an internal note) on its way into its ticket's thread, as it stands when it is posted."""

    text: str
    attachment_kind: str | None
    attachment_name: str | None
    # The chat platform it was for (the customer's), and why it did not reach them when that is known.
    channel: str
    delivery_error: str | None


def answer_of(session: Session, message_id: int) -> Answer | None:
    """Ticket message ``message_id`` (a staff answer or note) as it stands now; None when it is gone."""
    message = session.get(TicketMessage, message_id)
    if message is None:
        return None
    return Answer(
        message.text, message.attachment_kind, message.attachment_name, message.channel, message.delivery_error
    )


def thread_of(session: Session, ticket_id: int, platform: str, conversation: str) -> ExternalThread | None:
    return session.scalars(
        sa.select(ExternalThread).where(
            ExternalThread.ticket_id == ticket_id,
            ExternalThread.platform == platform,
            ExternalThread.conversation == conversation,
        )
    ).one_or_none()


def ticket_in(session: Session, ticket_id: int, platform: str, conversation: str) -> ThreadTicket | None:
    """Ticket ``ticket_id`` as its thread in ``conversation`` shows it now; None when it is gone."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return None
    thread = thread_of(session, ticket.id, platform, conversation)
    return ThreadTicket(
        ticket.id,
        ticket.customer_id,
        ticket.customer.name,
        ticket.subject,
        str(ticket.priority),
        thread.thread_id if thread is not None else None,
    )


def post_of(session: Session, message_id: int, platform: str, conversation: str) -> ThreadPost | None:
    """What posting ticket message ``message_id`` into its ticket's thread in ``conversation`` means
    now; None when the message (or its ticket) is gone."""
    message = session.get(TicketMessage, message_id)
    if message is None:
        return None
    ticket = ticket_in(session, message.ticket_id, platform, conversation)
    if ticket is None:
        return None
    return ThreadPost(
        ticket.ticket_id,
        message.id,
        ticket.customer_id,
        ticket.customer_name,
        ticket.subject,
        ticket.priority,
        message.text,
        ticket.thread_id,
    )


def thread_started(uow: UnitOfWork, message_id: int, platform: str, conversation: str, thread_id: str) -> bool:
    """Ticket message ``message_id`` was posted as ``thread_id`` in ``conversation`` without a thread to
    go into: it is that ticket's thread from now on. False (nothing changed) when the ticket already
    has a thread there, or is gone."""
    message = uow.session.get(TicketMessage, message_id)
    return message is not None and ticket_thread_started(uow, message.ticket_id, platform, conversation, thread_id)


def ticket_thread_started(uow: UnitOfWork, ticket_id: int, platform: str, conversation: str, thread_id: str) -> bool:
    """A post about ticket ``ticket_id`` went out as ``thread_id`` in ``conversation`` without a thread to
    go into: the ticket's thread from now on. False (nothing changed) when it has one there already, or
    is gone."""
    if uow.session.get(Ticket, ticket_id) is None or thread_of(uow.session, ticket_id, platform, conversation):
        return False
    uow.session.add(
        ExternalThread(ticket_id=ticket_id, platform=platform, conversation=conversation, thread_id=thread_id)
    )
    uow.session.flush()
    return True


def typed_in_thread(uow: UnitOfWork, message_id: int, conversation: str, thread_message_id: str | None) -> None:
    """Ticket message ``message_id`` was typed in a ticket's thread in ``conversation`` (a staff answer
    there) as ``thread_message_id``: it stands there already, and a reply to it is about the ticket."""
    tickets.record_relay(uow, message_id, conversation, thread_message_id)


def stands_in(session: Session, message_id: int, conversation: str) -> bool:
    """Whether ticket message ``message_id`` is in staff conversation ``conversation`` already: relayed
    there, or typed there (``typed_in_thread``)."""
    message = session.get(TicketMessage, message_id)
    return message is not None and message.relay_conversation == conversation


def ticket_of_thread(uow: UnitOfWork, platform: str, conversation: str, thread_id: str) -> Ticket | None:
    """The ticket whose thread in ``conversation`` starts with message ``thread_id``."""
    return uow.session.scalars(
        sa.select(Ticket)
        .join(ExternalThread, ExternalThread.ticket_id == Ticket.id)
        .where(
            ExternalThread.platform == platform,
            ExternalThread.conversation == conversation,
            ExternalThread.thread_id == thread_id,
        )
    ).one_or_none()


def note_from_thread(
    uow: UnitOfWork, ticket_id: int, text: str, conversation: str, thread_message_id: str | None
) -> TicketMessage:
    """A staff message in a ticket's thread that is not an answer: an internal note on the ticket, written
    down as standing in that thread already (``typed_in_thread``), so the thread is not shown it again."""
    note = tickets.add_note(uow, ticket_id, text)
    typed_in_thread(uow, note.id, conversation, thread_message_id)
    return note
