"""The REST API's remaining resources over real HTTP on SQLite and PostgreSQL: companies, products,
orders (single and bulk, idempotent by number), follow-ups, segments, campaigns, rules and
recommendations, scores, the audit log, users and roles, and deleting a customer.

Shares ``tests.test_api``'s served app (one per module and database kind) and token helpers.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from crm_core import clock, events
from crm_core.campaigns import service as campaign_service
from crm_core.models import (
    ApiToken,
    AuditEntry,
    Customer,
    CustomerScore,
    FollowUp,
    MinedRule,
    MiningRun,
    Order,
    OrderKind,
    OrderLine,
    Product,
    Role,
    User,
)
from crm_core.services import customers, orders, segments
from tests.support import count, rows
from tests.test_api import api, is_problem  # noqa: F401 - the module's served app

_n = itertools.count(1)


def _user_of_last_token(app) -> int:
    return max(rows(app, ApiToken), key=lambda t: t.id).user_id


def _product(app, sku: str, price_cents: int = 1000) -> int:
    with app.uow() as uow:
        product = Product(sku=sku, name=f"Product {sku}", price_cents=price_cents, currency="EUR", active=True)
        uow.session.add(product)
        uow.session.flush()
        return product.id


# ---- companies and products ----------------------------------------------------------------------


def test_companies_round_trip_and_are_the_customers_companies(api):
    headers = api.token(Role.SALES)
    tag = next(_n)
    created = api.http.post(
        "/companies", json={"name": f"Globex {tag}", "domain": "WWW.Globex.example", "country": "de"}, headers=headers
    )
    assert created.status_code == 201, created.text
    company = created.json()
    assert (company["domain"], company["country"]) == ("globex.example", "DE")
    assert created.headers["location"].endswith(f"/companies/{company['id']}")
    # The same name in another case is the same company: 409, and a customer naming it joins it.
    is_problem(api.http.post("/companies", json={"name": f"GLOBEX {tag}"}, headers=headers), 409)
    api.customer(f"Hank {tag}", company=f"globex {tag}")
    found = api.http.get("/companies", params={"q": f"globex {tag}", "count": "true"}, headers=headers).json()
    assert found["total"] == 1 and found["items"][0]["id"] == company["id"]
    etag = created.headers["etag"]
    patched = api.http.patch(
        f"/companies/{company['id']}", json={"domain": None}, headers={**headers, "If-Match": etag}
    )
    assert patched.status_code == 200 and patched.json()["domain"] is None
    is_problem(
        api.http.patch(f"/companies/{company['id']}", json={"country": "FR"}, headers={**headers, "If-Match": etag}),
        412,
    )
    body = is_problem(api.http.patch(f"/companies/{company['id']}", json={"country": "XX"}, headers=headers), 422)
    assert body["errors"][0]["field"] == "country"
    is_problem(api.http.patch(f"/companies/{company['id']}", json={"name": None}, headers=headers), 422)
    # Viewers read, but do not write.
    viewer = api.token(Role.VIEWER)
    assert api.http.get(f"/companies/{company['id']}", headers=viewer).status_code == 200
    is_problem(api.http.post("/companies", json={"name": "Nope"}, headers=viewer), 403)


def test_products_need_orders_write_to_change(api):
    manager = api.token(Role.MANAGER)
    sku = f"SKU-P{next(_n)}"
    created = api.http.post("/products", json={"sku": sku, "name": "Lamp", "price_cents": 2599}, headers=manager)
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["currency"] == api.app.settings.currency and product["active"] is True
    is_problem(api.http.post("/products", json={"sku": sku, "name": "Again"}, headers=manager), 409)
    patched = api.http.patch(
        f"/products/{product['id']}", json={"active": False, "category": "lights"}, headers=manager
    )
    assert patched.json()["active"] is False and patched.json()["category"] == "lights"
    listed = api.http.get("/products", params={"sku": sku}, headers=manager).json()["items"]
    assert [p["id"] for p in listed] == [product["id"]]
    sales = api.token(Role.SALES)
    assert api.http.get(f"/products/{product['id']}", headers=sales).status_code == 200
    body = is_problem(api.http.patch(f"/products/{product['id']}", json={"name": "x"}, headers=sales), 403)
    assert "orders:write" in body["detail"]
    is_problem(api.http.patch(f"/products/{product['id']}", json={"price_cents": -1}, headers=manager), 422)


# ---- orders ----------------------------------------------------------------------------------------


def test_an_order_is_recorded_once_by_its_number(api):
    headers = api.token(Role.MANAGER)
    tag = next(_n)
    customer_id = api.customer(f"Buyer {tag}")
    product_id = _product(api.app, f"SKU-O{tag}", 1250)
    order = {"number": f"ERP-{tag}", "customer_id": customer_id, "lines": [{"product_id": product_id, "quantity": 2}]}
    first = api.http.post("/orders", json=order, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["total_cents"] == 2500 and first.json()["lines"][0]["sku"] == f"SKU-O{tag}"
    again = api.http.post(
        "/orders", json={**order, "lines": [{"product_id": product_id, "quantity": 9}]}, headers=headers
    )
    assert again.status_code == 200 and again.json() == first.json()
    assert count(api.app, Order, Order.number == f"ERP-{tag}") == 1
    got = api.http.get(f"/customers/{customer_id}", headers=headers).json()
    assert got["lifetime_value_cents"] == 2500 and got["order_count"] == 1
    body = is_problem(
        api.http.post(
            "/orders", json={"number": f"ERP-{tag}b", "lines": [{"sku": "NOPE", "quantity": 1}]}, headers=headers
        ),
        422,
    )
    assert body["errors"] == [{"field": "lines[0].sku", "detail": "there is no product with the SKU NOPE"}]
    body = is_problem(
        api.http.post(
            "/orders", json={"number": "X", "ordered_at": "2024-01-01T00:00:00", "lines": []}, headers=headers
        ),
        422,
    )
    assert {e["field"] for e in body["errors"]} == {"ordered_at", "lines"}
    is_problem(api.http.post("/orders", json=order, headers=api.token(Role.SALES)), 403)


def test_bulk_orders_are_checked_whole_written_in_one_go_and_idempotent(api):
    headers = api.token(Role.MANAGER)
    tag = next(_n)
    buyers = [api.customer(f"Bulk {tag} {i}") for i in range(3)]
    skus = [f"SKU-B{tag}-{i}" for i in range(4)]
    for i, sku in enumerate(skus):
        _product(api.app, sku, 100 * (i + 1))
    with api.app.uow() as uow:
        before = uow.session.scalar(sa.select(sa.func.max(AuditEntry.id))) or 0
    bulk = {
        "orders": [
            {
                "number": f"B{tag}-{n}",
                "customer_id": buyers[n % 3],
                "ordered_at": "2025-03-01T10:00:00+01:00",
                "lines": [{"sku": sku, "quantity": 1 + n} for sku in skus],
            }
            for n in range(30)
        ]
    }
    # One line names a product that does not exist: nothing of the request is written.
    broken = json.loads(json.dumps(bulk))
    broken["orders"][7]["lines"][2]["sku"] = "MISSING"
    body = is_problem(api.http.post("/orders/bulk", json=broken, headers=headers), 422)
    assert body["errors"][0]["field"] == "orders[7].lines[2].sku" and "nothing was recorded" in body["detail"]
    assert count(api.app, Order, Order.number.like(f"B{tag}-%")) == 0
    done = api.http.post("/orders/bulk", json=bulk, headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["created"] == 30 and done.json()["lines_created"] == 120 and done.json()["unchanged"] == 0
    # Sent again with two more orders: only those are new.
    bulk["orders"] += [{"number": f"B{tag}-new{i}", "lines": [{"sku": skus[0], "quantity": 1}]} for i in range(2)]
    again = api.http.post("/orders/bulk", json=bulk, headers=headers).json()
    assert (again["created"], again["unchanged"], again["lines_created"]) == (2, 30, 2)
    assert [o["number"] for o in again["orders"]][:2] == [f"B{tag}-0", f"B{tag}-1"]
    assert again["orders"][0]["id"] == done.json()["orders"][0]["id"] and not again["orders"][0]["created"]
    first = api.http.get(f"/customers/{buyers[0]}", headers=headers).json()
    with api.app.uow() as uow:
        expected = uow.session.scalar(
            sa.select(sa.func.sum(OrderLine.line_total_cents))
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.customer_id == buyers[0])
        )
        audit = uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.id > before)).all()
        stored = uow.session.execute(
            sa.select(Order.ordered_at, Order.kind, Order.currency, Order.source, Order.customer_id).where(
                Order.number.in_([f"B{tag}-0", f"B{tag}-new0"])
            )
        ).all()
    # Written as sent (PostgreSQL writes them from arrays): the time in UTC, no customer where none was given.
    given, anonymous = sorted(stored, key=lambda row: row.customer_id is None)
    assert tuple(given) == (datetime(2025, 3, 1, 9, 0, tzinfo=UTC), OrderKind.PURCHASE, "EUR", "api", buyers[0])
    assert anonymous.customer_id is None and anonymous.source == "api"
    assert first["lifetime_value_cents"] == expected and first["order_count"] == 10
    assert [(e.action, e.entity_type) for e in audit] == [("import", "orders"), ("import", "orders")]
    assert audit[0].platform.startswith("api:")
    # Over 10,000 lines: refused; a body over 1 MB passes the gate on this path (its limit is 10 MB).
    many = {"orders": [{"number": f"M{tag}", "lines": [{"sku": skus[0], "quantity": 1}] * 10_001}]}
    is_problem(api.http.post("/orders/bulk", json=many, headers=headers), 422)
    padded = json.dumps(bulk) + " " * (1024 * 1024)
    response = api.http.post("/orders/bulk", content=padded, headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["created"] == 0
    is_problem(api.http.post("/orders", content=padded, headers={**headers, "Content-Type": "application/json"}), 413)
    listed = api.http.get("/orders", params={"customer_id": buyers[1], "count": "true"}, headers=headers).json()
    assert listed["total"] == 10 and len(listed["items"][0]["lines"]) == 4


# ---- follow-ups --------------------------------------------------------------------------------------


def test_followups_are_set_listed_and_closed_as_in_chat(api):
    rep = api.token(Role.SALES)
    other = api.token(Role.SALES)
    customer_id = api.customer(f"Follow {next(_n)}")
    due = (clock.utcnow() + timedelta(days=2)).isoformat()
    created = api.http.post(
        "/followups", json={"customer_id": customer_id, "due_at": due, "text": "Call back"}, headers=rep
    )
    assert created.status_code == 201, created.text
    followup = created.json()
    assert followup["status"] == "pending"
    mine = api.http.get("/followups", headers=rep).json()["items"]
    assert [f["id"] for f in mine] == [followup["id"]]
    assert api.http.get("/followups", headers=other).json()["items"] == []
    is_problem(api.http.get("/followups", params={"scope": "all"}, headers=rep), 403)
    everyone = api.http.get(
        "/followups", params={"scope": "all", "customer_id": customer_id}, headers=api.token(Role.MANAGER)
    )
    assert [f["id"] for f in everyone.json()["items"]] == [followup["id"]]
    # Someone else's follow-up: 403 from the service, as in chat.
    is_problem(api.http.patch(f"/followups/{followup['id']}", json={"status": "done"}, headers=other), 403)
    snoozed = api.http.patch(f"/followups/{followup['id']}", json={"snooze_days": 2}, headers=rep).json()
    assert snoozed["snooze_count"] == 1 and snoozed["due_at"] > followup["due_at"]
    done = api.http.patch(f"/followups/{followup['id']}", json={"status": "done"}, headers=rep).json()
    assert done["status"] == "done"
    again = is_problem(api.http.patch(f"/followups/{followup['id']}", json={"status": "cancelled"}, headers=rep), 409)
    assert again["detail"] == f"follow-up #{followup['id']} is already done"
    is_problem(
        api.http.patch(f"/followups/{followup['id']}", json={"status": "done", "snooze_days": 1}, headers=rep), 422
    )
    past = (clock.utcnow() - timedelta(hours=1)).isoformat()
    body = is_problem(
        api.http.post("/followups", json={"customer_id": customer_id, "due_at": past, "text": "x"}, headers=rep), 422
    )
    assert "already passed" in body["detail"]
    assert count(api.app, FollowUp, FollowUp.customer_id == customer_id) == 1


# ---- segments and campaigns -----------------------------------------------------------------------------


def test_segments_with_count_and_members_and_campaign_status(api):
    tag = next(_n)
    ids = [api.customer(f"Seg {tag} {i}", tags=f"seg{tag}") for i in range(5)]
    manager = api.token(Role.MANAGER)
    with api.app.uow() as uow:
        segments.create(uow, f"seg-{tag}", f"tag=seg{tag}", None)
        campaign_service.create(
            uow, f"camp-{tag}", f"segment=seg-{tag} template=campaign_announcement at=now", None, "UTC"
        )
    got = api.http.get(f"/segments/seg-{tag}", headers=manager)
    assert got.status_code == 200 and got.json()["count"] == 5 and got.json()["filter"] == f"tag=seg{tag}"
    seen, url, params = [], f"/segments/seg-{tag}/customers", {"limit": 2}
    while True:
        page = api.http.get(url, params=params, headers=manager).json()
        seen += [c["id"] for c in page["items"]]
        if page["next"] is None:
            break
        params = {"limit": 2, "cursor": page["next"]}
    assert seen == ids
    assert f"seg-{tag}" in [
        s["name"] for s in api.http.get("/segments", params={"limit": 500}, headers=manager).json()["items"]
    ]
    is_problem(api.http.get("/segments/no-such", headers=manager), 404)
    status = api.http.get(f"/campaigns/camp-{tag}", headers=manager).json()
    assert status["status"] == "draft" and status["segment"] == f"seg-{tag}" and status["total"]["recipients"] == 0
    report = api.http.get(f"/campaigns/camp-{tag}/report", headers=manager).json()
    assert report["runs"] == [] and report["total"]["revenue"] == {}
    # Support staff do not build segments in chat, so not here either.
    is_problem(api.http.get(f"/segments/seg-{tag}", headers=api.token(Role.SUPPORT)), 403)


# ---- rules, recommendations, scores ------------------------------------------------------------------------


def test_rules_recommendations_and_scores(api):
    tag = next(_n)
    bread, butter = _product(api.app, f"BREAD{tag}"), _product(api.app, f"BUTTER{tag}")
    customer_id = api.customer(f"Basket {tag}")
    with api.app.uow() as uow:
        orders.create_order(uow, customer_id, [orders.LineInput(bread, 1)], number=f"BASKET-{tag}")
        run = MiningRun(window_days=365, min_support=0.01, min_confidence=0.1, min_lift=None, max_len=None, n_rules=1)
        uow.session.add(run)
        uow.session.flush()
        uow.session.add(
            MinedRule(
                run_id=run.id, antecedent=[bread], consequent_id=butter, support=0.2, confidence=0.6, lift=3.0, count=40
            )
        )
        uow.session.add(
            CustomerScore(
                customer_id=customer_id,
                churn_risk=0.8,
                recency_score=1,
                frequency_score=2,
                monetary_score=3,
                rfm_segment="at_risk",
            )
        )
    sales = api.token(Role.SALES)
    rules = api.http.get("/rules", params={"consequent_id": butter}, headers=sales).json()["items"]
    assert [(r["antecedent"], r["consequent_id"], r["consequent"]) for r in rules] == [
        ([bread], butter, f"Product BUTTER{tag}")
    ]
    suggested = api.http.get(f"/customers/{customer_id}/recommendations", headers=sales).json()
    assert suggested["run_id"] == run.id
    assert [(s["product_id"], s["because"]) for s in suggested["items"]] == [(butter, [bread])]
    # Scores are for managers (models:read), as /model is.
    is_problem(api.http.get("/scores", headers=sales), 403)
    manager = api.token(Role.MANAGER)
    score = api.http.get(f"/customers/{customer_id}/score", headers=manager).json()
    assert score["churn_risk"] == 0.8 and score["rfm_segment"] == "at_risk"
    at_risk = api.http.get("/scores", params={"rfm_segment": "at_risk", "min_churn_risk": 0.5}, headers=manager).json()
    assert customer_id in [s["customer_id"] for s in at_risk["items"]]
    is_problem(api.http.get(f"/customers/{api.customer(f'Unscored {tag}')}/score", headers=manager), 404)


# ---- admin: audit log, users -----------------------------------------------------------------------------


def test_audit_log_and_roles_are_for_admins(api):
    admin = api.token(Role.ADMIN)
    admin_id = _user_of_last_token(api.app)
    sales = api.token(Role.SALES, name="auditee")
    sales_id = _user_of_last_token(api.app)
    created = api.http.post("/customers", json={"name": f"Logged {next(_n)}"}, headers=sales).json()
    api.http.patch(f"/customers/{created['id']}", json={"country": "NL"}, headers=sales)
    entries = api.http.get("/audit", params={"customer_id": created["id"]}, headers=admin).json()["items"]
    assert [(e["action"], e["platform"], e["actor_user_id"]) for e in entries] == [
        ("create", "api:auditee", sales_id),
        ("update", "api:auditee", sales_id),
    ]
    assert entries[1]["after"] == {"country": "NL"}
    since = entries[1]["at"]
    by_user = api.http.get(
        "/audit", params={"user_id": sales_id, "action": "update", "since": since}, headers=admin
    ).json()
    assert [e["id"] for e in by_user["items"]] == [entries[1]["id"]]
    for role in (Role.MANAGER, Role.SALES):
        is_problem(api.http.get("/audit", headers=api.token(role)), 403)
        is_problem(api.http.get("/users", headers=api.token(role)), 403)
    listed = api.http.get("/users", params={"role": "sales", "limit": 500}, headers=admin).json()["items"]
    assert sales_id in [u["id"] for u in listed]
    promoted = api.http.patch(f"/users/{sales_id}", json={"role": "manager"}, headers=admin)
    assert promoted.status_code == 200 and promoted.json()["role"] == "manager"
    assert rows(api.app, User, User.id == sales_id)[0].role is Role.MANAGER
    is_problem(api.http.patch(f"/users/{sales_id}", json={"role": "customer"}, headers=admin), 422)
    body = is_problem(api.http.patch(f"/users/{admin_id}", json={"role": "viewer"}, headers=admin), 403)
    assert "yourself" in body["detail"]


def test_deleting_a_customer_is_audited_and_keeps_their_orders(api):
    headers = api.token(Role.SALES)
    tag = next(_n)
    customer_id = api.customer(f"Leaving {tag}", tags="gone")
    product_id = _product(api.app, f"SKU-D{tag}")
    with api.app.uow() as uow:
        orders.create_order(uow, customer_id, [orders.LineInput(product_id, 1)], number=f"KEEP-{tag}")
    api.http.post(f"/customers/{customer_id}/notes", json={"text": "bye"}, headers=headers)
    etag = api.http.get(f"/customers/{customer_id}", headers=headers).headers["etag"]
    api.customer(f"Other {tag}")
    with api.app.uow() as uow:
        customers.update_customer(uow, customer_id, {"language": "fr"})
    is_problem(api.http.delete(f"/customers/{customer_id}", headers={**headers, "If-Match": etag}), 412)
    deleted = api.http.delete(f"/customers/{customer_id}", headers=headers)
    assert deleted.status_code == 204 and deleted.content == b""
    is_problem(api.http.get(f"/customers/{customer_id}", headers=headers), 404)
    is_problem(api.http.delete(f"/customers/{customer_id}", headers=headers), 404)
    (order,) = rows(api.app, Order, Order.number == f"KEEP-{tag}")
    assert order.customer_id is None
    deletions = rows(api.app, AuditEntry, AuditEntry.action == "delete", AuditEntry.platform == "api:it")
    assert {"customers", "interactions", "customer_tags"} <= {e.entity_type for e in deletions}
    with api.app.uow() as uow:
        kinds = [(e.type, e.payload) for e in events.recent(uow.session, limit=50, type_prefix="customer.deleted")]
    assert ("customer.deleted", {"customer_id": customer_id, "name": f"Leaving {tag}"}) in kinds
    is_problem(api.http.delete(f"/customers/{api.customer(f'Stays {tag}')}", headers=api.token(Role.VIEWER)), 403)
    assert count(api.app, Customer, Customer.name == f"Stays {tag}") == 1
