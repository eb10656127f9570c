"""Outgoing webhooks end to end, on SQLite and PostgreSQL: /webhook in chat and /api/v1/webhooks, the real
worker (event listener -> outbox -> signed POST) to a local receiver that verifies every signature with the
``standardwebhooks`` library, retries with backoff (time-machine, no sleeping), order per entity, the
SSRF guard at add and at send time, and disabling an endpoint that fails for a day."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import time_machine

from bot.adapters.webhook.plugin import RETRY
from bot.adapters.webhook.sender import WebhookSender
from bot.bootstrap import build_app
from bot.delivery import OutboundMessage, TemporaryFailure
from bot.platforms import senders
from bot.settings import Settings
from bot.web import build_web_app
from crm_core import clock, webhooks
from crm_core.event_delivery import EventDispatcher
from crm_core.models import (
    AuditEntry,
    DealStage,
    OutboxMessage,
    OutboxStatus,
    Role,
    WebhookAttempt,
    WebhookEndpoint,
)
from crm_core.services import customers, deals, tickets
from crm_core.webhook_guard import UnsafeUrl, check_url
from tests.fakes.servers import serve_asgi
from tests.fakes.worker import FAST_WORKER_ENV, SERVER_SECRET, chat_worker, wait_until
from tests.support import TEST_SECRET_KEY, Chat, count, rows
from tests.webhook_receiver import Receiver, webhook_plugins

ROOT = Path(__file__).resolve().parents[1]
WORKER_ENV = {"CHATCRM_EVENTS_POLL": "0.05"}


def make_app(database_url: str, allow_private: bool = True):
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET_KEY, webhook_allow_private=allow_private)
    app = build_app(settings, plugins=webhook_plugins())
    # Listeners start after the newest event they first see: let them see the empty start now.
    EventDispatcher(app.session_factory, lambda: app.plugins.event_listeners(app)).run_once()
    return app


def add_endpoint(app, chat: Chat, admin, url: str, events: str) -> tuple[int, str]:
    said = chat.say(admin, f"/webhook add {url} events={events}")
    assert said.reply.private and (said.reply.text or "").startswith("whsec_"), said.text
    (endpoint,) = rows(app, WebhookEndpoint, WebhookEndpoint.url == url)
    return endpoint.id, said.reply.text


def attempts(app, endpoint_id: int) -> list[WebhookAttempt]:
    return rows(app, WebhookAttempt, WebhookAttempt.endpoint_id == endpoint_id)


@pytest.fixture
def rig(database_url):
    app = make_app(database_url)
    chat = Chat(app)
    admin = chat.user("Ada Admin", Role.ADMIN)
    with app.uow() as uow:
        customer_id = customers.create_customer(uow, "Acme GmbH").id
    try:
        yield app, chat, admin, customer_id
    finally:
        app.close()


def test_signed_deliveries_of_the_subscribed_events_only_and_the_commands(rig):
    app, chat, admin, customer_id = rig
    with Receiver() as receiver:
        endpoint_id, secret = add_endpoint(app, chat, admin, receiver.url, "deal.won,ticket.*")
        receiver.secret = secret
        (stored,) = rows(app, WebhookEndpoint, WebhookEndpoint.id == endpoint_id)
        assert stored.events == ["deal.won", "ticket.*"] and stored.owner_id is not None
        # whsec_ + base64 of 24 random bytes; never copied into the audit log.
        assert len(secret) == len("whsec_") + 32
        audited = rows(app, AuditEntry, AuditEntry.entity_type == "webhook_endpoints")
        assert audited and secret not in str([(a.before, a.after) for a in audited])
        with chat_worker(app, senders(app), **WORKER_ENV):
            with app.uow() as uow:
                deal = deals.create_deal(uow, customer_id, "Big order", 250000)  # deal.created: not subscribed
            with app.uow() as uow:
                deals.change_stage(uow, deal.id, DealStage.WON)  # stage_changed (no) and won (yes)
            with app.uow() as uow:
                tickets.create_ticket(uow, customer_id, "Printer on fire")  # ticket.created (yes)
            assert wait_until(lambda: len(receiver.received) >= 2)
            assert "Queued a webhook.test" in chat.say(admin, f"/webhook test {endpoint_id}").text
            assert wait_until(lambda: len(receiver.received) >= 3)
            wait_until(lambda: len(receiver.received) > 3, timeout=0.5)
        types = [d.body["type"] for d in receiver.received]
        assert sorted(types) == ["deal.won", "ticket.created", "webhook.test"], types
        assert all(d.verified for d in receiver.received)
        won = next(d for d in receiver.received if d.body["type"] == "deal.won")
        # The payload is the domain event; webhook-id is its id.
        assert won.webhook_id == f"evt_{won.body['id']}" and won.body["payload"]["deal_id"] == deal.id
        assert won.body["entity_type"] == "deal" and won.body["payload"]["amount"] == "2500.00"
    listed = chat.say(admin, "/webhook list").text
    assert f"#{endpoint_id}" in listed and "deal.won, ticket.*" in listed and secret not in listed
    shown = chat.say(admin, f"/webhook deliveries {endpoint_id}").text
    assert "deal.won" in shown and "webhook.test" in shown and "200" in shown and " ms" in shown
    assert all(a.status_code == 200 and a.latency_ms >= 0 for a in attempts(app, endpoint_id))
    # Not for everyone: a sales rep may not see or add webhooks.
    rep = chat.user("Rita Rep", Role.SALES)
    assert "whsec_" not in chat.say(rep, f"/webhook add {receiver.url} events=deal.won").text
    assert count(app, WebhookEndpoint) == 1
    assert "Removed webhook" in chat.say(admin, f"/webhook remove {endpoint_id}").text
    assert count(app, WebhookEndpoint) == 0 and count(app, WebhookAttempt) == 0


def test_the_secret_is_never_shown_in_a_shared_channel_and_bad_input_adds_nothing(rig):
    app, chat, admin, _customer_id = rig
    from dataclasses import replace

    in_channel = replace(admin, conversation="C-general", is_private=False)
    said = chat.say(in_channel, "/webhook add http://127.0.0.1:9/hook events=deal.won")
    assert "private chat" in said.text and "whsec_" not in said.text
    assert "matches no event type" in chat.say(admin, "/webhook add http://127.0.0.1:9/h events=deal.wonn").text
    assert "not an event pattern" in chat.say(admin, "/webhook add http://127.0.0.1:9/h events=deal.w!n").text
    assert count(app, WebhookEndpoint) == 0
    assert webhooks.parse_patterns("deal.won, ticket.* deal.won") == ["deal.won", "ticket.*"]
    assert webhooks.matches(["ticket.*"], "ticket.rated") and not webhooks.matches(["ticket.*"], "deal.won")


def test_a_receiver_failing_twice_gets_the_event_once_after_retries_and_in_order_per_entity(rig):
    """The first stage change of a deal fails twice: the deal's later events wait for it (order per
    entity) while another entity's event goes at once; the clock, not sleep, moves past the backoff."""
    app, chat, admin, customer_id = rig
    failures: list[str] = []

    def script(delivery) -> int:
        if delivery.body["type"] == "deal.stage_changed" and len(failures) < 2:
            failures.append(delivery.webhook_id)
            return 503
        return 204

    with Receiver(script) as receiver, time_machine.travel(clock.utcnow(), tick=True) as traveller:
        endpoint_id, receiver.secret = add_endpoint(app, chat, admin, receiver.url, "deal.*,ticket.created")
        with app.uow() as uow:
            deal_id = deals.create_deal(uow, customer_id, "Renewal", 1000).id
        with chat_worker(app, senders(app), **WORKER_ENV):
            assert wait_until(lambda: len(receiver.received) == 1)  # deal.created
            with app.uow() as uow:
                deals.change_stage(uow, deal_id, DealStage.QUALIFIED)
            with app.uow() as uow:
                deals.change_stage(uow, deal_id, DealStage.WON)  # stage_changed, won
            with app.uow() as uow:
                tickets.create_ticket(uow, customer_id, "Unrelated")
            # The ticket goes; the deal's first stage change failed and holds back the rest of the deal.
            assert wait_until(
                lambda: len(failures) == 1 and any(d.body["type"] == "ticket.created" for d in receiver.received)
            )
            assert wait_until(lambda: _waiting(app) == 3)
            traveller.shift(timedelta(seconds=RETRY.backoff_seconds + 1))
            assert wait_until(lambda: len(failures) == 2)
            assert wait_until(lambda: _waiting(app) == 3)
            traveller.shift(timedelta(seconds=2 * RETRY.backoff_seconds + 1))
            assert wait_until(lambda: sum(1 for d in receiver.received if d.body["type"] == "deal.won") == 1)
        for_deal = [d for d in receiver.received if d.body["entity_type"] == "deal" and d.webhook_id not in failures]
        # The failing event's successful try is the one not in `failures` order-wise: keep the ids' order.
        delivered = [d.body for d in receiver.received if d.body["entity_type"] == "deal"]
        delivered = [b for i, b in enumerate(delivered) if b["id"] not in [x["id"] for x in delivered[i + 1 :]]]
        assert [b["type"] for b in delivered] == [
            "deal.created",
            "deal.stage_changed",
            "deal.stage_changed",
            "deal.won",
        ]
        assert [b["id"] for b in delivered] == sorted(b["id"] for b in delivered)
        assert len(for_deal) == 3
        assert all(d.verified for d in receiver.received)
        # Three attempts for the failing event, with one webhook-id; two 503s and a 204 recorded.
        first_change = failures[0]
        assert failures == [first_change, first_change]
        tried = [a for a in attempts(app, endpoint_id) if a.message_id == first_change]
        assert [(a.attempt, a.status_code) for a in tried] == [(1, 503), (2, 503), (3, 204)]
        (endpoint,) = rows(app, WebhookEndpoint)
        assert endpoint.enabled and endpoint.failing_since is None


