"""Telegram under real ``chatcrm web`` (webhook) and ``chatcrm worker`` processes, killed with SIGKILL
at seeded random moments while they handle a customer's message (ticket + relay to the staff chat
+ confirmation) and a staff reply (answer to the customer + "Sent to …"), on SQLite and PostgreSQL.

After each kill the processes are started again and the update is delivered again, as Telegram
does when it got no 200. In the end each effect exists exactly once (one ticket message per
update, no update left pending) and every message arrived at least once; the messages that
arrived twice are reported, and each must have been in flight at a kill (the fake got its first
copy less than a second before a process died: ``Stack.repeats``). A second test
answers 429 and then 500 to the first sends of every message: everything arrives after the pause.

``CHATCRM_CRASH_POINTS`` sets the kills per scenario and database (1 by default, to keep ``make test``
cheap; ``make test-crash`` runs 10).
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from crm_core.models import (
    Direction,
    InboundEvent,
    InboxStatus,
    OutboxMessage,
    OutboxStatus,
    Role,
    Ticket,
    TicketMessage,
)
from crm_core.services import users
from tests.fakes.loopback import LOOPBACK_TLS
from tests.fakes.telegram_api import Failure, FakeTelegram
from tests.fakes.worker import chat_worker, wait_until
from tests.processes import CRASH_POINTS, Post, Stack
from tests.support import rows, work_left
from tests.telegram_rig import SECRET, SUPPORT_CHAT, webhook_rig_with

SEED = 20261202
POINTS = CRASH_POINTS
STAFF = 900
# Kills land within this many seconds after an update was posted (its handling takes ~10-50 ms).
KILL_WINDOW = 0.08


class QuietTelegram(FakeTelegram):
    """The fake, without tracebacks for connections a killed process broke mid-request."""

    def start(self) -> QuietTelegram:
        super().start()
        server = self._server
        assert server is not None
        report = server.handle_error

        def handle_error(request, client_address) -> None:  # noqa: ANN001 - socketserver's hook
            if not isinstance(sys.exc_info()[1], ConnectionError | KeyError):
                report(request, client_address)

        server.handle_error = handle_error  # type: ignore[method-assign]
        return self


def _stack(database_url: str, fake: FakeTelegram, tmp: Path) -> Stack:
    """``chatcrm web`` (the webhook) and ``chatcrm worker`` against the fake Telegram."""
    return Stack(
        database_url,
        {
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_URL": fake.api_url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_WEBHOOK_URL": "https://crm.example/telegram/webhook",
            "TELEGRAM_SUPPORT_CHAT_ID": str(SUPPORT_CHAT),
        },
        tmp,
    )


def _poster(stack: Stack, update: dict[str, Any]) -> Post:
    """Posts ``update`` to the webhook, the same each time, as Telegram redelivers it."""

    def post(_attempt: int) -> int | None:
        try:
            return httpx.post(
                f"{stack.url}/telegram/webhook",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                timeout=15,
                verify=LOOPBACK_TLS,
            ).status_code
        except httpx.HTTPError:
            return None

    return post


def _texts(fake: FakeTelegram, chat: int) -> list[str]:
    return [call.text for call in fake.sent(chat)]


def _staff(app) -> dict[str, Any]:
    with app.uow() as uow:
        users.ensure_user(uow, users.PlatformId("telegram", str(STAFF)), display_name="Sam Support", role=Role.SUPPORT)
    return FakeTelegram.user(STAFF, "Sam", "Support")


def _relay_of(fake: FakeTelegram, text: str):
    relays = [c for c in fake.sent(SUPPORT_CHAT) if text in c.text]
    return relays[0] if relays else None


@pytest.mark.slow
def test_kills_while_handling_customer_messages_and_staff_replies_lose_nothing(app, database_url, tmp_path, report):
    rng = random.Random(SEED)
    sam = _staff(app)
    started = time.monotonic()
    with QuietTelegram() as tg, _stack(database_url, tg, tmp_path).start() as stack:
        customers = [tg.user(20_000 + i, f"Customer{i}") for i in range(POINTS)]
        # A customer writes; the web dies at a random moment while handling it.
        for i, customer in enumerate(customers):
            post = _poster(stack, tg.private_text(customer, f"help {i}"))
            stack.deliver_with_kill(post, rng.uniform(0, KILL_WINDOW), kill_worker=rng.random() < 0.3)
        assert wait_until(lambda: all(_relay_of(tg, f"help {i}") for i in range(POINTS)), timeout=60), stack.logs()
        # Staff answer each relayed message; the web dies again while handling the answer.
        for i in range(POINTS):
            relay = _relay_of(tg, f"help {i}")
            post = _poster(stack, tg.group_text(SUPPORT_CHAT, sam, f"answer {i}", reply_to=tg.message(relay)))
            stack.deliver_with_kill(post, rng.uniform(0, KILL_WINDOW), kill_worker=rng.random() < 0.3)

        def everything_arrived() -> bool:
            staff_room = _texts(tg, SUPPORT_CHAT)
            return all(
                f"answer {i}" in _texts(tg, c["id"])
                and any("request number is" in t for t in _texts(tg, c["id"]))
                and any(f"Sent to Customer{i}" in t for t in staff_room)
                for i, c in enumerate(customers)
            )

        assert wait_until(everything_arrived, timeout=90), stack.logs()
        # Nothing is left to do.
        assert wait_until(lambda: work_left(app) is None, timeout=30), f"{work_left(app)} left\n{stack.worker.log()}"
    # Each effect exactly once: one ticket per customer with their message and the answer.
    # Subjects are encrypted at rest: compared here, not in SQL.
    every_ticket = rows(app, Ticket)
    for i, customer in enumerate(customers):
        [ticket] = [t for t in every_ticket if t.subject == f"help {i}"]
        thread = rows(app, TicketMessage, TicketMessage.ticket_id == ticket.id)
        assert [(m.direction, m.text) for m in thread] == [
            (Direction.INBOUND, f"help {i}"),
            (Direction.OUTBOUND, f"answer {i}"),
        ], customer
        assert thread[1].external_message_id is not None
    assert {e.status for e in rows(app, InboundEvent)} == {InboxStatus.DONE}
    arrivals: dict[str, list[float]] = defaultdict(list)
    for call in tg.sent():
        arrivals[f"{call.params['chat_id']}: {call.text[:40]!r}"].append(call.received_at)
    in_flight, unexplained = stack.repeats(arrivals)
    report(
        f"[telegram crash, {app.engine.dialect.name}] {stack.kills} kills ({stack.before_ack} before the 200) "
        f"over {2 * POINTS} updates: every effect once, every message arrived; "
        f"{len(in_flight)} arrived twice, each in flight at a kill{': ' if in_flight else ''}"
        f"{'; '.join(in_flight)}; {time.monotonic() - started:.1f} s"
    )
    # Only messages in flight at a kill may arrive twice.
    assert unexplained == [], f"sent twice with no kill to explain it: {unexplained}"


class FlakyTelegram(FakeTelegram):
    """Answers the first send of every message 429 (retry after 1 s), the second 500, then takes it."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: Counter[tuple[str, str]] = Counter()

    def _pop_failure(self, method: str) -> Failure | None:
        return None

    def _handle(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> tuple[int, dict[str, Any]]:
        if method == "sendMessage":
            key = (str(params.get("chat_id")), str(params.get("text")))
            with self._changed:
                self.attempts[key] += 1
                attempt = self.attempts[key]
            if attempt == 1:
                return 429, Failure.rate_limited(1).body()
            if attempt == 2:
                return 500, Failure.server_error().body()
        return super()._handle(method, params, files)


def test_a_429_and_a_500_on_every_send_delay_but_lose_nothing(database_url):
    from bot.adapters.telegram.sender import TelegramSender
    from bot.adapters.telegram.settings import TelegramSettings

    with FlakyTelegram() as tg, webhook_rig_with(database_url, tg) as rig:
        sam = _staff(rig.app)
        carla = rig.customer(555, "Carla Customer")
        sender = TelegramSender(TelegramSettings.from_env(rig.app.settings.extra), rig.app.session_factory)
        with chat_worker(rig.app, {"telegram": sender}):
            rig.send(tg.private_text(carla, "My printer jams"))
            assert tg.wait_for(lambda: tg.sent(SUPPORT_CHAT) and tg.sent(555), timeout=30)
            relay = tg.last_sent(SUPPORT_CHAT)
            rig.send(tg.group_text(SUPPORT_CHAT, sam, "Open tray 2", reply_to=tg.message(relay)))
            assert tg.wait_for(lambda: len(tg.sent(SUPPORT_CHAT)) == 2, timeout=30)
    assert "request number is" in tg.sent(555)[0].text
    assert [c.text for c in tg.sent(555)][1] == "Open tray 2"
    notice = tg.last_sent(SUPPORT_CHAT).text
    # Delivered after the pause, not "Not delivered … rate limited".
    assert "Sent to Carla Customer" in notice
    assert max(tg.attempts.values()) == 3
    [answer] = rows(rig.app, TicketMessage, TicketMessage.direction == Direction.OUTBOUND)
    assert answer.external_message_id is not None and answer.delivery_error is None


def test_staff_are_told_when_an_answer_finally_failed(database_url):
    from bot.adapters.telegram.sender import TelegramSender
    from bot.adapters.telegram.settings import TelegramSettings

    retries = {"CHATCRM_OUTBOX_MAX_ATTEMPTS": "2", "CHATCRM_OUTBOX_BACKOFF": "0.05"}
    with QuietTelegram() as tg, webhook_rig_with(database_url, tg, **retries) as rig:
        sam = _staff(rig.app)
        rig.send(tg.private_text(rig.customer(555, "Carla Customer"), "Hello"))
        relay = tg.last_sent(SUPPORT_CHAT)
        # Telegram fails the answer on both attempts: the web's, then the worker's retry.
        tg.fail_next("sendMessage", Failure.server_error(), times=2)
        rig.send(tg.group_text(SUPPORT_CHAT, sam, "It ships today", reply_to=tg.message(relay)))
        assert not any("Sent to" in t or "Not delivered" in t for t in _texts(tg, SUPPORT_CHAT))
        sender = TelegramSender(TelegramSettings.from_env(rig.app.settings.extra), rig.app.session_factory)
        with chat_worker(rig.app, {"telegram": sender}, **retries):
            assert tg.wait_for(lambda: len(tg.sent(SUPPORT_CHAT)) == 2, timeout=30)
    notice = tg.last_sent(SUPPORT_CHAT)
    assert "Not delivered to Carla Customer: Telegram could not be reached after several attempts" in notice.text
    [answer] = rows(rig.app, TicketMessage, TicketMessage.direction == Direction.OUTBOUND)
    assert "Internal Server Error" in answer.delivery_error
    assert [c.text for c in tg.sent(555)] == [tg.sent(555)[0].text]
