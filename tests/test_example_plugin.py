"""The example plugin (examples/plugins/chatcrm-example), loaded as a plugin, serves /quote through the
real dispatcher on SQLite and PostgreSQL, priced from real orders, and refuses a viewer."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from bot.bootstrap import build_app
from bot.settings import Settings
from crm_core.models import Product, Role
from crm_core.services import customers, orders
from tests.support import TEST_SECRET_KEY, Chat

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plugins" / "chatcrm-example"


@pytest.fixture
def example_app(database_url, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    plugin = importlib.import_module("chatcrm_example")
    app = build_app(Settings(database_url=database_url, secret_key=TEST_SECRET_KEY), plugins=[plugin])
    yield app
    app.close()


def test_quote_from_the_example_plugin(example_app):
    chat = Chat(example_app)
    sales = chat.user("Sam Sales", Role.SALES)
    viewer = chat.user("Vic Viewer", Role.VIEWER)
    with example_app.uow() as uow:
        acme = customers.create_customer(uow, "Acme").id
        widget = Product(sku="WID-1", name="Widget", price_cents=1250)
        uow.session.add(widget)
        uow.session.flush()
        orders.create_order(uow, acme, [orders.LineInput(widget.id, 2, 1100)])

    quoted = chat.say(sales, "/quote Acme WID-1 3")
    refused = chat.say(viewer, "/quote Acme WID-1 3")

    assert "the customer's own last price" in quoted.text, quoted.text
    assert "€33.00" in quoted.text
    assert refused.reply.tone == "error"
    assert "Quote for" not in refused.text
    assert "/quote" in [f"/{c.name}" for c in example_app.router.visible_to("sales")]
    assert "/quote" not in [f"/{c.name}" for c in example_app.router.visible_to("viewer")]