def _waiting(app) -> int:
    """Webhook rows waiting (pending) in the outbox."""
    return count(app, OutboxMessage, OutboxMessage.platform == "webhook", OutboxMessage.status == OutboxStatus.PENDING)


def test_an_endpoint_failing_for_a_day_is_disabled_and_its_owner_told(rig):
    app, chat, admin, customer_id = rig
    assert timedelta(hours=23) < timedelta(seconds=RETRY.total_seconds()) < timedelta(hours=26)
    with Receiver(lambda _d: 500) as receiver, time_machine.travel(clock.utcnow(), tick=True) as traveller:
        endpoint_id, receiver.secret = add_endpoint(app, chat, admin, receiver.url, "deal.*")
        with chat_worker(app, senders(app), **WORKER_ENV):
            with app.uow() as uow:
                deals.create_deal(uow, customer_id, "Doomed", 1000)
            with app.uow() as uow:
                deals.create_deal(uow, customer_id, "Also doomed", 1000)
            assert wait_until(lambda: len(attempts(app, endpoint_id)) == 2 and _waiting(app) == 2)
            (endpoint,) = rows(app, WebhookEndpoint)
            assert endpoint.enabled and endpoint.failing_since is not None
            traveller.shift(timedelta(hours=24, minutes=1))
            assert wait_until(lambda: not rows(app, WebhookEndpoint)[0].enabled)
            assert wait_until(lambda: _waiting(app) == 0)
            with app.uow() as uow:
                deals.create_deal(uow, customer_id, "After", 1000)  # not queued for a disabled endpoint
        (endpoint,) = rows(app, WebhookEndpoint)
        assert "failed for 24 hours" in endpoint.disabled_reason and "HTTP 500" in endpoint.disabled_reason
        told = rows(app, OutboxMessage, OutboxMessage.kind == "notification")
        assert len(told) == 1 and told[0].platform == "console" and told[0].conversation == admin.user_external_id
        assert f"Webhook #{endpoint_id}" in told[0].payload["formatted_text"]
        statuses = {r.status for r in rows(app, OutboxMessage, OutboxMessage.platform == "webhook")}
        assert statuses <= {OutboxStatus.FAILED, OutboxStatus.CANCELLED}
        # Two first tries, then one more each after the day (sent side by side) or, once one has
        # disabled the endpoint, none for the other.
        assert len(receiver.received) in (3, 4)
        assert "disabled" in chat.say(admin, "/webhook list").text


