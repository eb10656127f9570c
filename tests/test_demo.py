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


@time_machine.travel(datetime(2026, 11, 24, 9, 0, tzinfo=UTC), tick=False)
def test_the_chinese_demo_is_a_chinese_company(app):
    from crm_core import text
    from crm_core.models import Interaction

    with app.uow(demo.DEMO_ACTOR) as uow:
        summary = demo.seed(uow, customers=120, language="zh")
    assert summary.created and summary.customers == 120
    with app.uow() as uow:
        s = uow.session
        people = s.scalars(sa.select(Customer).order_by(Customer.id)).all()
        assert people[0].name == "阿克米科技有限公司" and people[0].company.name == "阿克米科技有限公司"
        assert all(text.has_cjk(c.name) for c in people)
        assert {(c.country, c.language, c.timezone) for c in people} == {("CN", "zh", "Asia/Shanghai")}
        assert all(c.phone.startswith("+86 ") for c in people)
        # People and companies: staff of 阿克米 among them, so its card and /customer 阿克米 list people.
        assert {c.kind.value for c in people} == {"person", "account"}
        assert (
            s.scalar(
                sa.select(sa.func.count()).select_from(Customer).where(Customer.company_id == people[0].company_id)
            )
            > 1
        )
        assert {o.currency for o in s.scalars(sa.select(Order))} == {"CNY"}
        assert {d.currency for d in s.scalars(sa.select(Deal))} == {"CNY"}
        assert {d.stage for d in s.scalars(sa.select(Deal))} == set(DealStage)
        assert all(text.has_cjk(d.title) for d in s.scalars(sa.select(Deal)))
        assert all(text.has_cjk(t.subject) for t in s.scalars(sa.select(Ticket)))
        assert all(text.has_cjk(i.text) for i in s.scalars(sa.select(Interaction)))
        assert all(text.has_cjk(p.name) and p.currency == "CNY" for p in s.scalars(sa.select(Product)))
        staff = s.scalars(sa.select(User)).all()
        assert {u.role for u in staff} == set(STAFF_ROLES)
        assert all(u.language == "zh" and text.has_cjk(u.name) for u in staff)
    with app.uow(demo.DEMO_ACTOR) as uow:
        assert demo.is_seeded(uow, "zh") and not demo.is_seeded(uow, "en")
        assert not demo.seed(uow, customers=120, language="zh").created


def test_the_chinese_demo_is_found_by_chinese_search(app):
    from crm_core import search

    with app.uow(demo.DEMO_ACTOR) as uow:
        demo.seed(uow, customers=60, language="zh-CN")
    with app.uow() as uow:
        hits = search.search_customers(uow.session, "阿克米")
    assert hits[0].name == "阿克米科技有限公司"
