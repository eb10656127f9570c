"""The REST API over real HTTP (``chatcrm web``'s ASGI app under uvicorn), on SQLite and PostgreSQL:
tokens made in chat, 401/403 and a permission matrix, problem+json, ETag/If-Match, Idempotency-Key,
cursor pages stable under inserts, body limits and the rate limit.

One app and one database per module and database kind (building and serving an app per test would
cost more than the tests): each test makes its own users, tokens and customers, so they do not meet.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
import time_machine

from bot.api.app import PREFIX, build_api
from bot.api.config import ApiConfig
from bot.bootstrap import App, build_app
from bot.settings import Settings
from bot.web import build_web_app
from crm_core import clock, events
from crm_core.models import (
    ApiToken,
    AuditEntry,
    Customer,
    Direction,
    IdempotentRequest,
    OutboxMessage,
    Role,
    TicketMessage,
    chat_ids,
)
from crm_core.services import customers, support_inbox, tickets, users
from tests.conftest import fresh_database
from tests.fakes.servers import serve_asgi
from tests.support import TEST_SECRET_KEY, Chat, count, rows, table_counts

_names = itertools.count(1)


class Api:
    """The served app, and helpers to make users with tokens."""

    def __init__(self, app: App, base_url: str):
        self.app = app
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url + PREFIX, timeout=30)
        self.chat = Chat(app)

    def token(self, role: Role | None = Role.SALES, scopes: str = "", name: str = "it") -> dict[str, str]:
        """A new user with ``role`` makes a token in chat (/token new); returns the auth header."""
        me = self.chat.user(f"User {next(_names)}", role)
        if role is None:
            # /token needs a role; a user whose role was taken away later still holds their token.
            with self.app.uow() as uow:
                user = users.user_for_identity(uow, users.PlatformId("console", me.user_external_id))
                assert user is not None
                user.role = Role.VIEWER
        said = self.chat.say(me, f"/token new {name} {scopes}".strip())
        secret = said.reply.text
        assert secret and secret.startswith("crm_"), said.text
        if role is None:
            with self.app.uow() as uow:
                found = users.user_for_identity(uow, users.PlatformId("console", me.user_external_id))
                assert found is not None
                found.role = None
        return {"Authorization": f"Bearer {secret}"}

    def customer(self, name: str, **fields: str) -> int:
        with self.app.uow() as uow:
            return customers.create_customer(uow, name, fields).id


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory, sqlite_template, pg_database) -> Iterator[Api]:
    databases = fresh_database(request.param, tmp_path_factory.mktemp("api"), sqlite_template, pg_database)
    url = next(databases)
    app = build_app(Settings(database_url=url, secret_key=TEST_SECRET_KEY))
    try:
        with serve_asgi(build_web_app(app, [])) as base_url:
            rig = Api(app, base_url)
            yield rig
            rig.http.close()
    finally:
        app.close()


def is_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# ---- tokens ------------------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_hashed_and_stops_working_when_revoked(api):
    me = api.chat.user("Tess Token", Role.SALES)
    said = api.chat.say(me, "/token new erp-sync customers:read deals:write expires=30d")
    secret = said.reply.text
    assert said.reply.private and secret.startswith("crm_") and len(secret) >= 40
    (token,) = rows(api.app, ApiToken, ApiToken.name == "erp-sync")
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in json.dumps([token.token_hash, token.prefix, token.scopes])
    assert token.scopes == ["customers.read", "deals.write"]
    assert timedelta(days=29) < token.expires_at - clock.utcnow() <= timedelta(days=30)
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.http.get("/customers", headers=headers).status_code == 200
    listed = api.chat.say(me, "/token list").text
    assert "erp-sync" in listed and secret not in listed and token.prefix in listed
    # A second live token of that name is refused; revoking frees the name.
    assert "already have a token named erp-sync" in api.chat.say(me, "/token new erp-sync").text
    assert "Revoked" in api.chat.say(me, "/token revoke erp-sync").text
    is_problem(api.http.get("/customers", headers=headers), 401)
    assert "revoked" in api.chat.say(me, "/token list").text
    again = api.chat.say(me, "/token new erp-sync").reply.text
    assert again.startswith("crm_") and again != secret
    assert api.http.get("/customers", headers={"Authorization": f"Bearer {again}"}).status_code == 200


def test_tokens_expire_and_are_never_shown_in_a_shared_channel(api):
    headers = api.token(Role.VIEWER, "expires=2d")
    assert api.http.get("/customers", headers=headers).status_code == 200
    with time_machine.travel(clock.utcnow() + timedelta(days=2, minutes=1)):
        is_problem(api.http.get("/customers", headers=headers), 401)
    shared = api.chat.user("Sam Shared", Role.SALES)
    in_channel = replace(shared, conversation="C-general", is_private=False)
    said = api.chat.say(in_channel, "/token new leaky")
    assert "private chat" in said.text and "crm_" not in said.text
    assert rows(api.app, ApiToken, ApiToken.name == "leaky") == []
    # Scopes the role does not have, and unknown ones, are refused.
    assert "does not allow campaigns:run" in api.chat.say(shared, "/token new x campaigns:run").text
    assert "unknown scope" in api.chat.say(shared, "/token new x customers:fly").text.lower()


def test_no_or_bad_token_is_401_with_a_problem(api):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer crm_not-a-real-token"}):
        response = api.http.get("/customers", headers=headers)
        body = is_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "token" in body["detail"]
    # The OpenAPI document is public and is OpenAPI 3.1.
    document = api.http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert "/customers" in document["paths"] and "HTTPBearer" in document["components"]["securitySchemes"]


def test_the_openapi_document_describes_every_webhook_payload(api):
    document = api.http.get("/openapi.json").json()
    hooks = document["webhooks"]
    assert set(events.EVENT_TYPES) | {"webhook.test"} <= set(hooks)
    won = hooks["deal.won"]["post"]
    for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert header in won["description"]
    schemas = document["components"]["schemas"]
    envelope = schemas[won["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]]
    # Exactly the envelope crm_core.webhooks sends (Event.to_dict), with the type's payload fields.
    assert set(envelope["properties"]) == {"id", "type", "entity_type", "entity_id", "occurred_at", "actor", "payload"}
    payload = schemas[envelope["properties"]["payload"]["$ref"].rsplit("/", 1)[-1]]
    assert set(payload["properties"]) == set(events.EVENT_TYPES["deal.won"].payload)
    assert "ticket.created" in hooks


# ---- permissions ---------------------------------------------------------------------------------

# role -> the statuses of: customers read, customers write, deals read, deals write, tickets read, notes write
MATRIX = {
    Role.VIEWER: (200, 403, 200, 403, 200, 403),
    Role.SALES: (200, 201, 200, 201, 200, 201),
    Role.SUPPORT: (200, 201, 200, 403, 200, 201),
    Role.MANAGER: (200, 201, 200, 201, 200, 201),
    Role.ADMIN: (200, 201, 200, 201, 200, 201),
    None: (403, 403, 403, 403, 403, 403),
}


def _statuses(api: Api, headers: dict[str, str], customer_id: int) -> tuple[int, ...]:
    http = api.http
    return (
        http.get("/customers", headers=headers).status_code,
        http.post("/customers", json={"name": f"Made {next(_names)}"}, headers=headers).status_code,
        http.get("/deals", headers=headers).status_code,
        http.post("/deals", json={"customer_id": customer_id, "title": "Deal"}, headers=headers).status_code,
        http.get("/tickets", headers=headers).status_code,
        http.post(f"/customers/{customer_id}/notes", json={"text": "hi"}, headers=headers).status_code,
    )


@pytest.mark.parametrize("role", list(MATRIX), ids=lambda r: getattr(r, "value", "no-role"))
def test_permission_matrix_follows_the_chat_roles(api, role):
    customer_id = api.customer(f"Matrix {next(_names)}")
    assert _statuses(api, api.token(role), customer_id) == MATRIX[role]


def test_scopes_narrow_a_token_and_write_includes_read(api):
    customer_id = api.customer("Scoped Ltd")
    read_only = api.token(Role.MANAGER, "customers:read")
    assert _statuses(api, read_only, customer_id) == (200, 403, 403, 403, 403, 403)
    writer = api.token(Role.MANAGER, "customers:write deals:write")
    assert _statuses(api, writer, customer_id) == (200, 201, 200, 201, 403, 403)
    body = is_problem(api.http.get("/deals", headers=read_only), 403)
    assert "deals:read" in body["detail"]


def test_a_token_acts_as_its_user_and_writes_are_audited_with_its_name(api):
    headers = api.token(Role.SALES, name="crm-sync")
    created = api.http.post("/customers", json={"name": "Audited GmbH", "country": "DE"}, headers=headers).json()
    note = api.http.post(f"/customers/{created['id']}/notes", json={"text": "Called"}, headers=headers).json()
    assert note["channel"] == "api:crm-sync"
    entries = rows(
        api.app, AuditEntry, AuditEntry.entity_type == "customers", AuditEntry.entity_id == str(created["id"])
    )
    assert [(e.platform, e.action) for e in entries] == [("api:crm-sync", "create")]
    assert entries[0].actor_user_id is not None


# ---- problems, validation, limits ----------------------------------------------------------------


def test_errors_are_problem_json_naming_the_failing_field(api):
    headers = api.token(Role.SALES)
    body = is_problem(api.http.post("/customers", json={"name": "X", "email": "nope"}, headers=headers), 422)
    assert body["errors"] == [{"field": "email", "detail": "'nope' is not an email address"}]
    body = is_problem(api.http.post("/customers", json={"name": "X", "colour": "red"}, headers=headers), 422)
    assert body["errors"] == [{"field": "colour", "detail": "unknown field"}]
    body = is_problem(api.http.post("/customers", json={"email": "a@b.de"}, headers=headers), 422)
    assert body["errors"] == [{"field": "name", "detail": "required"}]
    body = is_problem(
        api.http.post("/customers", json={"name": "X", "custom_fields": {"tier": "gold"}}, headers=headers), 422
    )
    assert body["errors"][0]["field"] == "custom_fields.tier"
    is_problem(
        api.http.post("/customers", content=b"{not json", headers={**headers, "Content-Type": "application/json"}), 422
    )
    is_problem(api.http.get("/customers/999999", headers=headers), 404)
    is_problem(api.http.get("/nowhere", headers=headers), 404)
    body = is_problem(api.http.get("/customers", params={"filter": "planet=mars"}, headers=headers), 422)
    assert body["errors"][0]["field"] == "filter"
    is_problem(api.http.get("/customers", params={"limit": 501}, headers=headers), 422)
    is_problem(api.http.get("/customers", params={"cursor": "garbage"}, headers=headers), 400)
    assert count(api.app, Customer, Customer.name == "X") == 0


def test_bodies_over_one_megabyte_get_413(api):
    headers = {**api.token(Role.SALES), "Content-Type": "application/json"}
    big = json.dumps({"name": "Big", "phone": "x" * (1024 * 1024)}).encode()
    is_problem(api.http.post("/customers", content=big, headers=headers), 413)

    def chunks():  # no Content-Length: the limit holds while reading
        yield big[: len(big) // 2]
        yield big[len(big) // 2 :]

    is_problem(api.http.post("/customers", content=chunks(), headers=headers), 413)
    assert count(api.app, Customer, Customer.name == "Big") == 0


def test_the_rate_limit_answers_429_with_retry_after(api):
    headers = api.token(Role.VIEWER)
    # The same app behind a gate with a tiny budget: two at once, then one every 1000 s.
    with serve_asgi(build_api(api.app, ApiConfig(rate=0.001, burst=2))) as slow:
        assert [httpx.get(f"{slow}/customers", headers=headers).status_code for _ in range(2)] == [200, 200]
        response = httpx.get(f"{slow}/customers", headers=headers)
        is_problem(response, 429)
        assert 1 <= int(response.headers["retry-after"]) <= 1000
        # Another token has its own bucket.
        assert httpx.get(f"{slow}/customers", headers=api.token(Role.VIEWER)).status_code == 200


# ---- resources, ETags, idempotency, pages --------------------------------------------------------


def test_customers_round_trip_with_merge_patch_and_if_match(api):
    headers = api.token(Role.SALES)
    created = api.http.post(
        "/customers",
        json={"name": "Patch AG", "email": "info@patch.example", "country": "DE", "tags": ["vip", "b2b"]},
        headers=headers,
    )
    assert created.status_code == 201
    customer = created.json()
    assert created.headers["location"].endswith(f"{PREFIX}/customers/{customer['id']}")
    assert customer["tags"] == ["b2b", "vip"] and customer["country"] == "DE"
    got = api.http.get(f"/customers/{customer['id']}", headers=headers)
    etag = got.headers["etag"]
    assert etag == created.headers["etag"]
    # Merge patch: only given fields change; null clears.
    patched = api.http.patch(
        f"/customers/{customer['id']}",
        json={"email": None, "phone": "+49 30 1234567"},
        headers={**headers, "If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["email"] is None and patched.json()["country"] == "DE"
    assert patched.headers["etag"] != etag
    # The old ETag is stale now: 412 and nothing changes.
    stale = api.http.patch(
        f"/customers/{customer['id']}", json={"country": "FR"}, headers={**headers, "If-Match": etag}
    )
    is_problem(stale, 412)
    # A change made in chat changes the ETag too.
    fresh = patched.headers["etag"]
    with api.app.uow() as uow:
        customers.update_customer(uow, customer["id"], {"language": "de"})
    is_problem(
        api.http.patch(f"/customers/{customer['id']}", json={"country": "FR"}, headers={**headers, "If-Match": fresh}),
        412,
    )
    assert api.http.get(f"/customers/{customer['id']}", headers=headers).json()["country"] == "DE"


def test_search_and_segment_filter(api):
    headers = api.token(Role.VIEWER)
    api.customer("Quuxly Widgets", country="NL")
    api.customer("Quuxly Gadgets", country="BE")
    found = api.http.get("/customers", params={"q": "quuxly widgts"}, headers=headers).json()
    assert found["items"][0]["name"] == "Quuxly Widgets"
    filtered = api.http.get("/customers", params={"filter": "country=BE", "count": "true"}, headers=headers).json()
    assert [c["name"] for c in filtered["items"]] == ["Quuxly Gadgets"] and filtered["total"] == 1


def test_deal_stages_are_validated_as_in_chat(api):
    headers = api.token(Role.SALES)
    customer_id = api.customer("Stage Co")
    deal = api.http.post(
        "/deals", json={"customer_id": customer_id, "title": "Pilot", "amount_cents": 500000}, headers=headers
    )
    assert deal.status_code == 201 and deal.json()["stage"] == "lead"
    deal_id = deal.json()["id"]
    is_problem(
        api.http.post("/deals", json={"customer_id": customer_id, "title": "Won", "stage": "won"}, headers=headers), 422
    )
    lost = api.http.patch(f"/deals/{deal_id}", json={"stage": "lost", "lost_reason": "budget"}, headers=headers).json()
    assert lost["stage"] == "lost" and lost["lost_reason"] == "budget" and lost["closed_at"]
    body = is_problem(api.http.patch(f"/deals/{deal_id}", json={"stage": "lost"}, headers=headers), 422)
    assert body["errors"] == [{"field": "stage", "detail": f"deal #{deal_id} is already in lost"}]
    is_problem(api.http.patch(f"/deals/{deal_id}", json={"title": "renamed"}, headers=headers), 422)


def test_a_ticket_comes_with_its_thread(api):
    headers = api.token(Role.SUPPORT)
    customer_id = api.customer("Ticket Tina")
    with api.app.uow() as uow:
        ticket = tickets.create_ticket(uow, customer_id, "Printer on fire")
        tickets.add_note(uow, ticket.id, "It smokes")
        tickets.add_note(uow, ticket.id, "Sent the fire brigade")
        ticket_id = ticket.id
    got = api.http.get(f"/tickets/{ticket_id}", headers=headers)
    assert got.status_code == 200 and got.headers["etag"]
    body = got.json()
    assert body["subject"] == "Printer on fire" and body["message_count"] == 2
    assert [m["text"] for m in body["messages"]] == ["It smokes", "Sent the fire brigade"]


def test_a_staff_reply_is_kept_on_the_ticket_and_queued_to_the_customers_chat(api):
    headers = api.token(Role.SUPPORT, name="helpdesk")
    conversation = str(900000 + next(_names))
    with api.app.uow() as uow:
        wrote = support_inbox.customer_wrote(
            uow, users.PlatformId("telegram", conversation), conversation, "Rita Reply", "Help!"
        )
    path = f"/tickets/{wrote.ticket_id}/replies"
    is_problem(api.http.post(path, json={"text": "Hi"}, headers=api.token(Role.VIEWER)), 403)
    is_problem(api.http.post(path, json={"text": "Hi", "cc": "x"}, headers=headers), 422)
    is_problem(api.http.post("/tickets/999999/replies", json={"text": "Hi"}, headers=headers), 404)

    posted = api.http.post(path, json={"text": " Try turning it off and on "}, headers=headers)
    assert posted.status_code == 201, posted.text
    reply = posted.json()
    assert (reply["ticket_id"], reply["text"], reply["channel"]) == (
        wrote.ticket_id,
        "Try turning it off and on",
        "telegram",
    )
    assert reply["author"].startswith("User ") and reply["created_at"]
    [message] = rows(api.app, TicketMessage, TicketMessage.id == reply["id"])
    assert message.direction is Direction.OUTBOUND and message.author_id == reply["author_id"]
    # The same outbox row /ticket reply queues, to the customer's chat; nobody's chat is told back.
    [queued] = rows(
        api.app, OutboxMessage, chat_ids.is_chat(api.app.engine, OutboxMessage.conversation_index, conversation)
    )
    assert (queued.platform, queued.idempotency_key) == ("telegram", f"ticket-message:{message.id}:answer")
    assert queued.payload["reply"]["text"] == "Try turning it off and on" and "notify" not in queued.after
    [entry] = rows(
        api.app, AuditEntry, AuditEntry.entity_type == "ticket_messages", AuditEntry.entity_id == str(message.id)
    )
    assert entry.platform == "api:helpdesk"


def test_a_reply_to_a_customer_without_a_chat_is_refused_with_nothing_written(api):
    headers = api.token(Role.SUPPORT)
    with api.app.uow() as uow:
        ticket = tickets.create_ticket(uow, customers.create_customer(uow, "Walk In Wally").id, "At the counter")
    before = table_counts(api.app)
    body = is_problem(api.http.post(f"/tickets/{ticket.id}/replies", json={"text": "Hello"}, headers=headers), 409)
    assert body["detail"].startswith("Walk In Wally has no chat with us to answer in")
    assert table_counts(api.app) == before


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(api):
    headers = {**api.token(Role.SALES), "Idempotency-Key": "order-4711"}
    first = api.http.post("/customers", json={"name": "Once Only"}, headers=headers)
    again = api.http.post("/customers", json={"name": "Once Only"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["etag"] == first.headers["etag"]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert count(api.app, Customer, Customer.name == "Once Only") == 1
    other = api.http.post("/customers", json={"name": "Twice"}, headers=headers)
    assert "different request" in is_problem(other, 422)["detail"]
    assert count(api.app, Customer, Customer.name == "Twice") == 0
    # A refused request keeps its answer too (a retry gets the same 422), and keys are per token.
    bad = {**headers, "Idempotency-Key": "bad-1"}
    assert api.http.post("/customers", json={"name": "X", "email": "no"}, headers=bad).status_code == 422
    assert (
        api.http.post("/customers", json={"name": "X", "email": "no"}, headers=bad).headers["idempotent-replayed"]
        == "true"
    )
    someone_else = {**api.token(Role.SALES), "Idempotency-Key": "order-4711"}
    assert api.http.post("/customers", json={"name": "Twice"}, headers=someone_else).status_code == 201
    assert count(api.app, IdempotentRequest, IdempotentRequest.key == "order-4711") == 2


def test_pages_are_stable_while_rows_are_inserted_between_them(api):
    headers = api.token(Role.VIEWER)
    tag = f"page{next(_names)}"
    for n in range(7):
        api.customer(f"Paged {tag} {n}", tags=tag)
    seen: list[int] = []
    response = api.http.get("/customers", params={"tag": tag, "limit": 3, "count": "true"}, headers=headers)
    body = response.json()
    assert body["total"] == 7 and len(body["items"]) == 3
    pages = 1
    while True:
        seen += [c["id"] for c in body["items"]]
        # Someone adds customers while we page: they come at the end, nothing repeats or is skipped.
        if pages == 1:
            api.customer(f"Paged {tag} late", tags=tag)
        if body["next"] is None:
            assert "link" not in response.headers
            break
        link, rel = response.headers["link"].split("; ")
        assert rel == 'rel="next"'
        next_url = httpx.URL(link.strip("<>"))
        assert next_url.params["cursor"] == body["next"] and next_url.params["limit"] == "3"
        response = httpx.get(next_url, headers=headers)
        body = response.json()
        pages += 1
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 8 and pages == 3


def test_docs_page_is_served_from_local_assets(api):
    page = httpx.get(f"{api.base_url}/api/docs")
    assert page.status_code == 200 and "/api/v1/openapi.json" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text.replace("https://fastapi", "")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert httpx.get(f"{api.base_url}/api/docs/static/{asset}").status_code == 200
