"""Customers' own chats with us: who is writing, and where their answers go.

Someone unknown who writes to the bot gets a placeholder customer named after their chat
profile. Sharing their phone number later links the chat to the customer with that number
(merging the placeholder into it: its consent, tickets, interactions and the rest move over), or puts the number on the placeholder.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from crm_core import contacts, text
from crm_core.models import Customer, CustomerChat, chat_ids
from crm_core.services import customer_merge, customers
from crm_core.services.users import PlatformId
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.customer_chats")


def chat_for(uow: UnitOfWork, platform_id: PlatformId) -> CustomerChat | None:
    return uow.session.scalars(
        sa.select(CustomerChat).where(
            CustomerChat.platform == platform_id.platform,
            chat_ids.is_chat(uow.session, CustomerChat.external_id_index, platform_id.external_id),
        )
    ).one_or_none()


def chat_of_customer(uow: UnitOfWork, customer_id: int) -> CustomerChat | None:
    """The chat to write to a customer in: the most recently linked one."""
    return uow.session.scalars(
        sa.select(CustomerChat).where(CustomerChat.customer_id == customer_id).order_by(CustomerChat.id.desc())
    ).first()


def ensure_chat(uow: UnitOfWork, platform_id: PlatformId, conversation: str, display_name: str | None) -> CustomerChat:
    """The customer behind a chat, creating a placeholder customer on first contact."""
    chat = chat_for(uow, platform_id)
    if chat is not None:
        return chat
    # A chat profile's name is theirs to choose: control characters are dropped, not refused.
    display_name = text.without_control(display_name) if display_name else display_name
    name = (display_name or "").strip()[
        : customers.MAX_NAME
    ] or f"{platform_id.platform} user {text.without_control(platform_id.external_id)}"
    customer = customers.create_customer(uow, name)
    chat = CustomerChat(
        customer_id=customer.id,
        platform=platform_id.platform,
        external_id=platform_id.external_id,
        conversation=conversation,
        display_name=display_name,
        placeholder=True,
    )
    uow.session.add(chat)
    uow.session.flush()
    return chat


def _customer_with_phone(uow: UnitOfWork, phone: str) -> Customer | None:
    # Several customers may share a number (a switchboard); the oldest record is the likeliest.
    where = contacts.phone_is(uow.session, phone)
    return uow.session.scalars(sa.select(Customer).where(where).order_by(Customer.id)).first()


def link_by_phone(
    uow: UnitOfWork, platform_id: PlatformId, conversation: str, display_name: str | None, phone: str
) -> tuple[CustomerChat, bool]:
    """Link the chat to the customer with this phone number; returns (chat, matched an existing customer)."""
    chat = ensure_chat(uow, platform_id, conversation, display_name)
    match = _customer_with_phone(uow, phone)
    if match is None or match.id == chat.customer_id:
        if not chat.customer.phone:
            customers.update_customer(uow, chat.customer_id, {"phone": phone})
        chat.placeholder = False
        uow.session.flush()
        return chat, match is not None
    previous, was_placeholder = chat.customer_id, chat.placeholder
    chat.customer_id = match.id
    chat.placeholder = False
    uow.session.flush()
    uow.session.expire(chat, ["customer"])
    if was_placeholder:
        # Everything the placeholder gathered (the opt-in of /start, tickets, notes, tags...) is
        # the real customer's; the emptied placeholder is deleted, audited.
        customer_merge.merge(uow, match.id, previous)
    log.info("chat %s linked to customer #%s by phone (was #%s)", platform_id, match.id, previous)
    return chat, True
