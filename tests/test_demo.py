"""The demo data set: realistic spread, a pattern for mining to find, deterministic and idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
import time_machine

from crm_core import demo
from crm_core.models import STAFF_ROLES, Customer, Deal, DealStage, Order, OrderLine, Product, Ticket, User


def _seed(app, customers=150):
    with app.uow(demo.DEMO_ACTOR) as uow:
        return demo.seed(uow, customers=customers)


@time_machine.travel(datetime(2026, 11, 24, 9, 0, tzinfo=UTC), tick=False)
def test_demo_has_every_role_stage_and_acme_first(app):
    summary = _seed(app)
    assert summary.created and summary.customers == 150
    with app.uow() as uow:
        s = uow.session
        assert {u.role for u in s.scalars(sa.select(User))} == set(STAFF_ROLES)  # customers are not CRM users
        assert {d.stage for d in s.scalars(sa.select(Deal))} == set(DealStage)
        assert s.get(Customer, 1).name == "Acme Corp"
        assert len({c.country for c in s.scalars(sa.select(Customer))}) >= 10
        assert s.scalar(sa.select(sa.func.count()).select_from(Ticket)) > 20
        first, last = s.execute(sa.select(sa.func.min(Order.ordered_at), sa.func.max(Order.ordered_at))).one()
        assert (last - first).days > 600
        # The stored lifetime value equals the sum of the customer's orders.
        acme = s.get(Customer, 1)
        total = s.scalar(sa.select(sa.func.sum(Order.total_cents)).where(Order.customer_id == 1))
        assert acme.lifetime_value_cents == total and acme.order_count == 18


def test_printer_buyers_also_buy_toner(app):
    _seed(app)
    with app.uow() as uow:
        s = uow.session
        lines = s.execute(sa.select(OrderLine.order_id, Product.sku).join(Product)).all()
    baskets: dict[int, set[str]] = {}
    for order_id, sku in lines:
        baskets.setdefault(order_id, set()).add(sku)
    printers = [b for b in baskets.values() if "PRN-100" in b]
    assert len(printers) > 50
    assert sum("TON-BK" in b for b in printers) / len(printers) > 0.6


def test_seeding_twice_adds_nothing(app):
    assert _seed(app, 40).created
    with app.uow() as uow:
        before = uow.session.scalar(sa.select(sa.func.count()).select_from(Order))
    again = _seed(app, 40)
    assert not again.created
    assert again.describe() == "The demo data is already there; nothing added."
    with app.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(Order)) == before
