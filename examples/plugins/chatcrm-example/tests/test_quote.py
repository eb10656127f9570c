"""/quote through the real dispatcher: who may ask, where the price comes from, and the card section."""

from __future__ import annotations

import shop


def test_quote_without_history_uses_the_list_price(fake_chat, chatcrm_app):
    sales = fake_chat.user("Sam Sales", "sales")
    shop.customer(chatcrm_app, "Acme")
    shop.product(chatcrm_app, "WID-1", "Widget", 1250)

    answer = fake_chat.say(sales, "/quote Acme WID-1 4")

    assert answer.tone == "success", answer.text
    assert "Quote for Acme" in answer.text
    assert "the list price" in answer.text
    assert "€12.50" in answer.text
    assert "€50.00" in answer.text


def test_a_viewer_may_not_quote(fake_chat, chatcrm_app):
    viewer = fake_chat.user("Vic Viewer", "viewer")
    shop.customer(chatcrm_app, "Acme")
    shop.product(chatcrm_app, "WID-1", "Widget", 1250)

    answer = fake_chat.say(viewer, "/quote Acme WID-1 4")

    assert answer.tone == "error", answer.text
    assert "Quote for" not in answer.text


def test_the_customers_own_last_price_wins(fake_chat, chatcrm_app):
    sales = fake_chat.user("Sam Sales", "sales")
    acme = shop.customer(chatcrm_app, "Acme")
    other = shop.customer(chatcrm_app, "Globex")
    widget = shop.product(chatcrm_app, "WID-1", "Widget", 1250)
    shop.order(chatcrm_app, acme, widget, 900, days_ago=30)
    shop.order(chatcrm_app, acme, widget, 1000, days_ago=2)
    shop.order(chatcrm_app, other, widget, 700, days_ago=1)

    answer = fake_chat.say(sales, "/quote Acme WID-1 3")

    assert "the customer's own last price" in answer.text, answer.text
    assert "€10.00" in answer.text
    assert "€30.00" in answer.text


def test_without_own_orders_the_median_of_recent_orders_is_used(fake_chat, chatcrm_app):
    sales = fake_chat.user("Sam Sales", "sales")
    shop.customer(chatcrm_app, "Acme")
    widget = shop.product(chatcrm_app, "WID-1", "Widget", 1250)
    for name, unit in [("Globex", 800), ("Initech", 1100), ("Umbrella", 900)]:
        shop.order(chatcrm_app, shop.customer(chatcrm_app, name), widget, unit)
    # Too old to count: the median would be 900 -> 1000 with it.
    shop.order(chatcrm_app, shop.customer(chatcrm_app, "Hooli"), widget, 5000, days_ago=800)

    answer = fake_chat.say(sales, "/quote Acme WID-1 2")

    assert "the median price of this product in recent orders (3 order lines)" in answer.text, answer.text
    assert "€9.00" in answer.text
    assert "€18.00" in answer.text


def test_unknown_product_is_a_clear_message(fake_chat, chatcrm_app):
    sales = fake_chat.user("Sam Sales", "sales")
    shop.customer(chatcrm_app, "Acme")

    answer = fake_chat.say(sales, "/quote Acme NOPE 2")

    assert answer.tone == "error"
    assert "No product matches 'NOPE'" in answer.text


def test_the_card_shows_the_last_quotes(fake_chat, chatcrm_app):
    sales = fake_chat.user("Sam Sales", "sales")
    acme = shop.customer(chatcrm_app, "Acme")
    shop.product(chatcrm_app, "WID-1", "Widget", 1250)

    before = fake_chat.say(sales, f"/customer #{acme}")
    fake_chat.say(sales, "/quote Acme WID-1 4")
    after = fake_chat.say(sales, f"/customer #{acme}")

    assert "Quotes" not in before.text
    assert "Quotes" in after.text
    assert "4 × Widget (WID-1) at €12.50 = €50.00" in after.text
