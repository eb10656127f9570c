"""Money is shown in the currency it was stored in: a GBP import under a EUR company currency
shows £ on segments, cards and digests, and amounts of different currencies are listed side by
side ("€12.00 + £34.56"), never added up under one symbol."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from bot.settings import Settings
from crm_core.importing.retail_orders import import_retail_orders
from crm_core.models import Customer, DigestFrequency, Product, Role
from crm_core.money import format_totals
from crm_core.services import digests, orders
from crm_core.templating import render_message
from tests.shared_data import shared_file
from tests.support import TEST_SECRET_KEY


@pytest.fixture
def settings(database_url):
    return Settings(database_url=database_url, secret_key=TEST_SECRET_KEY, currency="EUR")


@pytest.fixture
def gbp_import(app):
    with app.uow() as uow:
        import_retail_orders(uow, shared_file("online_retail_sample.csv"), currency="GBP")
        # The biggest spender, by the stored (all-GBP) lifetime value.
        return uow.session.scalars(sa.select(Customer).order_by(Customer.lifetime_value_cents.desc())).first().id


def test_format_totals_keeps_currencies_apart():
    assert format_totals({"GBP": 120000, "EUR": 30000}) == "€300.00 + £1,200.00"
    assert format_totals({"GBP": 0, "USD": 150}) == "$1.50"
    assert format_totals({}, "GBP") == "£0.00"


def test_segment_and_card_show_pounds_under_a_euro_company_currency(app, chat, gbp_import):
    admin = chat.user("Ada", Role.ADMIN)
    with app.uow() as uow:
        ltv = uow.session.get(Customer, gbp_import).lifetime_value_cents
    chat.say(admin, "/segment new uk country=GB")
    shown = chat.say(admin, "/segment show uk").reply
    details = [item.detail for item in shown.sections[0].items]
    assert details and all(" · LTV £" in d for d in details) and not any("€" in d for d in details)
    card = chat.say(admin, f"/customer #{gbp_import}").reply
    assert {f.label: f.value for f in card.fields}["Lifetime value"] == f"£{ltv // 100:,}.{ltv % 100:02d}"

    # A later order in euros: the card lists both amounts instead of adding them under one symbol.
    with app.uow() as uow:
        product = Product(sku="EU1", name="Euro thing", price_cents=1200)
        uow.session.add(product)
        uow.session.flush()
        orders.create_order(uow, gbp_import, [orders.LineInput(product.id, 1)], currency="EUR")
    card = chat.say(admin, f"/customer #{gbp_import}").reply
    assert {f.label: f.value for f in card.fields}["Lifetime value"] == f"€12.00 + £{ltv // 100:,}.{ltv % 100:02d}"


def test_digest_of_a_gbp_day_shows_pounds(app, gbp_import):
    with app.uow() as uow:
        revenue = uow.session.scalar(sa.select(sa.func.sum(Customer.lifetime_value_cents)))
        anonymous = orders.lifetime_values(uow.session, [])  # nothing asked, nothing found
        digest = digests.build_digest(uow.session, DigestFrequency.DAILY, date(2010, 12, 2), "UTC", "EUR")
        text = render_message(uow.session, "digest", "console", "en", digests.digest_context(digest)).text
    assert anonymous == {}
    assert digest.current.revenue_cents == 0 and digest.current.revenue_other["GBP"] >= revenue
    orders_line = next(line for line in text.splitlines() if line.startswith("Orders:"))
    pounds = digest.current.revenue_other["GBP"]
    # The revenue is in pounds, as imported; the change says which currency it is about.
    assert f"revenue £{pounds // 100:,}.{pounds % 100:02d} (GBP new; before €0.00)" in orders_line
    assert digest.current.period.start == datetime(2010, 12, 1, tzinfo=UTC)
