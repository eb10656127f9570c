"""Pricing a quote from the order history: the customer's last price, the market's median, or the list price."""

from __future__ import annotations

import enum
import statistics
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from crm_core import clock
from crm_core.errors import ValidationError
from crm_core.models import Customer, Order, OrderKind, OrderLine, Product
from crm_core.money import format_money
from crm_core.uow import UnitOfWork

# "Recent orders" for the median: this far back, and at most this many order lines.
RECENT = timedelta(days=365)
RECENT_LINES = 200
MAX_QUANTITY = 1_000_000


class PriceSource(enum.StrEnum):
    CUSTOMER_LAST = "customer_last"
    RECENT_MEDIAN = "recent_median"
    LIST = "list"

    @property
    def explanation(self) -> str:
        return {
            PriceSource.CUSTOMER_LAST: "the customer's own last price for this product",
            PriceSource.RECENT_MEDIAN: "the median price of this product in recent orders",
            PriceSource.LIST: "the list price (no orders of this product yet)",
        }[self]


@dataclass(frozen=True)
class Quote:
    customer_id: int
    customer_name: str
    product_id: int
    product_name: str
    sku: str
    quantity: int
    unit_cents: int
    currency: str
    source: PriceSource
    # How many order lines the price comes from (1 for the customer's last price, 0 for the list price).
    based_on: int

    @property
    def total_cents(self) -> int:
        return self.unit_cents * self.quantity

    @property
    def unit(self) -> str:
        return format_money(self.unit_cents, self.currency)

    @property
    def total(self) -> str:
        return format_money(self.total_cents, self.currency)

    def summary(self) -> str:
        return f"{self.quantity} × {self.product_name} ({self.sku}) at {self.unit} = {self.total}"

    def as_json(self) -> dict[str, object]:
        return {
            "customer": {"id": self.customer_id, "name": self.customer_name},
            "product": {"id": self.product_id, "sku": self.sku, "name": self.product_name},
            "quantity": self.quantity,
            "unit_price_cents": self.unit_cents,
            "total_cents": self.total_cents,
            "currency": self.currency,
            "source": str(self.source),
            "based_on_lines": self.based_on,
        }


def _purchase_lines(product: Product) -> sa.Select:
    return (
        sa.select(OrderLine.unit_price_cents, Order.currency)
        .join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.product_id == product.id, Order.kind == OrderKind.PURCHASE, OrderLine.quantity > 0)
    )


def price(uow: UnitOfWork, customer: Customer, product: Product, quantity: int) -> Quote:
    """The quote for ``quantity`` of ``product`` to ``customer`` (two small indexed queries at most)."""
    if quantity <= 0 or quantity > MAX_QUANTITY:
        raise ValidationError(f"the quantity must be between 1 and {MAX_QUANTITY:,}", field="qty")
    session = uow.session
    last = session.execute(
        _purchase_lines(product)
        .where(Order.customer_id == customer.id)
        .order_by(Order.ordered_at.desc(), OrderLine.id.desc())
        .limit(1)
    ).first()
    if last is not None:
        unit, currency, source, based_on = last.unit_price_cents, last.currency, PriceSource.CUSTOMER_LAST, 1
    else:
        # Only prices in the product's currency are comparable; other currencies are left out.
        recent = session.execute(
            _purchase_lines(product)
            .where(Order.ordered_at >= clock.utcnow() - RECENT, Order.currency == product.currency)
            .order_by(Order.ordered_at.desc(), OrderLine.id.desc())
            .limit(RECENT_LINES)
        ).all()
        if recent:
            unit = round(statistics.median(row.unit_price_cents for row in recent))
            currency, source, based_on = product.currency, PriceSource.RECENT_MEDIAN, len(recent)
        else:
            unit, currency, source, based_on = product.price_cents, product.currency, PriceSource.LIST, 0
    return Quote(
        customer_id=customer.id,
        customer_name=customer.name,
        product_id=product.id,
        product_name=product.name,
        sku=product.sku,
        quantity=quantity,
        unit_cents=unit,
        currency=currency,
        source=source,
        based_on=based_on,
    )
