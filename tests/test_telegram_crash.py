"""Telegram under real ``chatcrm web`` (webhook) and ``chatcrm worker`` processes, killed with SIGKILL
at seeded random moments while they handle a customer's message (ticket + relay to the staff chat
+ confirmation) and a staff reply (answer to the customer + "Sent to …"), on SQLite and PostgreSQL.

After each kill the processes are started again and the update is delivered again, as Telegram
does when it got no 200. In the end each effect exists exactly once (one ticket message per
update, no update left pending) and every message arrived at least once; the messages that
arrived twice are counted and reported (only a message in flight at a kill may). A second test
answers 429 and then 500 to the first sends of every message: everything arrives after the pause.

``CHATCRM_CRASH_POINTS`` sets the kills per scenario and database (1 by default, to keep ``make test``
cheap; ``make test-crash`` runs 10).
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections import Counter
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
from tests.fakes.telegram_api import Failure, FakeTelegram
from tests.fakes.worker import FAST_WORKER_ENV, SERVER_SECRET, chat_worker, wait_until
from tests.processes import Process, free_port
from tests.support import rows
from tests.telegram_rig import SECRET, SUPPORT_CHAT, webhook_rig_with

SEED = 20261202
POINTS = int(os.environ.get("CHATCRM_CRASH_POINTS", "1"))
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


class Stack:
    """``chatcrm web`` and ``chatcrm worker`` against the fake Telegram, with kills."""

    def __init__(self, database_url: str, fake: FakeTelegram, tmp: Path):
        env = {
            **os.environ,
            **SERVER_SECRET,
            **FAST_WORKER_ENV,
            "DATABASE_URL": database_url,
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_URL": fake.api_url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_WEBHOOK_URL": "https://crm.example/telegram/webhook",
            "TELEGRAM_SUPPORT_CHAT_ID": str(SUPPORT_CHAT),
            # A dead process's update and rows are taken over within a second or two.
            "CHATCRM_INBOX_LEASE": "1",
            "CHATCRM_INBOX_POLL": "0.2",
            "CHATCRM_OUTBOX_LEASE": "2",
            "CHATCRM_LOG_LEVEL": "WARNING",
        }
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.web = Process(["web", "--host", "127.0.0.1", "--port", str(port)], env, tmp / "web.log")
        self.worker = Process(["worker"], env, tmp / "worker.log")
        self.kills = 0
        # Kills that came before the update's 200 (the rest hit the sends after it, or nothing).
        self.before_200 = 0

    def __enter__(self) -> Stack:
        self.worker.start()
        self.start_web()
        return self

    def __exit__(self, *_exc: object) -> None:
        for process in (self.web, self.worker):
            process.ensure_dead()

    def start_web(self) -> None:
        self.web.start()

        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(healthy, timeout=30), self.web.log()

    def post(self, update: dict[str, Any]) -> int | None:
        try:
            return httpx.post(
                f"{self.url}/telegram/webhook",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                timeout=15,
            ).status_code
        except httpx.HTTPError:
            return None

    def deliver_with_kill(self, update: dict[str, Any], delay: float, kill_worker: bool) -> None:
        """Post ``update``, SIGKILL the web (and maybe the worker) ``delay`` s later, start them
        again and deliver the update again until it gets its 200, as Telegram would."""
        answered: list[int | None] = []
        poster = threading.Thread(target=lambda: answered.append(self.post(update)))
        poster.start()
        time.sleep(delay)
        self.web.kill()
        if kill_worker:
            self.worker.kill()
        self.kills += 1
        poster.join(20)
        if kill_worker:
            self.worker.start()
        self.start_web()
        if answered != [200]:
            self.before_200 += 1
            assert wait_until(lambda: self.post(update) == 200, timeout=30), self.web.log()


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
    with QuietTelegram() as tg, Stack(database_url, tg, tmp_path) as stack:
        customers = [tg.user(20_000 + i, f"Customer{i}") for i in range(POINTS)]
        # A customer writes; the web dies at a random moment while handling it.
        for i, customer in enumerate(customers):
            update = tg.private_text(customer, f"help {i}")
            stack.deliver_with_kill(update, rng.uniform(0, KILL_WINDOW), kill_worker=rng.random() < 0.3)
        assert wait_until(lambda: all(_relay_of(tg, f"help {i}") for i in range(POINTS)), timeout=60), (
            stack.web.log() + stack.worker.log()
        )
        # Staff answer each relayed message; the web dies again while handling the answer.
        for i in range(POINTS):
            relay = _relay_of(tg, f"help {i}")
            update = tg.group_text(SUPPORT_CHAT, sam, f"answer {i}", reply_to=tg.message(relay))
            stack.deliver_with_kill(update, rng.uniform(0, KILL_WINDOW), kill_worker=rng.random() < 0.3)

        def everything_arrived() -> bool:
            staff_room = _texts(tg, SUPPORT_CHAT)
            return all(
                f"answer {i}" in _texts(tg, c["id"])
                and any("request number is" in t for t in _texts(tg, c["id"]))
                and any(f"Sent to Customer{i}" in t for t in staff_room)
                for i, c in enumerate(customers)
            )

        assert wait_until(everything_arrived, timeout=90), stack.web.log() + stack.worker.log()
        # Nothing is left to do.
        assert wait_until(lambda: _outbox_left(app) == 0 and _inbox_left(app) == 0, timeout=30), (
            f"{_outbox_left(app)} outbox rows, {_inbox_left(app)} updates left\n{stack.worker.log()}"
        )
        kills, before_200 = stack.kills, stack.before_200
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
    arrived = Counter((str(c.params["chat_id"]), c.text) for c in tg.sent())
    twice = sum(n - 1 for n in arrived.values())
    report(
        f"[telegram crash, {app.engine.dialect.name}] {kills} kills ({before_200} before the 200) over "
        f"{2 * POINTS} updates: every effect "
        f"once, every message arrived; {twice} arrived twice; {time.monotonic() - started:.1f} s"
    )
    # Only messages in flight at a kill (at most the two of one update) may arrive twice.
    assert twice <= 2 * kills


def _outbox_left(app) -> int:
    with app.uow() as uow:
        return uow.session.scalar(
            sa.select(sa.func.count()).where(OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
        )


def _inbox_left(app) -> int:
    with app.uow() as uow:
        return uow.session.scalar(sa.select(sa.func.count()).where(InboundEvent.status != InboxStatus.DONE))


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
