"""Erasure on request (GDPR article 17): a customer's personal data removed or irreversibly
anonymised, their orders and the figures built on them kept under a pseudonym.

Removed or overwritten: the name (now "Erased customer #<id>"), email, phone, external id,
timezone, tags, chats (platform ids), personal custom field values, relationships, scores and
recommendations; the texts of their interactions, ticket messages, ticket subjects and
follow-ups; their consents' conversation ids (and every consent becomes an opt-out); their
campaign recipient rows' addresses (queued ones cancelled); their outbox rows (pending ones
cancelled, every one's address and payload scrubbed); the personal fields of domain events about
them; button and form state that mentions them. Deal titles that name them become "Deal #<id>".

Kept: the customer row (id, country, language, owner, company, order figures), orders and their
lines, deals (amounts, stages), tickets (status, times, rating): reports still add up.

The audit log is append-only: its personal values about the customer were written encrypted with
the customer's data key (crm_core.customer_keys), which is destroyed last, after the changes
above were audited. The erasure itself is audited (who, whom, why) without the erased values, and
``customer.erased`` tells plugins and webhooks to delete their copies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from crm_core import audit, customer_keys, events, i18n
from crm_core.clock import utcnow
from crm_core.errors import ValidationError
from crm_core.i18n import _
from crm_core.models import (
    BlockedRecipient,
    ButtonCommand,
    CampaignRecipient,
    Consent,
    ConsentStatus,
    CustomerChat,
    CustomerRelationship,
    CustomerScore,
    CustomerTag,
    CustomFieldDefinition,
    CustomFieldValue,
    Deal,
    DomainEvent,
    FieldEntity,
    FollowUp,
    FormSession,
    IdempotentRequest,
    Interaction,
    OutboxMessage,
    OutboxStatus,
    RecipientStatus,
    Recommendation,
    Ticket,
    TicketMessage,
    chat_ids,
)
from crm_core.outbox_payload import MessagePayload
from crm_core.services import customers
from crm_core.uow import UnitOfWork

ERASED_TEXT = "[erased]"
_SCRUBBED_PAYLOAD = MessagePayload(formatted_text=ERASED_TEXT, format="text").to_json()
# Event payload fields that hold who the person is or what they wrote.
_EVENT_NAME_FIELDS = frozenset({"customer", "name"})
_EVENT_PERSONAL_FIELDS = frozenset(
    {"email", "phone", "text", "subject", "changes", "display_name", "conversation", "external_id"}
)
_OPEN_OUTBOX = (OutboxStatus.PENDING, OutboxStatus.HELD, OutboxStatus.SENDING)


def pseudonym(customer_id: int) -> str:
    """The name an erased customer keeps in the data: English and stable, like ``[erased]``, so exports,
    the API and webhooks carry one marker whatever the company's language (``shown`` translates it)."""
    return f"{_PSEUDONYM_PREFIX}{customer_id}"


_PSEUDONYM_PREFIX = "Erased customer #"
# The markers an erasure (and the audit log's reader, crm_core.customer_keys) leaves in data.
_MARKERS = re.compile(
    rf"{re.escape(_PSEUDONYM_PREFIX)}(\d+)|{re.escape(ERASED_TEXT)}|{re.escape(customer_keys.LOCKED)}"
)


def shown(text: str) -> str:
    """``text`` with the erasure markers it holds ("Erased customer #12", "[erased]", "[encrypted]") in
    the current language, for a person to read; the rest of the text is left as it is."""
    if "[e" not in text and _PSEUDONYM_PREFIX not in text:
        return text  # the usual case, without a regular expression

    def translated(found: re.Match[str]) -> str:
        if found.group(1) is not None:
            return _("Erased customer #{id}", id=found.group(1))
        if found.group(0) == ERASED_TEXT:
            return _("[erased]")
        return _("[encrypted]")

    return _MARKERS.sub(translated, text)


@dataclass(frozen=True)
class Erasure:
    customer_id: int
    pseudonym: str
    # Rows changed or removed, by table (for the confirmation message).
    counts: dict[str, int]


def _personal_strings(uow: UnitOfWork, customer_id: int) -> set[str]:
    """The person's identifying strings, to find them in free-form places (event payloads, button state)."""
    customer = customers.get_customer(uow, customer_id)
    found = {customer.name, customer.email, customer.phone, customer.external_ref}
    for chat in uow.session.scalars(sa.select(CustomerChat).where(CustomerChat.customer_id == customer_id)):
        found |= {chat.external_id, chat.conversation, chat.display_name}
    for consent in uow.session.scalars(sa.select(Consent).where(Consent.customer_id == customer_id)):
        found.add(consent.conversation)
    # Short strings ("1", "de") would match everywhere: only distinctive ones are searched for.
    return {s for s in found if s and len(s) >= 4}


