"""What goes into ticket threads: a ticket's whole life, posted into its own thread in a staff conversation.

Where a platform offers ticket threads (``bot.desk.TicketThreads``: Slack's support channel), every
ticket has a thread there, and a support team working in it sees the conversation and the ticket's
state without leaving it:

- each customer message (queued by ``bot/handlers/support.py`` as the customer writes);
- each staff answer given anywhere else: a reply in the Telegram staff group, ``/ticket reply`` from
  any platform or the console, the REST API ("Anna via Telegram", then the answer). An answer typed in
  the thread itself stands there already and is not posted again (``ticket_threads.typed_in_thread``);
- each internal staff note (``/ticket note``), marked as internal: the customer never sees it (a note
  typed in the thread itself stands there already, like an answer);
- a short note for each status change (resolved, closed, reopened), assignment, priority change, new
  subject or custom field value, and the customer's rating.

The customer's messages are queued by the request that received them. Answers and changes are
domain events (``ticket.answered``, ``ticket.status_changed``, ...), whatever door they came in
through: the support plugin's ``on_event`` listener (run by the worker after the change committed)
queues them with ``mirror_event``. Every post is an outbox row keyed by what it is about (the ticket
message, or the event) and the thread's conversation, so a request handled again, an event delivered
again or replayed, queues nothing twice.

The rows are deferred (``Outgoing.deferred``): they are written when they are sent, in the company's
language (CHATCRM_LANGUAGE), because only then is it known whether the ticket's thread was started
(its id is written down when its first post was sent; a conversation's rows leave one at a time, in
order). A post about a ticket without a thread there yet starts it, introducing the ticket and saying
how to answer there, which depends on the room's mode: hence one kind per mode.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from bot.desk import TicketThreads, ticket_threads
from bot.handlers.common import rating_text
from bot.interactive import enqueue as enqueue_interactive
from bot.messages import AfterSend, Button, Outgoing, Reply
from bot.plugin_types import OutboxKind
from bot.router import CommandGroup
from crm_core import attachments, events, i18n
from crm_core import platforms as crm_platforms
from crm_core.actor import Actor
from crm_core.events import Event
from crm_core.i18n import _
from crm_core.models import TicketPriority, TicketStatus
from crm_core.models.outbox import OutboxStatus
from crm_core.outbox import Claimed, Withheld
from crm_core.outbox_payload import MessagePayload
from crm_core.services import erasure, tickets
from crm_core.services import ticket_threads as threads
from crm_core.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.bootstrap import App

log = logging.getLogger("chatcrm.support")
# The after-send recorders live here; the support plugin hands this group to the router.
group = CommandGroup()

# A customer's message posted into its ticket's thread (AfterSend ref: the ticket message).
THREAD_POSTED = "support.thread_post"
# The deferred outbox kinds of customer messages in ticket threads, by mode: the first post of a thread
# says how to answer there, which depends on the mode (a deferred row carries nothing but its kind).
THREAD_ALERTS = "support.thread.alerts"
THREAD_REPLIES = "support.thread.replies"
# An answer or a change of a ticket posted into its thread (AfterSend ref: the domain event), by mode.
MIRRORED = "support.thread_mirror"
MIRROR_ALERTS = "support.thread_mirror.alerts"
MIRROR_REPLIES = "support.thread_mirror.replies"
# The events a ticket's thread shows; an answer and a note carry the ticket message they are about.
ANSWERED = "ticket.answered"
NOTED = "ticket.noted"
WITH_MESSAGE = frozenset({ANSWERED, NOTED})
MIRRORED_EVENTS = frozenset(
    {
        *WITH_MESSAGE,
        "ticket.status_changed",
        "ticket.assigned",
        "ticket.priority_changed",
        "ticket.updated",
        "ticket.rated",
    }
)


@contextmanager
def for_staff_room() -> Iterator[str]:
    """Write what goes to staff conversations in the company's language (CHATCRM_LANGUAGE)."""
    with i18n.use_language(i18n.default_language()) as language:
        yield language


def message_key(message_id: int, what: str) -> str:
    """The stable key of something sent about ticket message ``message_id``."""
    return f"ticket-message:{message_id}:{what}"


def ticket_buttons(ticket_id: int) -> tuple[Button, ...]:
    return (
        Button(_("Assign to me"), f"/ticket assign {ticket_id} me"),
        Button(_("Open ticket"), f"/ticket {ticket_id}"),
    )


# -- customer messages ----------------------------------------------------------------------------------


def thread_post(message_id: int, room: TicketThreads) -> Outgoing:
    """A customer's message on its way into its ticket's thread in ``room``: written when it is sent
    (``prepare_thread_post``), keyed by the message and the room, so it is queued once."""
    return Outgoing(
        room.destination,
        Reply(),
        message_key(message_id, f"thread:{room.platform}:{room.conversation}"),
        after=AfterSend(THREAD_POSTED, message_id),
        deferred=THREAD_REPLIES if room.replies else THREAD_ALERTS,
    )


