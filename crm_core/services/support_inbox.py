"""The support inbox: customers writing to us in a chat and staff answering them, on any platform.

A customer's message goes into their open ticket (or opens one); the first time someone writes,
a placeholder customer stands for them until they share a phone number that finds their record.
A staff answer is a ticket message on its way out (a reply in the staff room, or ``/ticket reply``
from anywhere); where the copy of a customer's message was
relayed to, and whether an answer reached the customer, is written down once the chat platform
said so. The chat side (what is sent where) lives in ``bot/handlers/support.py``.

A customer's chat app says which language it is in (the platform's language hint): while the
customer has no language of their own, that one is kept on their record, so what we send them
later on our own (a rating request, campaigns) is in their language too, not only the answers to
their messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from crm_core import i18n, outbox
from crm_core.attachments import Attachment
from crm_core.errors import Conflict
from crm_core.i18n import _
from crm_core.models import Customer, CustomerChat, Ticket, TicketMessage, TicketPriority
from crm_core.services import consent, customer_chats, reachability, sla, tickets
from crm_core.services.users import PlatformId
from crm_core.uow import UnitOfWork


@dataclass(frozen=True)
class CustomerWrote:
    ticket_id: int
    # The ticket message the customer's words were stored as.
    message_id: int
    # True when this message opened the ticket.
    opened: bool
    customer_id: int
    customer_name: str
    subject: str
    priority: str
    # The message as kept: cut with a note when it was over tickets.MAX_MESSAGE characters (for a
    # photo, a file...: its caption, maybe empty).
    text: str
    # How long the message was, when it had to be cut (else None).
    cut_from: int | None = None
    # What it carried besides text (crm_core.attachments), to be named in the reader's language.
    attachment_kind: str | None = None
    attachment_name: str | None = None


@dataclass(frozen=True)
class StaffAnswered:
    ticket_id: int
    message_id: int
    customer_name: str
    # The customer's chat on the platform the answer was given on; None when they have none there.
    customer_chat: CustomerChat | None


@dataclass(frozen=True)
class ContactLinked:
    customer_name: str
    # True when the number found an existing customer record.
    matched: bool


def customer_wrote(
    uow: UnitOfWork,
    who: PlatformId,
    conversation: str,
    display_name: str | None,
    text: str,
    *,
    attachment: Attachment | None = None,
    external_message_id: str | None = None,
    targets: Mapping[TicketPriority, sla.Target] | None = None,
    language_hint: str | None = None,
) -> CustomerWrote:
    """A customer's message in their own chat with us: into their open ticket, or opening one.
    ``attachment``: what it carried besides ``text`` (then its caption, maybe empty);
    ``language_hint``: the language their chat app is in (kept while they have none)."""
    chat = customer_chats.ensure_chat(uow, who, conversation, display_name)
    remember_language(chat.customer, language_hint)
    # They can be written to again (if they had blocked the bot); their consent is not changed.
    reachability.recipient_wrote(uow, who.platform, conversation)
    incoming = tickets.customer_wrote(
        uow,
        chat.customer_id,
        text,
        channel=who.platform,
        attachment=attachment,
        external_message_id=external_message_id,
        targets=targets,
    )
    ticket = incoming.ticket
    message = incoming.message
    return CustomerWrote(
        ticket.id,
        incoming.message.id,
        incoming.opened,
        ticket.customer_id,
        ticket.customer.name,
        ticket.subject,
        str(ticket.priority),
        message.text,
        len(text) if len(text) > tickets.MAX_MESSAGE else None,
        message.attachment_kind,
        message.attachment_name,
    )


def customer_started(
    uow: UnitOfWork, who: PlatformId, conversation: str, display_name: str | None, language_hint: str | None = None
) -> None:
    """A customer started a private chat with the bot: they may now get campaign messages there."""
    chat = customer_chats.ensure_chat(uow, who, conversation, display_name)
    remember_language(chat.customer, language_hint)
    consent.opt_in(uow, chat.customer_id, who.platform, conversation, "started the bot")


def remember_language(customer: Customer, hint: str | None) -> None:
    """Keep the chat app's language on a customer who has none (their own choice, or staff's, wins)."""
    language = i18n.supported(hint)
    if language is not None and not customer.language:
        customer.language = language


def ticket_of_relay(uow: UnitOfWork, conversation: str, relay_message_id: str) -> Ticket | None:
    """The ticket whose customer message was relayed as this message of the staff conversation."""
    return tickets.ticket_for_relay(uow, conversation, relay_message_id)


def find_ticket(uow: UnitOfWork, ticket_id: int) -> Ticket | None:
    return uow.session.get(Ticket, ticket_id)


def staff_answered(uow: UnitOfWork, ticket_id: int, text: str, *, channel: str) -> StaffAnswered:
    """The acting staff member's answer to a ticket's customer, given on ``channel`` (a platform) in
    its staff room: kept on the ticket even when the customer has no chat there (it says so then)."""
    ticket = tickets.get_ticket(uow, ticket_id)
    chat = customer_chats.chat_of_customer(uow, ticket.customer_id)
    return _answered(uow, ticket, text, channel, chat if chat is not None and chat.platform == channel else None)


def answer_customer(uow: UnitOfWork, ticket_id: int, text: str) -> StaffAnswered:
    """The acting staff member's answer to a ticket's customer from anywhere (``/ticket reply``), to
    the customer's chat on its own platform, which is the answer's channel. Refused, with nothing
    written, when there is no chat we can write to: no answer is kept that cannot reach them."""
    ticket = tickets.get_ticket(uow, ticket_id)
    chat = customer_chats.chat_of_customer(uow, ticket.customer_id)
    name = ticket.customer.name
    if chat is None:
        raise Conflict(
            _(
                "{name} has no chat with us to answer in (they have not written to the bot); "
                "add a note with /ticket note {ticket_id} or contact them another way",
                name=name,
                ticket_id=ticket.id,
            )
        )
    if outbox.is_blocked(uow.session, chat.platform, chat.conversation):
        raise Conflict(
            _(
                "{name} has blocked us on {platform}, so the answer cannot reach them; "
                "it can once they write to us again",
                name=name,
                platform=chat.platform.capitalize(),
            )
        )
    return _answered(uow, ticket, text, chat.platform, chat)


def _answered(uow: UnitOfWork, ticket: Ticket, text: str, channel: str, chat: CustomerChat | None) -> StaffAnswered:
    # The answer is a ticket message (first response, interaction log): tickets.answer.
    message = tickets.answer(uow, ticket.id, text, channel=channel)
    return StaffAnswered(ticket.id, message.id, ticket.customer.name, chat)


def contact_shared(
    uow: UnitOfWork, who: PlatformId, conversation: str, display_name: str | None, phone: str
) -> ContactLinked:
    """A customer shared their own phone number: link their chat to the customer with that number."""
    chat, matched = customer_chats.link_by_phone(uow, who, conversation, display_name, phone)
    reachability.recipient_wrote(uow, who.platform, conversation)
    return ContactLinked(chat.customer.name, matched)


def relayed(uow: UnitOfWork, message_id: int, conversation: str, relay_message_id: str) -> None:
    """The copy of a customer's message reached the staff conversation as ``relay_message_id``."""
    tickets.record_relay(uow, message_id, conversation, relay_message_id)


def answer_delivered(
    uow: UnitOfWork, message_id: int, *, external_message_id: str | None = None, error: str | None = None
) -> StaffAnswered | None:
    """How sending an answer to the customer went; the answer as it stands (None if it is gone)."""
    tickets.record_delivery(uow, message_id, external_message_id=external_message_id, error=error)
    message = uow.session.get(TicketMessage, message_id)
    if message is None:
        return None
    ticket = tickets.get_ticket(uow, message.ticket_id)
    return StaffAnswered(ticket.id, message.id, ticket.customer.name, None)