def _mentions(value: Any, strings: set[str]) -> bool:
    if isinstance(value, str):
        return any(s in value for s in strings)
    if isinstance(value, dict):
        return any(_mentions(v, strings) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_mentions(v, strings) for v in value)
    return False


def _scrub_payload(value: Any, strings: set[str], name: str) -> Any:
    if isinstance(value, dict):
        scrubbed = {}
        for key, inner in value.items():
            if key in _EVENT_NAME_FIELDS and isinstance(inner, str):
                scrubbed[key] = name
            elif key in _EVENT_PERSONAL_FIELDS and inner is not None:
                scrubbed[key] = ERASED_TEXT
            else:
                scrubbed[key] = _scrub_payload(inner, strings, name)
        return scrubbed
    if isinstance(value, list):
        return [_scrub_payload(inner, strings, name) for inner in value]
    if isinstance(value, str) and any(s in value for s in strings):
        return ERASED_TEXT
    return value


def _scrub_events(uow: UnitOfWork, customer_id: int, strings: set[str], name: str, counts: dict[str, int]) -> None:
    session = uow.session
    owned = {
        "customer": [customer_id],
        "ticket": list(session.scalars(sa.select(Ticket.id).where(Ticket.customer_id == customer_id))),
        "deal": list(session.scalars(sa.select(Deal.id).where(Deal.customer_id == customer_id))),
        "interaction": list(session.scalars(sa.select(Interaction.id).where(Interaction.customer_id == customer_id))),
        "followup": list(session.scalars(sa.select(FollowUp.id).where(FollowUp.customer_id == customer_id))),
    }
    about = [
        sa.and_(DomainEvent.entity_type == kind, DomainEvent.entity_id.in_([str(i) for i in ids]))
        for kind, ids in owned.items()
        if ids
    ]
    # Events about other records that name the customer (their payload's customer_id, kept beside it
    # in the clear: the payload itself is encrypted).
    about.append(DomainEvent.customer_id == customer_id)
    for event in session.scalars(sa.select(DomainEvent).where(sa.or_(*about))):
        scrubbed = _scrub_payload(event.payload, strings, name)
        if scrubbed != event.payload:
            event.payload = scrubbed
            counts["events"] = counts.get("events", 0) + 1


def _scrub_outbox(uow: UnitOfWork, customer_id: int, addresses: set[tuple[str, str]], counts: dict[str, int]) -> None:
    session = uow.session
    to_them = [OutboxMessage.customer_id == customer_id]
    to_them += [
        sa.and_(
            OutboxMessage.platform == platform,
            chat_ids.is_chat(session, OutboxMessage.conversation_index, conversation),
        )
        for platform, conversation in addresses
    ]
    for row in session.scalars(sa.select(OutboxMessage).where(sa.or_(*to_them))):
        if row.status in _OPEN_OUTBOX:
            row.status = OutboxStatus.CANCELLED
            row.lease_until = None
            row.claimed_by = None
        row.conversation = ERASED_TEXT
        row.payload = dict(_SCRUBBED_PAYLOAD)
        row.last_error = None
        counts["outbox"] = counts.get("outbox", 0) + 1
    for platform, conversation in addresses:
        session.execute(
            sa.delete(BlockedRecipient).where(
                BlockedRecipient.platform == platform,
                chat_ids.is_chat(session, BlockedRecipient.conversation_index, conversation),
            )
        )


def _scrub_chat_state(uow: UnitOfWork, strings: set[str]) -> None:
    """Buttons, unfinished forms and stored API answers (Idempotency-Key replays) are short-lived;
    any that mention the person go."""
    session = uow.session
    for stored in session.scalars(sa.select(IdempotentRequest).where(IdempotentRequest.response_body.is_not(None))):
        if _mentions(bytes(stored.response_body or b"").decode("utf-8", "replace"), strings):
            session.delete(stored)
    for button in session.scalars(sa.select(ButtonCommand)):
        if _mentions(button.command, strings):
            session.delete(button)
    for form in session.scalars(sa.select(FormSession)):
        if _mentions([form.form, form.answers, form.queue], strings):
            session.delete(form)


def _overwrite(rows: Any, counts: dict[str, int], table: str, **values: Any) -> None:
    for row in rows:
        for key, value in values.items():
            setattr(row, key, value)
        counts[table] = counts.get(table, 0) + 1


