"""Customer support over Telegram: what a customer's message, a staff reply in the support chat
and a shared phone contact do to the CRM, and the texts that go out about them.

The functions here run inside the caller's unit of work and return what happened; the adapter
sends the messages afterwards (after the transaction committed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.adapters.telegram.inbound import Inbound
from bot.messages import Button, Field, Reply, Tone
from crm_core.models import Ticket, TicketPriority, User
from crm_core.services import consent, customer_chats, sla, tickets, users
from crm_core.services.users import PlatformId
from crm_core.uow import UnitOfWork

# A staff reply to one of the bot's messages that names a ticket ("Ticket #12 ...") answers it
# even when the exact relayed copy is not on record (e.g. the later part of a split message).
_TICKET_NUMBER = re.compile(r"\bTicket #(\d+)\b")


@dataclass(frozen=True)
class CustomerWrote:
    ticket_id: int
    message_id: int
    opened: bool
    customer_id: int
    customer_name: str
    subject: str
    priority: str
    text: str


@dataclass(frozen=True)
class StaffAnswered:
    ticket_id: int
    message_id: int
    customer_name: str
    # The customer's Telegram chat, or None when they have none (nothing can be delivered).
    customer_conversation: str | None
    text: str


@dataclass(frozen=True)
class ContactLinked:
    customer_name: str
    matched: bool


def platform_id(inbound: Inbound) -> PlatformId:
    return PlatformId("telegram", inbound.origin.user_external_id)


def customer_wrote(uow: UnitOfWork, inbound: Inbound, targets: Mapping[TicketPriority, sla.Target]) -> CustomerWrote:
    chat = customer_chats.ensure_chat(
        uow, platform_id(inbound), inbound.origin.conversation, inbound.origin.display_name
    )
    incoming = tickets.customer_wrote(
        uow,
        chat.customer_id,
        inbound.text,
        channel="telegram",
        external_message_id=str(inbound.message_id),
        targets=targets,
    )
    ticket = incoming.ticket
    return CustomerWrote(
        ticket.id,
        incoming.message.id,
        incoming.opened,
        ticket.customer_id,
        ticket.customer.name,
        ticket.subject,
        str(ticket.priority),
        inbound.text,
    )


def customer_started(uow: UnitOfWork, inbound: Inbound) -> None:
    """/start in a private chat: the customer may now get our campaign messages in this chat."""
    chat = customer_chats.ensure_chat(
        uow, platform_id(inbound), inbound.origin.conversation, inbound.origin.display_name
    )
    consent.opt_in(uow, chat.customer_id, "telegram", inbound.origin.conversation, "started the bot")


def staff_answered(uow: UnitOfWork, inbound: Inbound) -> StaffAnswered | None:
    """A staff member's reply in the support chat to a relayed message; None when it answers no ticket."""
    if inbound.reply_to_message_id is None:
        return None
    ticket = tickets.ticket_for_relay(uow, inbound.origin.conversation, str(inbound.reply_to_message_id))
    if ticket is None and inbound.reply_to_bot and (found := _TICKET_NUMBER.search(inbound.reply_to_text or "")):
        ticket = uow.session.get(Ticket, int(found.group(1)))
    if ticket is None:
        return None
    chat = customer_chats.chat_of_customer(uow, ticket.customer_id)
    message = tickets.answer(uow, ticket.id, inbound.text, channel="telegram")
    conversation = chat.conversation if chat is not None and chat.platform == "telegram" else None
    return StaffAnswered(ticket.id, message.id, ticket.customer.name, conversation, inbound.text)


def contact_shared(uow: UnitOfWork, inbound: Inbound) -> ContactLinked:
    chat, matched = customer_chats.link_by_phone(
        uow, platform_id(inbound), inbound.origin.conversation, inbound.origin.display_name, inbound.contact_phone or ""
    )
    return ContactLinked(chat.customer.name, matched)


def staff_user(uow: UnitOfWork, inbound: Inbound) -> User | None:
    """The CRM user behind the sender; until they link their account, a Telegram user is a customer."""
    user = users.user_for_identity(uow, platform_id(inbound))
    return user if user is not None and user.active else None


# -- what goes out ------------------------------------------------------------------------------


def relay_reply(wrote: CustomerWrote) -> Reply:
    """The copy of a customer's message in the staff chat."""
    state = "new ticket" if wrote.opened else "follow-up"
    return Reply(
        title=f"Ticket #{wrote.ticket_id} · {state} · {wrote.priority}",
        fields=(Field("From", f"{wrote.customer_name} (customer #{wrote.customer_id})"),),
        text=wrote.text,
        footer="Reply to this message to answer the customer.",
        buttons=(
            Button("Assign to me", f"/ticket assign {wrote.ticket_id} me"),
            Button("Open ticket", f"/ticket {wrote.ticket_id}"),
        ),
    )


def received_reply(wrote: CustomerWrote) -> Reply:
    return Reply(
        text=f"Thank you, we got your message. Your request number is #{wrote.ticket_id}; we will answer you here."
    )


def delivered_reply(answered: StaffAnswered, error: str | None) -> Reply:
    if error is None:
        return Reply(text=f"Sent to {answered.customer_name} (ticket #{answered.ticket_id}).", tone=Tone.SUCCESS)
    return Reply(
        text=f"Not delivered to {answered.customer_name}: {error}. The answer is kept in ticket #{answered.ticket_id}.",
        tone=Tone.ERROR,
    )


def greeting(first_name: str, bot_name: str) -> Reply:
    return Reply(
        title=f"Hello {first_name}!",
        text=f"This is {bot_name}, our support chat. Write your question here and our team will answer you "
        "in this chat.\nIf you are already our customer, share your phone number with the button below "
        "so we can find your records.\nNow and then we may send you news here; send /stop any time and we will not.",
    )


CUSTOMER_HINT = Reply(text="Just write your question here in your own words; our team will answer you in this chat.")
STAFF_HINT = Reply(text="Type /help to see what you can do here, or /ticket list for your tickets.")
OWN_CONTACT_ONLY = Reply(
    text="Please share your own phone number with the button under the message box.", tone=Tone.WARNING
)


def linked_reply(linked: ContactLinked) -> Reply:
    if linked.matched:
        return Reply(
            text=f"Thank you, {linked.customer_name}: we found your customer record and linked this chat to it.",
            tone=Tone.SUCCESS,
        )
    return Reply(
        text="Thank you, we saved your phone number. Write your question whenever you like.", tone=Tone.SUCCESS
    )
