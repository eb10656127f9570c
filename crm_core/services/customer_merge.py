"""Merge one customer record into another: everything that hangs off it moves, then it goes.

Used when a Telegram chat's placeholder customer turns out to be a known customer (they shared
a phone number we have), and by a staff merge of duplicates. Every row is moved through the
ORM, so each move, and the deletion of the emptied record, is in the audit log. Where the kept
customer already has the equivalent (a consent on the same platform, a tag, a custom field
value, a place in a campaign run), one of the two is kept by a rule written down below and the
other is deleted, audited too.

Rows that refer to a customer without a foreign key are moved here by name (custom field
values, outbox rows); every other table with a foreign key to ``customers`` is found in the
metadata and moved, so a table added later (a plugin's too) cannot be forgotten. Past domain
events are history and stay as they were; a ``customer.merged`` event tells listeners.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import cast

import sqlalchemy as sa

from crm_core import events
from crm_core.errors import ValidationError
from crm_core.i18n import _
from crm_core.models import (
    Base,
    CampaignRecipient,
    Consent,
    Customer,
    CustomerRelationship,
    CustomerScore,
    CustomerTag,
    CustomFieldDefinition,
    CustomFieldValue,
    FieldEntity,
    OutboxMessage,
)
from crm_core.services import customers, orders
from crm_core.uow import UnitOfWork


def _newer(row: Consent, than: Consent) -> bool:
    def decided_at(consent: Consent) -> datetime | None:
        return max((t for t in (consent.opted_in_at, consent.opted_out_at) if t is not None), default=None)

    mine, theirs = decided_at(row), decided_at(than)
    return mine is not None and (theirs is None or mine > theirs)


def _merge_consents(uow: UnitOfWork, keep_id: int, other_id: int, moved: Counter[str]) -> None:
    """One consent per platform: the customer's latest decision wins (an opt-out is a decision too)."""
    session = uow.session
    for row in session.scalars(sa.select(Consent).where(Consent.customer_id == other_id)):
        kept = session.scalars(
            sa.select(Consent).where(Consent.customer_id == keep_id, Consent.platform == row.platform)
        ).one_or_none()
        if kept is None:
            row.customer_id = keep_id
        else:
            if _newer(row, kept):
                for column in ("conversation", "status", "opted_in_at", "opted_in_source"):
                    setattr(kept, column, getattr(row, column))
                kept.opted_out_at, kept.opted_out_source = row.opted_out_at, row.opted_out_source
            session.delete(row)
        moved["customer_consents"] += 1
    session.flush()


def _merge_tags(uow: UnitOfWork, keep_id: int, other_id: int, moved: Counter[str]) -> None:
    session = uow.session
    have = set(session.scalars(sa.select(CustomerTag.tag).where(CustomerTag.customer_id == keep_id)))
    for row in session.scalars(sa.select(CustomerTag).where(CustomerTag.customer_id == other_id)):
        # The tag is part of the key: a new row for the kept customer, not an UPDATE of the key.
        if row.tag not in have:
            session.add(CustomerTag(customer_id=keep_id, tag=row.tag))
        session.delete(row)
        moved["customer_tags"] += 1
    session.flush()


def _merge_custom_fields(uow: UnitOfWork, keep_id: int, other_id: int, moved: Counter[str]) -> None:
    """A value moves where the kept customer has none for that field; the kept customer's own value wins."""
    session = uow.session
    customer_fields = sa.select(CustomFieldDefinition.id).where(CustomFieldDefinition.entity == FieldEntity.CUSTOMER)
    values = CustomFieldValue.definition_id.in_(customer_fields)
    have = set(
        session.scalars(sa.select(CustomFieldValue.definition_id).where(values, CustomFieldValue.entity_id == keep_id))
    )
    for row in session.scalars(sa.select(CustomFieldValue).where(values, CustomFieldValue.entity_id == other_id)):
        if row.definition_id in have:
            session.delete(row)
        else:
            row.entity_id = keep_id
        moved["custom_field_values"] += 1
    session.flush()