# ---- the SSRF guard -----------------------------------------------------------------------------


def _resolver(table: dict[str, list[str]]):
    def resolve(host: str, _port: int) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    "url, why",
    [
        ("http://hooks.example.com/x", "https://"),
        ("https://127.0.0.1/x", "not a public address"),
        ("https://10.1.2.3/x", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),
        ("https://[::1]/x", "not a public address"),
        ("https://[::ffff:192.168.1.1]/x", "not a public address"),
        ("https://localhost/x", "not a public address"),
        ("https://sneaky.example.com/x", "resolves to 10.0.0.7"),
        ("https://nowhere.invalid/x", "does not resolve"),
        ("https://user:pw@hooks.example.com/x", "no user name or password"),
        ("ftp://hooks.example.com/x", "https://"),
    ],
)
def test_the_guard_refuses_urls_that_are_not_https_to_public_addresses(url, why):
    table = {
        "hooks.example.com": ["93.184.216.34"],
        # Every address counts: one private among public ones is enough to refuse.
        "sneaky.example.com": ["93.184.216.34", "10.0.0.7"],
        "localhost": ["127.0.0.1", "::1"],
    }
    with pytest.raises(UnsafeUrl) as refused:
        check_url(url, resolver=_resolver(table))
    assert why in refused.value.message and refused.value.field == "url"
    assert check_url("https://hooks.example.com/x", resolver=_resolver(table)).addresses == ("93.184.216.34",)


