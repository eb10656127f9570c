"""GET /plugins/example/quote: the price as JSON, behind a bearer token."""

from __future__ import annotations

import chatcrm_example
import pytest
import shop
from starlette.applications import Starlette
from starlette.testclient import TestClient


@pytest.fixture
def chatcrm_env():
    return {"CHATCRM_EXAMPLE_TOKEN": "s3cret"}


@pytest.fixture
def client(chatcrm_app):
    return TestClient(Starlette(routes=chatcrm_example.register_routes(chatcrm_app)))


def test_quote_as_json(client, chatcrm_app):
    acme = shop.customer(chatcrm_app, "Acme")
    widget = shop.product(chatcrm_app, "WID-1", "Widget", 1250)
    shop.order(chatcrm_app, acme, widget, 1100)

    response = client.get(
        "/plugins/example/quote",
        params={"customer": "Acme", "product": "WID-1", "qty": "3"},
        headers={"Authorization": "Bearer s3cret"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["source"], body["unit_price_cents"], body["total_cents"], body["currency"]) == (
        "customer_last",
        1100,
        3300,
        "EUR",
    )


def test_the_route_wants_the_token(client):
    response = client.get("/plugins/example/quote", params={"customer": "Acme", "product": "WID-1", "qty": "3"})

    assert response.status_code == 401


@pytest.mark.parametrize("qty", ["²", "9" * 5000, "-1", "three"])
def test_a_quantity_that_is_no_plain_number_gets_400(client, qty):
    response = client.get(
        "/plugins/example/quote",
        params={"customer": "Acme", "product": "WID-1", "qty": qty},
        headers={"Authorization": "Bearer s3cret"},
    )

    assert response.status_code == 400
    assert response.json() == {"error": "qty must be a whole number"}