def prepare_thread_post(session: Session, row: Claimed, *, replies: bool) -> dict[str, Any] | Withheld:
    """The post of a customer's message into its ticket's thread, written now: into the thread when
    it was started, else as the thread's first message."""
    assert row.after is not None, "a thread post is queued with what it is about"
    post = threads.post_of(session, int(row.after["ref"]), row.platform, row.conversation)
    if post is None:
        return Withheld(OutboxStatus.CANCELLED, "the ticket message was deleted")
    reply = thread_post_reply(post, replies=replies)
    return MessagePayload(reply=reply.to_dict(), thread=post.thread_id).to_json()


@group.after_send(THREAD_POSTED)
def thread_posted(uow: UnitOfWork, sent: Outgoing, message_id: str | None, error: str | None) -> Sequence[Outgoing]:
    assert sent.after is not None
    if message_id is None:
        log.warning("ticket message #%s did not reach its thread: %s", sent.after.ref, error)
    elif sent.to.thread is None:
        # It went out as a thread's first message: the ticket's thread from now on.
        threads.thread_started(uow, sent.after.ref, sent.to.platform, sent.to.conversation, message_id)
    return ()


def thread_post_reply(post: threads.ThreadPost, *, replies: bool) -> Reply:
    """A customer's message in their ticket's thread (in the company's language): the first one
    introduces the ticket and says how to answer there."""
    with for_staff_room() as language:
        if post.thread_id is not None:
            return Reply(
                title=_("{customer} (ticket #{ticket_id})", customer=post.customer_name, ticket_id=post.ticket_id),
                text=post.text,
                language=language,
            )
        ticket = threads.ThreadTicket(
            post.ticket_id, post.customer_id, post.customer_name, post.subject, post.priority, None
        )
        return _opening(ticket, Reply(text=post.text, language=language), replies=replies)


def _opening(ticket: threads.ThreadTicket, post: Reply, *, replies: bool) -> Reply:
    """``post`` as the first message of ``ticket``'s thread: under the ticket's introduction, with how to
    answer there (call it in the company's language)."""
    if replies:
        footer = _("Reply in this thread to answer the customer.")
    else:
        footer = _("Replies in this thread stay internal notes; start one with !reply to answer the customer.")
    title = _(
        "Ticket #{ticket_id} · {customer} · {subject} · {priority}",
        ticket_id=ticket.ticket_id,
        customer=ticket.customer_name,
        subject=ticket.subject,
        priority=tickets.priority_label(TicketPriority(ticket.priority)),
    )
    text = "\n\n".join(part for part in (post.title, post.text) if part)
    footers = "\n".join(part for part in (post.footer, footer) if part)
    return Reply(
        title=title, text=text, footer=footers, buttons=ticket_buttons(ticket.ticket_id), language=post.language
    )


# -- answers and changes --------------------------------------------------------------------------------


def on_event(event: Event, app: App) -> None:
    """The support plugin's event listener: a ticket's answer or change, queued into its thread in every
    ticket-thread room (at least once per event; the keys make it once)."""
    if event.type not in MIRRORED_EVENTS:
        return
    rooms = ticket_threads(app.plugins, app.settings)
    if not rooms:
        return
    with app.uow() as uow:
        enqueue_interactive(uow, mirror_event(uow, event, rooms))


def mirror_event(uow: UnitOfWork, event: Event, rooms: Sequence[TicketThreads]) -> list[Outgoing]:
    """The posts of ``event`` into its ticket's thread in each of ``rooms``: none where it stands already
    (an answer or a note typed in that thread)."""
    sends = []
    for room in rooms:
        message_id = int(event.payload["message_id"]) if event.type in WITH_MESSAGE else None
        if message_id is not None and threads.stands_in(uow.session, message_id, room.conversation):
            continue
        sends.append(
            Outgoing(
                room.destination,
                Reply(),
                f"ticket-event:{event.id}:thread:{room.platform}:{room.conversation}",
                after=AfterSend(MIRRORED, event.id),
                deferred=MIRROR_REPLIES if room.replies else MIRROR_ALERTS,
            )
        )
    return sends


def prepare_mirror(session: Session, row: Claimed, *, replies: bool) -> dict[str, Any] | Withheld:
    """The post of a ticket's answer or change into its thread, written now."""
    assert row.after is not None, "a mirrored post is queued with its event"
    event = events.get(session, int(row.after["ref"]))
    if event is None:
        return Withheld(OutboxStatus.CANCELLED, "the event was pruned before its post went out")
    ticket = threads.ticket_in(session, int(event.payload["ticket_id"]), row.platform, row.conversation)
    if ticket is None:
        return Withheld(OutboxStatus.CANCELLED, "the ticket was deleted")
    answer = None
    if event.type in WITH_MESSAGE:
        answer = threads.answer_of(session, int(event.payload["message_id"]))
        if answer is None:
            return Withheld(OutboxStatus.CANCELLED, "the answer or note was deleted")
    reply = mirror_reply(event, ticket, answer, replies=replies)
    return MessagePayload(reply=reply.to_dict(), thread=ticket.thread_id).to_json()