def _merge_unique_rows(uow: UnitOfWork, keep_id: int, other_id: int, moved: Counter[str]) -> None:
    """Rows that may exist once per customer: the kept customer's own row stays."""
    session = uow.session
    # Scores are recomputed every night from orders; the kept customer's stand until then.
    for score in session.scalars(sa.select(CustomerScore).where(CustomerScore.customer_id == other_id)):
        session.delete(score)
    in_runs = set(session.scalars(sa.select(CampaignRecipient.run_id).where(CampaignRecipient.customer_id == keep_id)))
    for recipient in session.scalars(sa.select(CampaignRecipient).where(CampaignRecipient.customer_id == other_id)):
        if recipient.run_id in in_runs:
            session.delete(recipient)
        else:
            recipient.customer_id = keep_id
        moved["campaign_recipients"] += 1
    # A relationship between the two would become one with itself.
    between = sa.or_(
        sa.and_(CustomerRelationship.customer_id == other_id, CustomerRelationship.related_customer_id == keep_id),
        sa.and_(CustomerRelationship.customer_id == keep_id, CustomerRelationship.related_customer_id == other_id),
    )
    for relationship in session.scalars(sa.select(CustomerRelationship).where(between)):
        session.delete(relationship)
    session.flush()


def _customer_foreign_keys() -> list[tuple[type[Base], str, sa.Column[int]]]:
    """(model, attribute, column) for every mapped column with a foreign key to customers.id."""
    customers_id = cast(sa.Table, Customer.__table__).c.id
    found = []
    for mapper in Base.registry.mappers:
        for column in cast(sa.Table, mapper.local_table).columns:
            if any(fk.column is customers_id for fk in column.foreign_keys):
                found.append((mapper.class_, mapper.get_property_by_column(column).key, column))
    return sorted(found, key=lambda item: (item[0].__name__, item[1]))


def what_moves(uow: UnitOfWork, other_id: int) -> dict[str, int]:
    """How many rows of each table hang off customer ``other_id`` (what a merge would move), tables
    with none left out: for the confirmation before a merge."""
    counts: Counter[str] = Counter()
    for _model, _attribute, column in _customer_foreign_keys():
        found = uow.session.scalar(sa.select(sa.func.count()).select_from(column.table).where(column == other_id))
        if found:
            counts[cast(sa.Table, column.table).name] += int(found)
    return dict(counts)


def merge(uow: UnitOfWork, keep_id: int, other_id: int) -> dict[str, int]:
    """Move everything of customer ``other_id`` to ``keep_id`` and delete ``other_id``.

    Returns how many rows of each table moved (or were folded into the kept customer's own).
    """
    if keep_id == other_id:
        raise ValidationError(_("a customer cannot be merged into itself"))
    keep = customers.get_customer(uow, keep_id)
    other = customers.get_customer(uow, other_id)
    session = uow.session
    moved: Counter[str] = Counter()
    _merge_consents(uow, keep_id, other_id, moved)
    _merge_tags(uow, keep_id, other_id, moved)
    _merge_custom_fields(uow, keep_id, other_id, moved)
    _merge_unique_rows(uow, keep_id, other_id, moved)
    had_orders = False
    for model, attribute, column in _customer_foreign_keys():
        table = cast(sa.Table, column.table).name
        for row in session.scalars(sa.select(model).where(column == other_id)):
            setattr(row, attribute, keep_id)
            moved[table] += 1
            had_orders = had_orders or table == "orders"
    session.flush()
    # Outbox rows name their customer without a foreign key (they outlive deletions).
    session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.customer_id == other_id)
        .values(customer_id=keep_id)
        .execution_options(synchronize_session=False)
    )
    if had_orders:
        orders.refresh_customer_stats(uow, [keep_id])
    # Loaded objects still point at the old customer through their relationships.
    for obj in list(session.identity_map.values()):
        if obj is not keep and obj is not other:
            session.expire(obj)
    session.expire(other, ["tag_rows"])
    session.delete(other)
    session.flush()
    events.emit(
        uow,
        "customer.merged",
        entity_type="customer",
        entity_id=keep_id,
        payload={"customer_id": keep_id, "merged_id": other_id, "name": keep.name},
    )
    return dict(moved)
