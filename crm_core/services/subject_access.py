"""A data subject's access request (GDPR articles 15 and 20): everything chatcrm holds about one
person, as one JSON-serialisable document.

Sections: the customer's fields and custom fields, company, tags, chats (platform ids), consents
with their history, orders with lines, deals with their stage changes, tickets with their
messages, interactions (notes, calls, chat messages), campaign messages received, scores (churn,
RFM), recommendations, follow-ups, relationships, and the audit log entries about them (personal
values decrypted). Rows of any other table with a foreign key to ``customers`` (a plugin's) are
listed under ``other`` so nothing is left out. Each export is audited: who exported whom.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa

from crm_core import audit
from crm_core.clock import utcnow
from crm_core.models import (
    AuditEntry,
    Base,
    Campaign,
    CampaignRecipient,
    Consent,
    Customer,
    CustomerChat,
    CustomerRelationship,
    CustomerScore,
    CustomFieldDefinition,
    CustomFieldValue,
    Deal,
    DealStageChange,
    FieldEntity,
    FollowUp,
    Interaction,
    Order,
    OrderLine,
    OutboxMessage,
    Recommendation,
    Ticket,
    TicketMessage,
    chat_ids,
)
from crm_core.services import audit_log, customers
from crm_core.uow import UnitOfWork

FORMAT = "chatcrm.subject-access/1"

# Tables written out in their own section; any other table pointing at customers goes to "other".
_COVERED = {
    "customer_tags",
    "customer_chats",
    "customer_consents",
    "orders",
    "deals",
    "tickets",
    "interactions",
    "campaign_recipients",
    "customer_scores",
    "recommendations",
    "followups",
    "customer_relationships",
}


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return None
    return value


def _row(obj: Base, skip: Iterable[str] = ()) -> dict[str, Any]:
    # Blind indexes (crm_core.models.chat_ids) are ours, not the person's data.
    skipped = set(skip) | chat_ids.INDEX_COLUMNS
    return {
        attr.key: _plain(getattr(obj, attr.key))
        for attr in sa.inspect(obj).mapper.column_attrs
        if attr.key not in skipped
    }


def _money(cents: int) -> str:
    return str(Decimal(cents).scaleb(-2))


def _audit_about(uow: UnitOfWork, customer_id: int, owned: dict[str, list[int]]) -> list[dict[str, Any]]:
    """Entries about the customer record and the rows that belong to it, oldest first."""
    conditions = [sa.and_(AuditEntry.entity_type == "customers", AuditEntry.entity_id == str(customer_id))]
    for table, ids in owned.items():
        if ids:
            conditions.append(sa.and_(AuditEntry.entity_type == table, AuditEntry.entity_id.in_([str(i) for i in ids])))
    entries = uow.session.scalars(sa.select(AuditEntry).where(sa.or_(*conditions)).order_by(AuditEntry.id))
    result = []
    for entry in entries:
        shown = audit_log.readable(uow.session, entry)
        result.append(
            {
                "id": shown.id,
                "at": _plain(shown.at),
                "by": shown.actor_name,
                "action": shown.action,
                "entity_type": shown.entity_type,
                "entity_id": shown.entity_id,
                "before": shown.before,
                "after": shown.after,
            }
        )
    return result


def _name(uow: UnitOfWork, customer_id: int) -> str | None:
    other = uow.session.get(Customer, customer_id)
    return other.name if other else None


def _other_tables(uow: UnitOfWork, customer_id: int) -> dict[str, list[dict[str, Any]]]:
    customers_id = cast(sa.Table, Customer.__table__).c.id
    found: dict[str, list[dict[str, Any]]] = {}
    for mapper in Base.registry.mappers:
        table = cast(sa.Table, mapper.local_table)
        if table.name in _COVERED:
            continue
        for column in table.columns:
            if any(fk.column is customers_id for fk in column.foreign_keys):
                rows = uow.session.scalars(sa.select(mapper.class_).where(column == customer_id))
                found.setdefault(table.name, []).extend(_row(row) for row in rows)
    return {name: rows for name, rows in found.items() if rows}


def export_customer(uow: UnitOfWork, customer_id: int) -> dict[str, Any]:
    """Everything about customer ``customer_id``; the export itself is audited."""
    session = uow.session
    customer = customers.get_customer(uow, customer_id)
    by_customer = {
        model: list(session.scalars(sa.select(model).where(model.customer_id == customer_id).order_by(model.id)))
        for model in (CustomerChat, Consent, Order, Deal, Ticket, Interaction, FollowUp)
    }
    chats = cast(list[CustomerChat], by_customer[CustomerChat])
    consents = cast(list[Consent], by_customer[Consent])
    orders = cast(list[Order], by_customer[Order])
    deals = cast(list[Deal], by_customer[Deal])
    tickets = cast(list[Ticket], by_customer[Ticket])
    interactions = cast(list[Interaction], by_customer[Interaction])
    followups = cast(list[FollowUp], by_customer[FollowUp])

    custom = session.execute(
        sa.select(CustomFieldDefinition, CustomFieldValue)
        .join(CustomFieldValue, CustomFieldValue.definition_id == CustomFieldDefinition.id)
        .where(CustomFieldDefinition.entity == FieldEntity.CUSTOMER, CustomFieldValue.entity_id == customer_id)
        .order_by(CustomFieldDefinition.key)
    ).all()
    lines = session.scalars(
        sa.select(OrderLine).where(OrderLine.order_id.in_([o.id for o in orders])).order_by(OrderLine.id)
    ).all()
    messages = session.scalars(
        sa.select(TicketMessage).where(TicketMessage.ticket_id.in_([t.id for t in tickets])).order_by(TicketMessage.id)
    ).all()
    stage_changes = session.scalars(
        sa.select(DealStageChange)
        .where(DealStageChange.deal_id.in_([d.id for d in deals]))
        .order_by(DealStageChange.id)
    ).all()
    received = session.execute(
        sa.select(CampaignRecipient, Campaign.name, Campaign.template)
        .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
        .where(CampaignRecipient.customer_id == customer_id)
        .order_by(CampaignRecipient.id)
    ).all()
    outbox = session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.customer_id == customer_id).order_by(OutboxMessage.id)
    ).all()
    relationships = session.scalars(
        sa.select(CustomerRelationship)
        .where(
            sa.or_(
                CustomerRelationship.customer_id == customer_id,
                CustomerRelationship.related_customer_id == customer_id,
            )
        )
        .order_by(CustomerRelationship.id)
    ).all()
    score = session.get(CustomerScore, customer_id)
    recommendations = session.scalars(
        sa.select(Recommendation).where(Recommendation.customer_id == customer_id).order_by(Recommendation.id)
    ).all()
    owned = {
        "customer_chats": [c.id for c in chats],
        "customer_consents": [c.id for c in consents],
        "orders": [o.id for o in orders],
        "deals": [d.id for d in deals],
        "tickets": [t.id for t in tickets],
        "ticket_messages": [m.id for m in messages],
        "interactions": [i.id for i in interactions],
        "followups": [f.id for f in followups],
        "customer_relationships": [r.id for r in relationships],
        "custom_field_values": [row.id for _, row in custom],
    }
    audit_entries = _audit_about(uow, customer_id, owned)
    consent_history = [e for e in audit_entries if e["entity_type"] == "customer_consents"]

    document: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": _plain(utcnow()),
        "customer": {
            **_row(
                customer,
                skip=(
                    "search_name",
                    "search_keys",
                    "email_index",
                    "phone_index",
                    "phone_tail",
                    "company_id",
                    "owner_id",
                ),
            ),
            "lifetime_value": _money(customer.lifetime_value_cents),
            "company": (
                {"name": customer.company.name, "domain": customer.company.domain, "country": customer.company.country}
                if customer.company
                else None
            ),
            "owner": customer.owner.name if customer.owner else None,
            "tags": customer.tags,
        },
        "custom_fields": {
            definition.key: {
                "label": definition.label,
                "personal": definition.personal,
                "value": _plain(row.value_as(definition.type)),
            }
            for definition, row in custom
        },
        "chats": [_row(c) for c in chats],
        "consents": [
            {**_row(c), "history": [e for e in consent_history if e["entity_id"] == str(c.id)]} for c in consents
        ],
        "orders": [
            {
                **_row(o),
                "total": _money(o.total_cents),
                "lines": [
                    {
                        "sku": line.product.sku,
                        "product": line.product.name,
                        "quantity": line.quantity,
                        "unit_price": _money(line.unit_price_cents),
                        "line_total": _money(line.line_total_cents),
                    }
                    for line in lines
                    if line.order_id == o.id
                ],
            }
            for o in orders
        ],
        "deals": [
            {
                **_row(d),
                "amount": _money(d.amount_cents),
                "stage_changes": [_row(change) for change in stage_changes if change.deal_id == d.id],
            }
            for d in deals
        ],
        "tickets": [{**_row(t), "messages": [_row(m) for m in messages if m.ticket_id == t.id]} for t in tickets],
        "interactions": [_row(i) for i in interactions],
        "campaign_messages": [
            {**_row(recipient), "campaign": name, "template": template} for recipient, name, template in received
        ],
        "messages_sent": [_row(m, skip=("claimed_by", "lease_until", "idempotency_key")) for m in outbox],
        "scores": _row(score) if score is not None else None,
        "recommendations": [{**_row(r), "product": r.product.name, "sku": r.product.sku} for r in recommendations],
        "follow_ups": [_row(f) for f in followups],
        "relationships": [
            {**_row(r), "other": _name(uow, r.related_customer_id if r.customer_id == customer_id else r.customer_id)}
            for r in relationships
        ],
        "audit": audit_entries,
    }
    other = _other_tables(uow, customer_id)
    if other:
        document["other"] = other
    audit.record(uow, "export", "customers", str(customer_id), {"what": "subject access export"})
    return document
