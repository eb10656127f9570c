"""Customers write to us, staff answer them: the support inbox on any platform with a support desk.

- A customer's plain message in their private chat goes into their open ticket (or opens one); they
  are thanked once per ticket, and a copy goes to the desk's staff room with the ticket number.
- A staff member's reply there to such a copy is the answer: it goes to the customer's chat, and
  the staff member is told whether it arrived (``/ticket reply`` answers the same way from anywhere).
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from bot.args import Kind, rest
from bot.context import Context
from bot.dispatch import reply_to_sender
from bot.hookspecs import hookimpl
from bot.interactive import enqueue as enqueue_interactive
from bot.messages import (
    AfterSend,
    Button,
    Destination,
    Field,
    Outcome,
    Outgoing,
    Reply,
    Request,
    RequestKind,
    Tone,
)
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import attachments, i18n
from crm_core.i18n import N_, _
from crm_core.models import Role, TicketPriority
from crm_core.services import link_codes, sla, support_inbox, tickets
from crm_core.services.users import PlatformId
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.support")
group = CommandGroup()

RELAYED = "support.relay"
ANSWERED = "support.answer"
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


@contextmanager
def _for_staff_room() -> Iterator[str]:
    """Write what goes to the staff room in the company's language (CHATCRM_LANGUAGE)."""
    with i18n.use_language(i18n.default_language()) as language:
        yield language


def _who(req: Request) -> PlatformId:
    return PlatformId(req.origin.platform, req.origin.user_external_id)


def _is_staff(ctx: Context) -> bool:
    """An active CRM user: until they link their account, someone writing to the bot is a customer."""
    return ctx.caller.user_id is not None


def _message_key(message_id: int, what: str) -> str:
    return f"ticket-message:{message_id}:{what}"


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
    if room is None:
        log.warning("ticket #%s got a message but no staff room is set up: nobody was told", wrote.ticket_id)
    else:
        sends.append(
            Outgoing(
                room,
                relay_reply(wrote),
                _message_key(wrote.message_id, "relay"),
                after=AfterSend(RELAYED, wrote.message_id),
            )
        )
    return Outcome(sends=tuple(sends))


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
        with _for_staff_room():
            error = tickets.delivery_error_text(tickets.NO_CHAT, platform)
        confirmation = delivered_reply(answered.customer_name, answered.ticket_id, error)
        return Outcome(sends=(Outgoing(confirm_to, confirmation, _message_key(answered.message_id, "delivered")),))
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
        _message_key(answered.message_id, "answer"),
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
    confirmation = delivered_reply(answered.customer_name, answered.ticket_id, error)
    return (Outgoing(sent.after.notify, confirmation, _message_key(answered.message_id, "delivered")),)


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
    with _for_staff_room() as language:
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
            buttons=(
                Button(_("Assign to me"), f"/ticket assign {wrote.ticket_id} me"),
                Button(_("Open ticket"), f"/ticket {wrote.ticket_id}"),
            ),
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


def delivered_reply(customer_name: str, ticket_id: int, error: str | None) -> Reply:
    """Whether an answer reached the customer, for the staff (in the company's language)."""
    with _for_staff_room() as language:
        if error is None:
            text = _("Sent to {customer} (ticket #{ticket_id}).", customer=customer_name, ticket_id=ticket_id)
            return Reply(text=text, tone=Tone.SUCCESS, language=language)
        text = _(
            "Not delivered to {customer}: {error}. The answer is kept in ticket #{ticket_id}.",
            customer=customer_name,
            error=error,
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
    return [group]