@group.after_send(MIRRORED)
def mirrored(uow: UnitOfWork, sent: Outgoing, message_id: str | None, error: str | None) -> Sequence[Outgoing]:
    assert sent.after is not None
    if message_id is None:
        log.warning("event #%s did not reach its ticket's thread: %s", sent.after.ref, error)
    elif sent.to.thread is None:
        event = events.get(uow.session, sent.after.ref)
        if event is not None:
            ticket_id = int(event.payload["ticket_id"])
            threads.ticket_thread_started(uow, ticket_id, sent.to.platform, sent.to.conversation, message_id)
    return ()


def mirror_reply(event: Event, ticket: threads.ThreadTicket, answer: threads.Answer | None, *, replies: bool) -> Reply:
    """An answer ("Anna via Telegram", then the answer), an internal note (marked so) or a change (one short
    line) in a ticket's thread, in the company's language; the thread's first message when it has none yet."""
    with for_staff_room() as language:
        if answer is not None and event.type == NOTED:
            post = Reply(
                title=_("🔒 Internal note · {by}", by=_by(event.actor)),
                text=answer.text,
                footer=_("The customer does not see this note."),
                language=language,
            )
        elif answer is not None:
            text = attachments.shown(answer.text, answer.attachment_kind, answer.attachment_name)
            post = Reply(title=_by(event.actor), text=text, footer=_undelivered(answer), language=language)
        else:
            by = _by(event.actor) if event.actor.user_id is not None else None
            post = Reply(text=change_note(event), footer=by, language=language)
        reply = _opening(ticket, post, replies=replies) if ticket.thread_id is None else post
        # An erased customer's ticket reads "Erased customer #12" and "[erased]" in the data: said in words.
        return reply.with_texts(erasure.shown)


def _by(actor: Actor) -> str:
    """Who did it and where: "Anna via Telegram", "Anna via the API"."""
    if actor.platform.startswith("api:") or actor.platform == "api":
        return _("{name} via the API", name=actor.name)
    return _("{name} via {platform}", name=actor.name, platform=crm_platforms.traits(actor.platform).display)


def _undelivered(answer: threads.Answer) -> str | None:
    """Why an answer did not reach the customer, when that is known by the time it is posted."""
    if answer.delivery_error is None:
        return None
    reason = tickets.delivery_error_text(answer.delivery_error, answer.channel)
    return _("Not delivered to the customer: {reason}", reason=reason)


def change_note(event: Event) -> str:
    """A ticket's change in one line, in the current language."""
    payload = event.payload
    if event.type == "ticket.status_changed":
        return _(
            "Status: {old} → {new}",
            old=tickets.status_label(TicketStatus(payload["from_status"])),
            new=tickets.status_label(TicketStatus(payload["to_status"])),
        )
    if event.type == "ticket.priority_changed":
        return _(
            "Priority: {old} → {new}",
            old=tickets.priority_label(TicketPriority(payload["from_priority"])),
            new=tickets.priority_label(TicketPriority(payload["to_priority"])),
        )
    if event.type == "ticket.assigned":
        if payload["assignee"] is None:
            return _("No longer assigned to anyone")
        return _("Assigned to {name}", name=payload["assignee"])
    if event.type == "ticket.updated":
        return "\n".join(_changed(field, change) for field, change in payload["changes"].items())
    if event.type == "ticket.rated":
        return _(
            "{customer} rated the ticket {rating}", customer=payload["customer"], rating=rating_text(payload["rating"])
        )
    raise ValueError(f"{event.type} is not a ticket change a thread shows")


def _changed(field: str, change: dict[str, str | None]) -> str:
    """One field of ``/ticket edit`` (the subject, or a custom field by its key): before → after."""
    old, new = change.get("old") or "—", change.get("new") or "—"
    if field == "subject":
        return _("Subject: {old} → {new}", old=old, new=new)
    return _("{field}: {old} → {new}", field=field, old=old, new=new)


def outbox_kinds() -> list[OutboxKind]:
    """The deferred kinds of posts into ticket threads (registered by the support plugin)."""
    return [
        OutboxKind(
            THREAD_ALERTS,
            functools.partial(prepare_thread_post, replies=False),
            "customer messages posted into their ticket's thread (replies there stay internal)",
        ),
        OutboxKind(
            THREAD_REPLIES,
            functools.partial(prepare_thread_post, replies=True),
            "customer messages posted into their ticket's thread (replies there answer the customer)",
        ),
        OutboxKind(
            MIRROR_ALERTS,
            functools.partial(prepare_mirror, replies=False),
            "staff answers given elsewhere and ticket changes posted into the ticket's thread (replies there stay "
            "internal)",
        ),
        OutboxKind(
            MIRROR_REPLIES,
            functools.partial(prepare_mirror, replies=True),
            "staff answers given elsewhere and ticket changes posted into the ticket's thread (replies there "
            "answer the customer)",
        ),
    ]