def test_the_override_allows_http_and_private_addresses():
    assert check_url("http://127.0.0.1:8080/hook", allow_private=True).url == "http://127.0.0.1:8080/hook"
    assert check_url("http://10.0.0.7/hook", allow_private=True).host == "10.0.0.7"
    with pytest.raises(UnsafeUrl):
        check_url("ftp://10.0.0.7/hook", allow_private=True)
    env = {"CHATCRM_WEBHOOK_ALLOW_PRIVATE": "1"}
    assert Settings.from_env(env).webhook_allow_private and not Settings.from_env({}).webhook_allow_private


def test_private_urls_are_refused_when_added_and_again_when_sent(database_url):
    strict = make_app(database_url, allow_private=False)
    try:
        chat = Chat(strict)
        admin = chat.user("Ada Admin", Role.ADMIN)
        for url in ("http://127.0.0.1:9/hook", "https://127.0.0.1/hook", "https://10.2.3.4/x", "https://localhost/x"):
            said = chat.say(admin, f"/webhook add {url} events=deal.won").text
            assert "whsec_" not in said and ("https://" in said or "not a public address" in said), said
        assert count(strict, WebhookEndpoint) == 0
        with Receiver() as receiver:
            # Added while allowed (on-premises), then the rule is back: the send is refused, and retried.
            with strict.uow() as uow:
                made = webhooks.create(uow, None, receiver.url, "deal.won", allow_private=True)
            with strict.uow() as uow:
                message_id = webhooks.enqueue_test(uow, made.endpoint.id)
            (row,) = rows(strict, OutboxMessage, OutboxMessage.platform == "webhook")
            message = OutboundMessage(
                conversation=row.conversation,
                formatted_text=row.payload["formatted_text"],
                metadata={"idempotency_key": row.idempotency_key, "attempt": 1},
            )
            with pytest.raises(TemporaryFailure, match="refused: .*https://"):
                asyncio.run(WebhookSender(strict.session_factory).send(message))
            assert receiver.received == []
            # With the override the same message goes out, signed.
            receiver.secret = made.secret
            assert asyncio.run(WebhookSender(strict.session_factory, allow_private=True).send(message)) == message_id
            assert [d.verified for d in receiver.received] == [True]
        (refused, sent) = attempts(strict, made.endpoint.id)
        assert refused.status_code is None and "refused" in refused.error and sent.status_code == 200
    finally:
        strict.close()


def test_redirects_are_not_followed_and_count_as_failures(rig):
    app, _chat, _admin, _customer_id = rig
    with Receiver(lambda _d: 302) as receiver:
        with app.uow() as uow:
            made = webhooks.create(uow, None, receiver.url, "deal.won", allow_private=True)
            webhooks.enqueue_test(uow, made.endpoint.id)
        (row,) = rows(app, OutboxMessage, OutboxMessage.platform == "webhook")
        message = OutboundMessage(
            conversation=row.conversation,
            formatted_text=row.payload["formatted_text"],
            metadata={"idempotency_key": row.idempotency_key, "attempt": 1},
        )
        with pytest.raises(TemporaryFailure, match="redirects are not followed"):
            asyncio.run(WebhookSender(app.session_factory, allow_private=True).send(message))
        assert len(receiver.received) == 1


# ---- the API ------------------------------------------------------------------------------------