def erase(uow: UnitOfWork, customer_id: int, reason: str | None = None) -> Erasure:
    """Erase customer ``customer_id``'s personal data (see the module docstring for what goes)."""
    session = uow.session
    customer = customers.get_customer(uow, customer_id)
    if customer.erased_at is not None:
        raise ValidationError(
            _(
                "customer #{id} was already erased on {date}",
                id=customer_id,
                date=i18n.format_date(customer.erased_at.date()),
            )
        )
    strings = _personal_strings(uow, customer_id)
    name = pseudonym(customer_id)
    counts: dict[str, int] = {}
    chats = list(session.scalars(sa.select(CustomerChat).where(CustomerChat.customer_id == customer_id)))
    consents = list(session.scalars(sa.select(Consent).where(Consent.customer_id == customer_id)))
    addresses = {(c.platform, c.conversation) for c in chats} | {(c.platform, c.conversation) for c in consents}

    # Free-form copies first, while the values to look for are still known.
    _scrub_events(uow, customer_id, strings, name, counts)
    _scrub_outbox(uow, customer_id, addresses, counts)
    _scrub_chat_state(uow, strings)

    for chat in chats:
        session.delete(chat)
    counts["customer_chats"] = len(chats)
    now = utcnow()
    for consent in consents:
        if consent.status != ConsentStatus.OPTED_OUT:
            consent.status, consent.opted_out_at, consent.opted_out_source = ConsentStatus.OPTED_OUT, now, "erasure"
        consent.conversation = ERASED_TEXT
    counts["customer_consents"] = len(consents)
    for recipient in session.scalars(sa.select(CampaignRecipient).where(CampaignRecipient.customer_id == customer_id)):
        if recipient.status == RecipientStatus.QUEUED:
            recipient.status = RecipientStatus.CANCELLED
        recipient.conversation = ERASED_TEXT
        recipient.error = None
        counts["campaign_recipients"] = counts.get("campaign_recipients", 0) + 1

    personal_fields = sa.select(CustomFieldDefinition.id).where(
        CustomFieldDefinition.entity == FieldEntity.CUSTOMER, CustomFieldDefinition.personal.is_(True)
    )
    for value in session.scalars(
        sa.select(CustomFieldValue).where(
            CustomFieldValue.definition_id.in_(personal_fields), CustomFieldValue.entity_id == customer_id
        )
    ):
        session.delete(value)
        counts["custom_field_values"] = counts.get("custom_field_values", 0) + 1
    for model in (CustomerScore, Recommendation, CustomerTag):
        for row in session.scalars(sa.select(model).where(model.customer_id == customer_id)):
            session.delete(row)
            counts[model.__tablename__] = counts.get(model.__tablename__, 0) + 1
    session.expire(customer, ["tag_rows"])
    for relationship in session.scalars(
        sa.select(CustomerRelationship).where(
            sa.or_(
                CustomerRelationship.customer_id == customer_id,
                CustomerRelationship.related_customer_id == customer_id,
            )
        )
    ):
        session.delete(relationship)
        counts["customer_relationships"] = counts.get("customer_relationships", 0) + 1

    ticket_ids = sa.select(Ticket.id).where(Ticket.customer_id == customer_id)
    _overwrite(
        session.scalars(sa.select(Interaction).where(Interaction.customer_id == customer_id)),
        counts,
        "interactions",
        text=ERASED_TEXT,
        attachment_name=None,
    )
    _overwrite(
        session.scalars(sa.select(TicketMessage).where(TicketMessage.ticket_id.in_(ticket_ids))),
        counts,
        "ticket_messages",
        text=ERASED_TEXT,
        attachment_name=None,
        external_message_id=None,
        delivery_error=None,
    )
    _overwrite(
        session.scalars(sa.select(Ticket).where(Ticket.customer_id == customer_id)),
        counts,
        "tickets",
        subject=ERASED_TEXT,
    )
    _overwrite(
        session.scalars(sa.select(FollowUp).where(FollowUp.customer_id == customer_id)),
        counts,
        "follow_ups",
        text=ERASED_TEXT,
    )
    for deal in session.scalars(sa.select(Deal).where(Deal.customer_id == customer_id)):
        if _mentions(deal.title, strings):
            deal.title = f"Deal #{deal.id}"
        if _mentions(deal.lost_reason, strings):
            deal.lost_reason = ERASED_TEXT

    customer.name = name
    customer.email = None
    customer.phone = None
    customer.external_ref = None
    customer.timezone = None
    customer.erased_at = now
    session.flush()
    if session.get_bind().dialect.name == "sqlite":
        # The full-text index keeps deleted terms in its segments until they are merged.
        session.execute(sa.text("INSERT INTO customer_fts(customer_fts) VALUES ('optimize')"))

    # The reason is kept, but not a copy of what was erased (an admin may have named the person in it).
    audit.record(
        uow,
        "erase",
        "customers",
        str(customer_id),
        {"reason": _scrub_payload(reason, strings, name), "pseudonym": name},
    )
    events.emit(
        uow, "customer.erased", entity_type="customer", entity_id=customer_id, payload={"customer_id": customer_id}
    )
    # Last: every audit entry above about them was sealed with this key.
    customer_keys.shred(session, customer_id)
    return Erasure(customer_id, name, counts)
