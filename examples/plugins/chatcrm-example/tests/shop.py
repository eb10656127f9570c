"""Test data for the example plugin: customers, products and orders written through chatcrm's services."""

from __future__ import annotations

from datetime import timedelta

from crm_core import clock
from crm_core.models import Product
from crm_core.services import customers, orders


def customer(app, name: str) -> int:
    with app.uow() as uow:
        return customers.create_customer(uow, name).id


def product(app, sku: str, name: str, price_cents: int, currency: str = "EUR") -> int:
    with app.uow() as uow:
        item = Product(sku=sku, name=name, price_cents=price_cents, currency=currency)
        uow.session.add(item)
        uow.session.flush()
        return item.id


def order(app, customer_id: int, product_id: int, unit_cents: int, quantity: int = 1, days_ago: int = 1) -> None:
    with app.uow() as uow:
        orders.create_order(
            uow,
            customer_id,
            [orders.LineInput(product_id, quantity, unit_cents)],
            ordered_at=clock.utcnow() - timedelta(days=days_ago),
        )