def test_the_api_lists_creates_and_deletes_webhooks_for_admins_only(rig):
    app, chat, admin, _customer_id = rig
    rep = chat.user("Rita Rep", Role.SALES)

    def token(who) -> dict[str, str]:
        return {"Authorization": f"Bearer {chat.say(who, '/token new hooks').reply.text}"}

    with serve_asgi(build_web_app(app, [])) as base_url, httpx.Client(base_url=base_url + "/api/v1") as http:
        as_admin, as_rep = token(admin), token(rep)
        made = http.post("/webhooks", json={"url": "http://127.0.0.1:9/h", "events": ["deal.won"]}, headers=as_admin)
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["secret"].startswith("whsec_") and body["events"] == ["deal.won"] and body["enabled"]
        listed = http.get("/webhooks", headers=as_admin).json()
        assert [w["id"] for w in listed] == [body["id"]] and "secret" not in listed[0]
        assert http.get("/webhooks", headers=as_rep).status_code == 403
        assert (
            http.post("/webhooks", json={"url": "http://x/", "events": ["deal.won"]}, headers=as_rep).status_code == 403
        )
        bad = http.post("/webhooks", json={"url": "ftp://x/", "events": ["deal.won"]}, headers=as_admin)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "url"
        unknown = http.post("/webhooks", json={"url": "http://127.0.0.1:9/", "events": ["nope.*"]}, headers=as_admin)
        assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "events"
        assert http.post(f"/webhooks/{body['id']}/test", headers=as_admin).status_code == 202
        assert http.get(f"/webhooks/{body['id']}/deliveries", headers=as_admin).json() == []
        assert http.delete(f"/webhooks/{body['id']}", headers=as_admin).status_code == 204
        assert http.delete(f"/webhooks/{body['id']}", headers=as_admin).status_code == 404
        assert http.get("/webhooks", headers=as_admin).json() == []
        assert count(app, WebhookEndpoint) == 1 - 1
        # The test message queued for the removed endpoint is cancelled, never sent.
        (row,) = rows(app, OutboxMessage, OutboxMessage.platform == "webhook")
        assert row.status == OutboxStatus.CANCELLED


# ---- a worker killed mid-delivery ---------------------------------------------------------------


@pytest.mark.slow
def test_a_worker_killed_mid_delivery_loses_nothing(database_url, tmp_path):
    app = make_app(database_url)
    release = threading.Event()

    def script(delivery) -> int:
        if delivery.body.get("payload", {}).get("title") == "Hang" and not release.is_set():
            release.wait(30)  # the worker is killed while this request is open
        return 200

    plugins = ",".join(m.__name__ for m in webhook_plugins())
    env = {
        **os.environ,
        **SERVER_SECRET,
        **FAST_WORKER_ENV,
        **WORKER_ENV,
        "DATABASE_URL": database_url,
        "CHATCRM_WEBHOOK_ALLOW_PRIVATE": "1",
        "CHATCRM_OUTBOX_LEASE": "2",
        "CHATCRM_EVENTS_LEASE": "2",
        "CHATCRM_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **({"CHATCRM_PLUGINS": plugins} if plugins else {}),
    }
    log_path = tmp_path / "worker.log"

    def start() -> subprocess.Popen:
        with open(log_path, "a") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log
            )

    chat = Chat(app)
    admin = chat.user("Ada Admin", Role.ADMIN)
    with app.uow() as uow:
        customer_id = customers.create_customer(uow, "Acme GmbH").id
    worker = start()
    try:
        with Receiver(script) as receiver:
            _id, receiver.secret = add_endpoint(app, chat, admin, receiver.url, "deal.created")
            titles = ["First", "Hang", "Third", "Fourth"]
            for title in titles:
                with app.uow() as uow:
                    deals.create_deal(uow, customer_id, title, 100)
            assert wait_until(lambda: receiver.arrived.is_set(), timeout=60), log_path.read_text()
            assert wait_until(lambda: any(d.body["payload"]["title"] == "First" for d in receiver.received))
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            release.set()
            with app.uow() as uow:
                deals.create_deal(uow, customer_id, "While down", 100)
            worker = start()
            expected = {*titles, "While down"}
            got = lambda: {d.body["payload"]["title"] for d in receiver.received}  # noqa: E731
            assert wait_until(lambda: got() == expected, timeout=60), (got(), log_path.read_text())
            assert all(d.verified for d in receiver.received)
            # At least once: a duplicate carries the same webhook-id, for the receiver to drop.
            by_id = {d.webhook_id: d.body["payload"]["title"] for d in receiver.received}
            assert sorted(by_id.values()) == sorted(expected)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        app.close()
