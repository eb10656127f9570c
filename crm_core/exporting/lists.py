"""What each export holds: its columns and a streamed query, one module-level recipe per entity.

Rows are read in batches (``yield_per``: a server-side cursor on PostgreSQL), and what a row needs
from other tables (a customer's tags and custom fields) is fetched once per batch, never per row.
Amounts are written as decimal numbers in their own currency, times in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from crm_core.i18n import _
from crm_core.models import (
    AuditEntry,
    Company,
    Customer,
    CustomerTag,
    CustomFieldDefinition,
    CustomFieldValue,
    Deal,
    FieldEntity,
    Interaction,
    Order,
    OrderLine,
    Product,
    Ticket,
    User,
)

BATCH = 2000


class ExportFailed(Exception):
    """The export cannot be made as asked (a filter on a list without customers, a missing library)."""


@dataclass(frozen=True)
class Listing:
    columns: list[str]
    batches: Iterator[list[tuple[Any, ...]]]


def _money(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents).scaleb(-2)


def _stream(session: Session, statement: Any) -> Iterator[list[tuple[Any, ...]]]:
    result = session.execute(statement.execution_options(yield_per=BATCH))
    for partition in result.partitions():
        yield [tuple(row) for row in partition]


def _customers(session: Session, where: sa.ColumnElement[bool] | None) -> Listing:
    owner = aliased(User)
    definitions = list(
        session.scalars(
            sa.select(CustomFieldDefinition)
            .where(CustomFieldDefinition.entity == FieldEntity.CUSTOMER)
            .order_by(CustomFieldDefinition.key)
        )
    )
    statement = (
        sa.select(
            Customer.id,
            Customer.external_ref,
            Customer.name,
            Customer.kind,
            Customer.email,
            Customer.phone,
            Company.name,
            Customer.country,
            Customer.language,
            Customer.timezone,
            owner.name,
            Customer.lifetime_value_cents,
            Customer.order_count,
            Customer.first_order_at,
            Customer.last_order_at,
            Customer.created_at,
        )
        .outerjoin(Company, Company.id == Customer.company_id)
        .outerjoin(owner, owner.id == Customer.owner_id)
        .order_by(Customer.id)
    )
    if where is not None:
        statement = statement.where(where)
    columns = [
        "external_ref", "name", "kind", "email", "phone", "company", "country", "language", "timezone",
        "owner", "tags", *(d.key for d in definitions), "lifetime_value", "order_count", "first_order_at",
        "last_order_at", "created_at", "id",
    ]  # fmt: skip

    def batches() -> Iterator[list[tuple[Any, ...]]]:
        for batch in _stream(session, statement):
            ids = [row[0] for row in batch]
            tags: dict[int, list[str]] = {}
            for customer_id, tag in session.execute(
                sa.select(CustomerTag.customer_id, CustomerTag.tag)
                .where(CustomerTag.customer_id.in_(ids))
                .order_by(CustomerTag.tag)
            ):
                tags.setdefault(customer_id, []).append(tag)
            custom: dict[tuple[int, int], Any] = {}
            if definitions:
                for value in session.scalars(sa.select(CustomFieldValue).where(CustomFieldValue.entity_id.in_(ids))):
                    custom[(value.entity_id, value.definition_id)] = value
            out = []
            for row in batch:
                (
                    cid,
                    ref,
                    name,
                    kind,
                    email,
                    phone,
                    company,
                    country,
                    language,
                    tz,
                    owner_name,
                    ltv,
                    n,
                    first,
                    last,
                    at,
                ) = row
                extra = [_custom(d, custom.get((cid, d.id))) for d in definitions]
                out.append(
                    (ref, name, kind.value, email, phone, company, country, language, tz, owner_name,
                     ",".join(tags.get(cid, [])), *extra, _money(ltv), n, first, last, at, cid)
                )  # fmt: skip
            yield out

    return Listing(columns, batches())


def _custom(definition: CustomFieldDefinition, value: CustomFieldValue | None) -> Any:
    return None if value is None else value.value_as(definition.type)


def _simple(
    columns: Sequence[str], statement: Any, convert: Callable[[tuple[Any, ...]], tuple[Any, ...]]
) -> Callable[[Session, sa.ColumnElement[bool] | None], Listing]:
    def listing(session: Session, where: sa.ColumnElement[bool] | None) -> Listing:
        chosen = statement if where is None else statement.where(where)
        return Listing(list(columns), ([convert(r) for r in b] for b in _stream(session, chosen)))

    return listing


_owner = aliased(User)
_deals = _simple(
    ["external_ref", "title", "customer", "customer_ref", "customer_email", "amount", "currency", "stage", "close",
     "probability", "owner", "created_at", "closed_at", "lost_reason", "id"],
    sa.select(
        Deal.external_ref, Deal.title, Customer.name, Customer.external_ref, Customer.email, Deal.amount_cents,
        Deal.currency, Deal.stage, Deal.expected_close_on, Deal.probability, _owner.name, Deal.created_at,
        Deal.closed_at, Deal.lost_reason, Deal.id,
    )
    .join(Customer, Customer.id == Deal.customer_id)
    .outerjoin(_owner, _owner.id == Deal.owner_id)
    .order_by(Deal.id),
    lambda r: (*r[:5], _money(r[5]), r[6], r[7].value, *r[8:]),
)  # fmt: skip

# One row per order line: the shape `chatcrm import orders` reads back (and a retail export has).
_orders = _simple(
    ["number", "ordered_at", "kind", "customer", "sku", "description", "quantity", "unit_price", "line_total",
     "currency", "country"],
    sa.select(
        Order.number, Order.ordered_at, Order.kind, Customer.external_ref, Product.sku, Product.name,
        OrderLine.quantity, OrderLine.unit_price_cents, OrderLine.line_total_cents, Order.currency, Order.country,
    )
    .join(OrderLine, OrderLine.order_id == Order.id)
    .join(Product, Product.id == OrderLine.product_id)
    .outerjoin(Customer, Customer.id == Order.customer_id)
    .order_by(Order.id, OrderLine.id),
    lambda r: (r[0], r[1], r[2].value, *r[3:7], _money(r[7]), _money(r[8]), r[9], r[10]),
)  # fmt: skip

_assignee = aliased(User)
_tickets = _simple(
    ["id", "subject", "status", "priority", "customer", "customer_ref", "assignee", "channel", "created_at",
     "first_responded_at", "resolved_at", "closed_at", "rating"],
    sa.select(
        Ticket.id, Ticket.subject, Ticket.status, Ticket.priority, Customer.name, Customer.external_ref,
        _assignee.name, Ticket.channel, Ticket.created_at, Ticket.first_responded_at, Ticket.resolved_at,
        Ticket.closed_at, Ticket.rating,
    )
    .join(Customer, Customer.id == Ticket.customer_id)
    .outerjoin(_assignee, _assignee.id == Ticket.assignee_id)
    .order_by(Ticket.id),
    lambda r: (r[0], r[1], r[2].value, r[3].value, *r[4:]),
)  # fmt: skip

_author = aliased(User)
_interactions = _simple(
    ["id", "occurred_at", "customer", "customer_ref", "kind", "direction", "channel", "user", "text", "ticket_id",
     "attachment", "attachment_name"],
    sa.select(
        Interaction.id, Interaction.occurred_at, Customer.name, Customer.external_ref, Interaction.kind,
        Interaction.direction, Interaction.channel, _author.name, Interaction.text, Interaction.ticket_id,
        Interaction.attachment_kind, Interaction.attachment_name,
    )
    .join(Customer, Customer.id == Interaction.customer_id)
    .outerjoin(_author, _author.id == Interaction.user_id)
    .order_by(Interaction.id),
    lambda r: (*r[:4], r[4].value, r[5].value, *r[6:]),
)  # fmt: skip

_AUDIT_COLUMNS = ["id", "at", "actor", "platform", "action", "entity_type", "entity_id", "before", "after"]


def _audit(session: Session, where: sa.ColumnElement[bool] | None) -> Listing:
    """The log with personal values decrypted, ``[erased]`` where the customer's key was destroyed."""
    from crm_core.customer_keys import reveal

    def rows() -> Iterator[list[tuple[Any, ...]]]:
        statement = sa.select(
            AuditEntry.id, AuditEntry.at, AuditEntry.actor_name, AuditEntry.platform, AuditEntry.action,
            AuditEntry.entity_type, AuditEntry.entity_id, AuditEntry.before, AuditEntry.after,
        ).order_by(AuditEntry.id)  # fmt: skip
        for batch in _stream(session, statement):
            yield [(*r[:7], reveal(session, r[7]), reveal(session, r[8])) for r in batch]

    return Listing(list(_AUDIT_COLUMNS), rows())


# kind -> (the listing, the column that ties a row to its customer, for --filter; None: not filterable)
LISTS: dict[str, tuple[Callable[[Session, sa.ColumnElement[bool] | None], Listing], Any]] = {
    "customers": (_customers, Customer.id),
    "deals": (_deals, Deal.customer_id),
    "orders": (_orders, Order.customer_id),
    "tickets": (_tickets, Ticket.customer_id),
    "interactions": (_interactions, Interaction.customer_id),
    "audit": (_audit, None),
}


def listing(session: Session, kind: str, customer_filter: str | None = None, user_id: int | None = None) -> Listing:
    """The rows of ``kind``, only those of customers matching the segment filter when one is given."""
    from crm_core.services import segments

    if kind not in LISTS:
        raise ExportFailed(_("cannot export '{kind}': choose one of {kinds}", kind=kind, kinds=", ".join(LISTS)))
    make, customer_column = LISTS[kind]
    where = None
    if customer_filter:
        if customer_column is None:
            raise ExportFailed(_("--filter selects customers; {kind} is not a list of customers' records", kind=kind))
        where = customer_column.in_(segments.customers_query(session, customer_filter, user_id))
    return make(session, where)
