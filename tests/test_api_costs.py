"""What an API request costs, and that making it cheaper changed nothing a client sees, over real HTTP
on SQLite and PostgreSQL:

- the bulk order body is validated from its bytes (``bot.api.json_body``), yet bad bodies get the very
  422 answers FastAPI's own ``body: BulkIn`` parameter gives, in the same order against a 403, and the
  OpenAPI document declares the body as FastAPI does;
- a request is one transaction: the token is checked in the endpoint's unit of work (one commit, one
  connection), and a search renders its customers without a query per customer.

Shares ``tests.test_api``'s served app (one per module and database kind) and token helpers.
"""

from __future__ import annotations

import itertools
import json

import httpx
import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request

from benchmarks.bench_api import Counter
from bot.api import problems
from bot.api.orders import BulkIn
from bot.api.problems import Problem
from crm_core.models import Customer, CustomFieldDefinition, FieldEntity, FieldType, Product, Role
from crm_core.services import custom_fields, orders
from tests.fakes.servers import serve_asgi
from tests.test_api import api, is_problem  # noqa: F401 - the module's served app

_n = itertools.count(1)
GOOD_LINE = {"sku": "SKU-1", "quantity": 1}
BAD_BODIES: list[tuple[str, bytes, str | None]] = [
    ("not JSON", b'{"orders": [', "application/json"),
    ("not JSON either", b"orders=1", "application/json"),
    ("empty", b"", "application/json"),
    ("another content type", json.dumps({"orders": []}).encode(), "text/plain"),
    ("no content type", json.dumps({"orders": []}).encode(), None),
    ("a list", b"[]", "application/json"),
    ("no orders", b"{}", "application/json"),
    ("no order", json.dumps({"orders": []}).encode(), "application/json"),
    ("unknown field", json.dumps({"orders": [{"number": "A", "lines": [GOOD_LINE]}], "x": 1}).encode(), None),
    (
        "failing fields",
        json.dumps(
            {
                "orders": [
                    {"number": " A", "lines": [GOOD_LINE]},
                    {"number": "B", "ordered_at": "2025-01-01T10:00:00", "lines": [{"sku": "S", "quantity": "x"}]},
                    {"number": "C", "customer_id": 0, "kind": "gift", "lines": []},
                    {"number": "D", "lines": [{"sku": "S", "quantity": 1, "colour": "red"}], "currency": "EURO"},
                ]
            }
        ).encode(),
        "application/json",
    ),
]


def _reference_app() -> FastAPI:
    """FastAPI reading ``body: BulkIn`` itself, with the API's problem answers and a permission check
    after the body as the real endpoint has (403 for a request with the header ``x-forbidden``)."""
    reference = FastAPI()
    problems.install(reference)

    def forbidden(request: Request) -> None:
        if "x-forbidden" in request.headers:
            raise Problem(403, "this token may not do that (it needs orders:write)")

    @reference.post("/orders/bulk")
    def create_orders(body: BulkIn, _check: None = Depends(forbidden)) -> dict[str, int]:
        return {"orders": len(body.orders)}

    return reference


@pytest.fixture(scope="module")
def reference():
    with serve_asgi(_reference_app()) as base_url, httpx.Client(base_url=base_url) as client:
        yield client


def test_a_body_that_is_no_text_gets_fastapis_400_not_a_500(api, reference):
    """Bytes no JSON encoding can decode (found by the fuzz test: a 500 from a UnicodeDecodeError)."""
    body = b"\x91\xaf\xff{"
    ours = api.http.post(
        "/orders/bulk", content=body, headers={**api.token(Role.MANAGER), "Content-Type": "application/json"}
    )
    theirs = reference.post("/orders/bulk", content=body, headers={"Content-Type": "application/json"})
    assert ours.status_code == theirs.status_code == 400, ours.text
    is_problem(ours, 400)


@pytest.mark.parametrize(("case", "body", "content_type"), BAD_BODIES, ids=[case for case, _b, _t in BAD_BODIES])
def test_bad_bulk_bodies_get_the_answers_fastapi_gives(api, reference, case, body, content_type):
    headers = api.token(Role.MANAGER)
    if content_type is not None:
        headers["Content-Type"] = content_type
    ours = api.http.post("/orders/bulk", content=body, headers=headers)
    theirs = reference.post("/orders/bulk", content=body, headers={"Content-Type": content_type or ""})
    assert ours.status_code == theirs.status_code == 422, (case, ours.text)
    is_problem(ours, 422)
    assert ours.json() == theirs.json(), case
    # A token that may not write orders: a body that is not JSON is refused first, a failing field after.
    sales = api.token(Role.SALES)
    if content_type is not None:
        sales["Content-Type"] = content_type
    refused = api.http.post("/orders/bulk", content=body, headers=sales)
    expected = reference.post(
        "/orders/bulk", content=body, headers={"Content-Type": content_type or "", "x-forbidden": "1"}
    )
    assert refused.status_code == expected.status_code, case
    assert refused.json()["detail"] == expected.json()["detail"], case


def test_the_bulk_body_is_declared_as_fastapi_declares_it(api):
    document = httpx.get(f"{api.base_url}/api/v1/openapi.json").raise_for_status().json()
    reference = _reference_app().openapi()
    declared = document["paths"]["/orders/bulk"]["post"]["requestBody"]
    assert declared == reference["paths"]["/orders/bulk"]["post"]["requestBody"]
    for name in ("BulkIn", "OrderIn", "LineIn"):
        assert document["components"]["schemas"][name] == reference["components"]["schemas"][name], name


