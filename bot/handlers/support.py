"""Customers write to us, staff answer them: the support inbox on any platform with a support desk.

- A customer's plain message in their private chat goes into their open ticket (or opens one); they
  are thanked once per ticket, and a copy goes to the desk's staff room with the ticket number.
- A staff member's reply there to such a copy is the answer: it goes to the customer's chat, and
  the staff member is told whether it arrived (``/ticket reply`` answers the same way from anywhere).
- Where a platform offers ticket threads (``bot.desk.TicketThreads``: a support channel), each
  customer message is also posted into its ticket's own thread there: the first one starts the thread
  (the ticket's number, customer, subject and priority, then the text), later ones go into it; staff
  answers given elsewhere and the ticket's changes follow them there (``bot/handlers/ticket_threads.py``,
  which writes those posts). A linked staff member's reply in such a thread answers the customer in
  "replies" mode; in "alerts" mode it is kept as an internal note unless it starts with ``!reply``
  (or ``/reply``), so nobody answers a customer by accident.
- A customer sharing their own phone contact links their chat to the customer with that number.
- ``/start`` greets a customer, offers to share their number and opts them in to campaign messages
  in that chat; with a link code (a deep link) it links a staff account; staff get the help.

Everything here is neutral: requests come from ``bot.dispatch`` with a ``SupportDesk`` (which
conversation is the staff room), and the result is a list of messages to send (``Outgoing``),
each with a stable key and, where the CRM must learn how sending went (the relay's message id, an
answer that did not arrive), an ``AfterSend`` that the adapter reports back through
``Dispatcher.report``. The CRM rules live in ``crm_core.services.support_inbox``.

Languages: what goes to the customer is in theirs (the dispatcher has set it for their request:
their own choice, else their chat app's); what goes to the staff room (the copy of their message,
"Sent to …", "Not delivered …") is in the company's (CHATCRM_LANGUAGE), whoever caused it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.args import Kind, rest
from bot.context import Context
from bot.desk import TicketThreads, ticket_threads
from bot.dispatch import reply_to_sender
from bot.handlers import ticket_threads as thread_posts
from bot.handlers.ticket_threads import for_staff_room, message_key, ticket_buttons
from bot.hookspecs import hookimpl
from bot.interactive import enqueue as enqueue_interactive
from bot.messages import (
    AfterSend,
    Destination,
    Field,
    Outcome,
    Outgoing,
    Reply,
    Request,
    RequestKind,
    Tone,
)
from bot.plugin_types import OutboxKind
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import attachments, i18n
from crm_core.events import Event
from crm_core.i18n import N_, _
from crm_core.models import Role, TicketPriority
from crm_core.services import link_codes, sla, support_inbox, tickets
from crm_core.services import ticket_threads as threads
from crm_core.services.users import PlatformId
from crm_core.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.bootstrap import App

log = logging.getLogger("chatcrm.support")
group = CommandGroup()

RELAYED = "support.relay"
ANSWERED = "support.answer"
# What starts a reply in an "alerts" thread that is meant for the customer. Chat apps take a message
# starting with "/" for a command (Slack's refuse an unknown one, and app commands do not run in threads
# at all), so "!reply" is the one to type; "/reply" counts where it gets through (typed after a space).
_ANSWER_PREFIX = re.compile(r"^\s*[!/]reply(?:\s+|$)", re.IGNORECASE)
SHARE_PHONE = N_("Share my phone number")
# A staff reply to one of the bot's messages that names a ticket ("Ticket #12 ...", "工单 #12 ...")
# answers it even when the exact relayed copy is not on record (e.g. the later part of a split message).
_TICKET_NUMBER = re.compile(r"(?:\bTicket|工单) #(\d+)\b")


def staff_hint() -> Reply:
    return Reply(
        text=_("Type /help to see what you can do here, or /ticket list for your tickets."),
        language=i18n.current_language(),
    )


def own_contact_only() -> Reply:
    return Reply(
        text=_("Please share your own phone number with the button under the message box."),
        tone=Tone.WARNING,
        language=i18n.current_language(),
    )


def staff_contact() -> Reply:
    return Reply(
        text=_("You are linked as staff; there is nothing to do with your number here."),
        hide_share_phone=True,
        language=i18n.current_language(),
    )


def _who(req: Request) -> PlatformId:
    return PlatformId(req.origin.platform, req.origin.user_external_id)


def _is_staff(ctx: Context) -> bool:
    """An active CRM user: until they link their account, someone writing to the bot is a customer."""
    return ctx.caller.user_id is not None


# -- /start -------------------------------------------------------------------------------------------


@group.command(
    "start",
    summary=N_("Start talking to us: a greeting, and a button to share your phone number"),
    permission=Permission.HELP,
    params=[rest("payload", Kind.TEXT, required=False, label=N_("Link code"))],
    hidden=True,
)
def start(req: Request, ctx: Context) -> Reply:
    payload = (req.args.get("payload") or "").strip()
    if payload and link_codes.looks_like_code(payload):
        # A deep link to the bot (t.me/<bot>?start=<code>) carries a link code.
        return _run(ctx, "link", replace(req, args={"code_or_user": payload}))
    if ctx.caller.role != Role.CUSTOMER:
        return _run(ctx, "help", replace(req, args={}))
    if req.origin.is_private:
        support_inbox.customer_started(
            ctx.uow, _who(req), req.origin.conversation, req.origin.display_name, req.origin.language_hint
        )
    return greeting(req, ctx)


def _run(ctx: Context, name: str, req: Request) -> Reply:
    command = ctx.router.get(name)
    assert command is not None, f"/{name} is not registered"
    return command.handler(req, ctx)


def greeting(req: Request, ctx: Context) -> Reply:
    """What a customer sees on /start and /help; in a private chat with the offer to share their number."""
    name = req.origin.first_name or req.origin.display_name or ""
    bot_name = ctx.desk.bot_name if ctx.desk is not None else "chatcrm"
    return Reply(
        title=_("Hello {name}!", name=name) if name else _("Hello!"),
        text=_(
            "This is {bot_name}, our support chat. Write your question here and our team will answer you "
            "in this chat.\nIf you are already our customer, share your phone number with the button below "
            "so we can find your records.\nNow and then we may send you news here; send /stop any time and we "
            "will not.",
            bot_name=bot_name,
        ),
        share_phone_button=_(SHARE_PHONE) if req.origin.is_private else None,
    )


# -- plain messages -----------------------------------------------------------------------------------


@group.listen(RequestKind.MESSAGE)
def on_message(req: Request, ctx: Context) -> Outcome | None:
    room = _threads_here(req, ctx)
    if room is not None:
        return _thread_reply(req, ctx, room)
    desk = ctx.desk
    if desk is None:
        return None
    if _is_staff(ctx):
        if desk.is_staff_room(req.origin.platform, req.origin.conversation):
            return _staff_answered(req, ctx) or Outcome()
        return Outcome(sends=(reply_to_sender(req, staff_hint(), "hint"),)) if req.origin.is_private else Outcome()
    if ctx.caller.role == Role.CUSTOMER and req.origin.is_private:
        return _customer_wrote(req, ctx)
    # Chatter in a group, or someone not linked as staff talking in the staff room.
    return Outcome()


def _customer_wrote(req: Request, ctx: Context) -> Outcome:
    assert ctx.desk is not None
    wrote = support_inbox.customer_wrote(
        ctx.uow,
        _who(req),
        req.origin.conversation,
        req.origin.display_name,
        req.text,
        attachment=req.attachments[0] if req.attachments else None,
        external_message_id=req.message_id,
        targets=sla.targets_from_env(ctx.settings.extra),
        language_hint=req.origin.language_hint,
    )
    sends = []
    if wrote.opened:
        sends.append(reply_to_sender(req, received_reply(wrote.ticket_id), "received"))
    if wrote.cut_from is not None:
        sends.append(reply_to_sender(req, cut_reply(wrote.cut_from), "cut"))
    room = ctx.desk.staff_room
    rooms = ticket_threads(ctx.plugins, ctx.settings)
    if room is None and not rooms:
        log.warning("ticket #%s got a message but no staff room is set up: nobody was told", wrote.ticket_id)
    elif room is not None:
        sends.append(
            Outgoing(
                room,
                relay_reply(wrote),
                message_key(wrote.message_id, "relay"),
                after=AfterSend(RELAYED, wrote.message_id),
            )
        )
    sends.extend(thread_posts.thread_post(wrote.message_id, threads_room) for threads_room in rooms)
    return Outcome(sends=tuple(sends))


# -- ticket threads -----------------------------------------------------------------------------------


def _threads_here(req: Request, ctx: Context) -> TicketThreads | None:
    """The ticket-thread room a message was written in, when it was written in a thread of one."""
    if req.origin.thread is None or req.origin.is_private:
        return None
    rooms = ticket_threads(ctx.plugins, ctx.settings)
    return next((room for room in rooms if room.holds(req.origin.platform, req.origin.conversation)), None)


def _thread_reply(req: Request, ctx: Context, room: TicketThreads) -> Outcome:
    """A message in a ticket's thread: from linked staff who may work on tickets, an answer to the
    customer ("replies" mode, or prefixed with !reply) or an internal note; anything else is ignored
    (chatter of people who are not staff, threads that are no ticket's)."""
    assert req.origin.thread is not None
    if not _is_staff(ctx) or not ctx.can(Permission.TICKETS_WRITE):
        return Outcome()
    ticket = threads.ticket_of_thread(ctx.uow, room.platform, room.conversation, req.origin.thread)
    if ticket is None:
        return Outcome()
    text, prefixed = _answer_text(req.text)
    if not (room.replies or prefixed):
        if text:
            threads.note_from_thread(ctx.uow, ticket.id, text, room.conversation, req.message_id)
        return Outcome()
    if not text:
        if not prefixed:
            return Outcome()  # nothing to send (a file without a caption)
        with for_staff_room() as language:
            empty = Reply(text=_("Write the answer after !reply."), tone=Tone.WARNING, language=language)
        return Outcome(sends=(reply_to_sender(req, empty, "empty"),))
    answered = support_inbox.answer_customer(ctx.uow, ticket.id, text)
    # It stands in the thread already: the thread is not shown it again (bot/handlers/ticket_threads.py).
    threads.typed_in_thread(ctx.uow, answered.message_id, room.conversation, req.message_id)
    confirm_to = Destination(room.platform, room.conversation, req.origin.thread)
    return Outcome(sends=(answer_to_customer(answered, text, confirm_to),))


def _answer_text(text: str) -> tuple[str, bool]:
    """A thread message's text without its answer prefix, and whether it had one."""
    found = _ANSWER_PREFIX.match(text)
    if found is None:
        return text.strip(), False
    return text[found.end() :].strip(), True


def _staff_answered(req: Request, ctx: Context) -> Outcome | None:
    """A staff reply in the staff room to a relayed message: the answer to that ticket's customer."""
    replied = req.reply_to
    if replied is None:
        return None
    ticket = support_inbox.ticket_of_relay(ctx.uow, req.origin.conversation, replied.message_id)
    if ticket is None and replied.from_bot and (found := _TICKET_NUMBER.search(replied.text or "")):
        ticket = support_inbox.find_ticket(ctx.uow, int(found.group(1)))
    if ticket is None:
        return None
    platform = req.origin.platform
    answered = support_inbox.staff_answered(ctx.uow, ticket.id, req.text, channel=platform)
    confirm_to = Destination(platform, req.origin.conversation, req.origin.thread, reply_to=req.message_id)
    chat = answered.customer_chat
    if chat is None:
        # Kept as a code: whoever reads the thread later reads why in their own language.
        support_inbox.answer_delivered(ctx.uow, answered.message_id, error=tickets.NO_CHAT)
        confirmation = delivered_reply(answered.customer_name, answered.ticket_id, tickets.NO_CHAT, platform)
        return Outcome(sends=(Outgoing(confirm_to, confirmation, message_key(answered.message_id, "delivered")),))
    return Outcome(sends=(answer_to_customer(answered, req.text, confirm_to),))


def answer_to_customer(answered: support_inbox.StaffAnswered, text: str, confirm_to: Destination | None) -> Outgoing:
    """A staff answer on its way to the customer's chat (a staff-room reply, or ``/ticket reply``): keyed
    by its ticket message, so handling the same request again queues it once; ``confirm_to`` is told
    whether it arrived (``answer_sent``); None: nobody is (an API call has no chat to tell)."""
    chat = answered.customer_chat
    assert chat is not None, "an answer goes to the customer's chat"
    return Outgoing(
        Destination(chat.platform, chat.conversation),
        Reply(text=text),
        message_key(answered.message_id, "answer"),
        after=AfterSend(ANSWERED, answered.message_id, notify=confirm_to),
    )


def queue_answer(
    uow: UnitOfWork, ticket_id: int, text: str, confirm_to: Destination | None
) -> tuple[support_inbox.StaffAnswered, Outgoing]:
    """A staff answer from anywhere (``/ticket reply``, the API's ticket replies): kept on the ticket
    and queued to the customer's chat in the caller's transaction; refused with nothing written when
    there is no chat we can write to (``support_inbox.answer_customer``)."""
    answered = support_inbox.answer_customer(uow, ticket_id, text)
    answer = answer_to_customer(answered, text.strip(), confirm_to)
    enqueue_interactive(uow, [answer])
    return answered, answer


@group.after_send(RELAYED)
def relay_sent(uow: UnitOfWork, sent: Outgoing, message_id: str | None, error: str | None) -> Sequence[Outgoing]:
    assert sent.after is not None
    if message_id is not None:
        support_inbox.relayed(uow, sent.after.ref, sent.to.conversation, message_id)
    else:
        log.warning("the copy of ticket message #%s did not reach the staff room: %s", sent.after.ref, error)
    return ()


@group.after_send(ANSWERED)
def answer_sent(uow: UnitOfWork, sent: Outgoing, message_id: str | None, error: str | None) -> Sequence[Outgoing]:
    assert sent.after is not None
    answered = support_inbox.answer_delivered(uow, sent.after.ref, external_message_id=message_id, error=error)
    if answered is None or sent.after.notify is None:
        return ()
    confirmation = delivered_reply(answered.customer_name, answered.ticket_id, error, sent.to.platform)
    return (Outgoing(sent.after.notify, confirmation, message_key(answered.message_id, "delivered")),)


# -- shared contacts ------------------------------------------------------------------------------------


@group.listen(RequestKind.CONTACT)
def on_contact(req: Request, ctx: Context) -> Outcome | None:
    contact = req.contact
    if contact is None or not req.origin.is_private:
        return Outcome()
    if contact.user_external_id != req.origin.user_external_id:
        return Outcome(sends=(reply_to_sender(req, own_contact_only(), "contact"),))
    if _is_staff(ctx):
        return Outcome(sends=(reply_to_sender(req, staff_contact(), "contact"),))
    if ctx.caller.role != Role.CUSTOMER:
        return None
    linked = support_inbox.contact_shared(
        ctx.uow, _who(req), req.origin.conversation, req.origin.display_name, contact.phone
    )
    return Outcome(sends=(reply_to_sender(req, linked_reply(linked), "contact"),))


# -- what goes out ------------------------------------------------------------------------------------


def relay_reply(wrote: support_inbox.CustomerWrote) -> Reply:
    """The copy of a customer's message in the staff room (in the company's language, an attachment
    named in it too)."""
    with for_staff_room() as language:
        text = attachments.shown(wrote.text, wrote.attachment_kind, wrote.attachment_name)
        facts = {"ticket_id": wrote.ticket_id, "priority": tickets.priority_label(TicketPriority(wrote.priority))}
        if wrote.opened:
            title = _("Ticket #{ticket_id} · new ticket · {priority}", **facts)
        else:
            title = _("Ticket #{ticket_id} · follow-up · {priority}", **facts)
        return Reply(
            title=title,
            fields=(
                Field(
                    _("From"),
                    _("{name} (customer #{customer_id})", name=wrote.customer_name, customer_id=wrote.customer_id),
                ),
            ),
            text=text,
            footer=_("Reply to this message to answer the customer."),
            buttons=ticket_buttons(wrote.ticket_id),
            language=language,
        )


def received_reply(ticket_id: int) -> Reply:
    return Reply(
        text=_(
            "Thank you, we got your message. Your request number is #{ticket_id}; we will answer you here.",
            ticket_id=ticket_id,
        ),
        language=i18n.current_language(),
    )


def cut_reply(length: int) -> Reply:
    return Reply(
        text=_(
            "Your message was too long for us ({length} characters; the limit is {limit}): "
            "we kept its beginning. Please send the rest in another message.",
            length=i18n.format_number(length),
            limit=i18n.format_number(tickets.MAX_MESSAGE),
        ),
        tone=Tone.WARNING,
        language=i18n.current_language(),
    )


def delivered_reply(customer_name: str, ticket_id: int, error: str | None, channel: str) -> Reply:
    """Whether an answer reached the customer on ``channel``, for the staff (in the company's language);
    ``error`` is what the delivery recorded (tickets.NO_CHAT, or the outbox's coded reason)."""
    with for_staff_room() as language:
        if error is None:
            text = _("Sent to {customer} (ticket #{ticket_id}).", customer=customer_name, ticket_id=ticket_id)
            return Reply(text=text, tone=Tone.SUCCESS, language=language)
        text = _(
            "Not delivered to {customer}: {error}. The answer is kept in ticket #{ticket_id}.",
            customer=customer_name,
            error=tickets.delivery_error_text(error, channel),
            ticket_id=ticket_id,
        )
        return Reply(text=text, tone=Tone.ERROR, language=language)


def linked_reply(linked: support_inbox.ContactLinked) -> Reply:
    if linked.matched:
        return Reply(
            text=_(
                "Thank you, {name}: we found your customer record and linked this chat to it.",
                name=linked.customer_name,
            ),
            tone=Tone.SUCCESS,
            hide_share_phone=True,
            language=i18n.current_language(),
        )
    return Reply(
        text=_("Thank you, we saved your phone number. Write your question whenever you like."),
        tone=Tone.SUCCESS,
        hide_share_phone=True,
        language=i18n.current_language(),
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group, thread_posts.group]


@hookimpl
def on_event(event: Event, app: App) -> None:
    thread_posts.on_event(event, app)


@hookimpl
def register_outbox_kinds() -> list[OutboxKind]:
    return thread_posts.outbox_kinds()
