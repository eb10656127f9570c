"""Orders and the customer figures derived from them (lifetime value, order count, first/last order).

Every order write goes through here so the derived figures on ``customers`` change in the same
transaction; ``refresh_customer_stats`` recomputes them from the orders for bulk writers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.errors import Conflict, NotFound, ValidationError
from crm_core.models import Customer, Order, OrderKind, OrderLine, Product
from crm_core.uow import UnitOfWork


@dataclass(frozen=True)
class LineInput:
    product_id: int
    quantity: int
    unit_price_cents: int | None = None


def create_order(
    uow: UnitOfWork,
    customer_id: int | None,
    lines: Sequence[LineInput],
    *,
    number: str | None = None,
    ordered_at: datetime | None = None,
    kind: OrderKind = OrderKind.PURCHASE,
    currency: str = "EUR",
    source: str = "crm",
) -> Order:
    if not lines:
        raise ValidationError("an order needs at least one line")
    if number and uow.session.scalars(sa.select(Order.id).where(Order.number == number)).first():
        raise Conflict(f"order {number} already exists")
    order = Order(
        number=number or "",
        customer_id=customer_id,
        kind=kind,
        ordered_at=ordered_at or clock.utcnow(),
        currency=currency,
        source=source,
    )
    total = 0
    for line in lines:
        product = uow.session.get(Product, line.product_id)
        if product is None:
            raise NotFound(f"there is no product #{line.product_id}")
        if line.quantity == 0 or (kind is OrderKind.PURCHASE and line.quantity < 0):
            raise ValidationError(f"quantity {line.quantity} is not valid for a {kind}")
        unit = product.price_cents if line.unit_price_cents is None else line.unit_price_cents
        line_total = unit * line.quantity
        total += line_total
        order.lines.append(
            OrderLine(product_id=product.id, quantity=line.quantity, unit_price_cents=unit, line_total_cents=line_total)
        )
    order.total_cents = total
    uow.session.add(order)
    uow.session.flush()
    if not number:
        order.number = f"SO-{order.id:06d}"
    if customer_id is not None:
        refresh_customer_stats(uow, [customer_id])
    return order


def refresh_customer_stats(uow: UnitOfWork, customer_ids: Iterable[int] | None = None) -> None:
    """Recompute lifetime value (purchases minus cancellations), order count and first/last order.

    ``None`` recomputes every customer, in one statement per figure set.
    """
    ids = None if customer_ids is None else sorted(set(customer_ids))
    if ids is not None and not ids:
        return
    purchases = sa.and_(Order.customer_id == Customer.id, Order.kind == OrderKind.PURCHASE)
    values = {
        "lifetime_value_cents": sa.select(sa.func.coalesce(sa.func.sum(Order.total_cents), 0))
        .where(Order.customer_id == Customer.id)
        .scalar_subquery(),
        "order_count": sa.select(sa.func.count(Order.id)).where(purchases).scalar_subquery(),
        "first_order_at": sa.select(sa.func.min(Order.ordered_at)).where(purchases).scalar_subquery(),
        "last_order_at": sa.select(sa.func.max(Order.ordered_at)).where(purchases).scalar_subquery(),
    }
    # Chunked so the IN list stays within every database's parameter limit.
    chunks = [None] if ids is None else [ids[i : i + 500] for i in range(0, len(ids), 500)]
    for chunk in chunks:
        statement = sa.update(Customer).values(**values)
        if chunk is not None:
            statement = statement.where(Customer.id.in_(chunk))
        uow.session.execute(statement.execution_options(synchronize_session=False))
    # Objects already loaded in this session must not keep stale figures.
    for obj in uow.session.identity_map.values():
        if isinstance(obj, Customer) and (ids is None or obj.id in ids):
            uow.session.expire(obj, ["lifetime_value_cents", "order_count", "first_order_at", "last_order_at"])


def lifetime_values(session: Session, customer_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Customer id -> lifetime value (purchases minus cancellations) per currency, as the orders hold it.

    ``Customer.lifetime_value_cents`` adds every order whatever its currency (the segment filter's
    ``ltv>=`` compares against it); what people read comes from here, one amount per currency."""
    ids = sorted(set(customer_ids))
    found: dict[int, dict[str, int]] = {}
    for start in range(0, len(ids), 500):
        for customer_id, currency, cents in session.execute(
            sa.select(Order.customer_id, Order.currency, sa.func.sum(Order.total_cents))
            .where(Order.customer_id.in_(ids[start : start + 500]))
            .group_by(Order.customer_id, Order.currency)
        ):
            assert customer_id is not None, "matched by customer_id IN (...)"
            found.setdefault(customer_id, {})[currency] = int(cents or 0)
    return found