@pytest.fixture
def counter(api) -> Counter:
    """Counts the served app's statements, commits and pool checkouts (the API benchmark's counter)."""
    return Counter(api.app.engine)


def test_a_request_is_one_transaction_token_check_included(api, counter):
    headers = api.token(Role.SALES)
    customer_id = api.customer(f"Onetx {next(_n)}")
    api.http.get(f"/customers/{customer_id}", headers=headers).raise_for_status()  # warm: last use noted
    with counter.measuring(1) as cost:
        api.http.get(f"/customers/{customer_id}", headers=headers).raise_for_status()
    assert (cost.sql["commits"], cost.sql["checkouts"]) == (1, 1)
    # Refused requests too, their transaction ended before the answer: nothing is left open.
    with counter.measuring(3) as cost:
        is_problem(api.http.get("/customers", params={"limit": 0}, headers=headers), 422)
        is_problem(api.http.get("/customers", headers={"Authorization": "Bearer crm_nope"}), 401)
        is_problem(api.http.get("/audit", headers=headers), 403)
        assert api.app.engine.pool.checkedout() == 0
    assert cost.sql["checkouts"] == 3
    # A write is committed in that one transaction, and audited as the token's.
    with counter.measuring(1) as cost:
        created = api.http.post("/customers", json={"name": "Onetx new"}, headers=headers)
    assert created.status_code == 201 and (cost.sql["commits"], cost.sql["checkouts"]) == (1, 1)
    # With an Idempotency-Key the key is claimed in transactions of its own.
    retry = {**headers, "Idempotency-Key": f"k{next(_n)}"}
    first = api.http.post("/customers", json={"name": "Onetx keyed"}, headers=retry)
    again = api.http.post("/customers", json={"name": "Onetx keyed"}, headers=retry)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()


def test_a_search_renders_its_customers_without_a_query_each(api, counter):
    headers = api.token(Role.SALES)
    tag = next(_n)
    with api.app.uow() as uow:
        if uow.session.scalar(sa.select(CustomFieldDefinition.id).where(CustomFieldDefinition.key == "seats")) is None:
            custom_fields.define_field(uow, FieldEntity.CUSTOMER, "seats", FieldType.NUMBER)
    ids = [api.customer(f"Qwv{tag} Person{i}", tags="vip,lead", seats=str(10 + i)) for i in range(6)]
    api.customer(f"Zqj{tag} Person0", tags="x", seats="1")

    def statements(query: str) -> tuple[int, list[dict]]:
        with counter.measuring(1) as cost:
            found = api.http.get("/customers", params={"q": query}, headers=headers).raise_for_status().json()
        return cost.sql["statements"], found["items"]

    statements("warm")  # the token's first use is noted (one UPDATE more)
    many, items = statements(f"Qwv{tag}")
    one, [alone] = statements(f"Zqj{tag}")
    assert sorted(item["id"] for item in items) == ids
    assert {tuple(item["tags"]) for item in items} == {("lead", "vip")} and items[0]["custom_fields"]["seats"]
    assert alone["custom_fields"] == {"seats": 1} and alone["tags"] == ["x"]
    # The same search stages for both: the six cost no more statements than the one.
    assert many == one


def test_bulk_orders_add_to_the_customers_figures_as_a_recount_would(api):
    headers = api.token(Role.MANAGER)
    tag = next(_n)
    with api.app.uow() as uow:
        product = Product(sku=f"SKU-F{tag}", name="Figure", price_cents=250, currency="EUR", active=True)
        uow.session.add(product)
    earlier, fresh = api.customer(f"Figures {tag} a"), api.customer(f"Figures {tag} b")
    line = {"sku": f"SKU-F{tag}", "quantity": 2}

    def order(number: str, customer_id: int, at: str, kind: str = "purchase", quantity: int = 2) -> dict:
        return {
            "number": f"F{tag}-{number}",
            "customer_id": customer_id,
            "ordered_at": at,
            "kind": kind,
            "lines": [{**line, "quantity": quantity}],
        }

    first = {"orders": [order("1", earlier, "2025-05-01T10:00:00+02:00")]}
    assert api.http.post("/orders/bulk", json=first, headers=headers).status_code == 200
    later = [
        order("2", earlier, "2025-03-01T10:00:00+00:00"),  # before the first: a new first order
        order("3", earlier, "2025-06-01T10:00:00+00:00", "cancellation", -1),  # not a purchase
        order("4", fresh, "2025-04-01T10:00:00+00:00", "cancellation", -1),  # only a cancellation
        order("5", earlier, "2025-07-01T10:00:00+00:00"),  # a new last order
    ]
    assert api.http.post("/orders/bulk", json={"orders": later}, headers=headers).status_code == 200

    def figures() -> list[tuple]:
        with api.app.uow() as uow:
            found = uow.session.execute(
                sa.select(
                    Customer.lifetime_value_cents, Customer.order_count, Customer.first_order_at, Customer.last_order_at
                )
                .where(Customer.id.in_([earlier, fresh]))
                .order_by(Customer.id)
            ).all()
            return [tuple(row) for row in found]

    added = figures()
    with api.app.uow() as uow:
        orders.refresh_customer_stats(uow, [earlier, fresh])
    assert added == figures()
    assert added[0][:2] == (500 * 3 - 250, 3) and added[1][:2] == (-250, 0) and added[1][2] is None
