"""Domain events reach plugins' ``on_event`` after commit: a raising plugin never touches the request
and is retried, and the example plugin's listener acts exactly once per event across a worker that
is SIGKILLed and restarted (the real ``chatcrm worker`` process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.bootstrap import build_app
from bot.hookspecs import hookimpl
from bot.settings import Settings
from crm_core.event_delivery import EventDispatcher
from crm_core.models import Deal, OutboxMessage, Role
from crm_core.services import customers
from tests.fakes.worker import FAST_WORKER_ENV, SERVER_SECRET, wait_until
from tests.support import TEST_SECRET_KEY, Chat

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugins" / "chatcrm-example"
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _plugin(name: str, function) -> types.SimpleNamespace:
    plugin = types.SimpleNamespace(on_event=hookimpl(function))
    plugin.__name__ = name
    return plugin


def _won_deal(app, chat: Chat, rep, title: str = "Big order", amount: str = "25000") -> int:
    reply = chat.say(rep, f"/deal new acme {title} amount={amount}").reply
    assert "Deal #" in (reply.title or "") + (reply.text or ""), reply
    with app.uow() as uow:
        deal_id = uow.session.scalar(sa.select(sa.func.max(Deal.id)))
    chat.say(rep, f"/deal stage {deal_id} won")
    return deal_id


def test_a_raising_listener_neither_rolls_back_the_request_nor_blocks_others_and_is_retried(settings):
    heard: list[str] = []
    attempts: list[int] = []

    def recorder(event):
        heard.append(event.type)

    def flaky(event):
        if event.type == "deal.won":
            attempts.append(event.id)
            if len(attempts) < 3:
                raise RuntimeError("the CRM-side webhook is down")

    app = build_app(settings, plugins=[_plugin("recorder", recorder), _plugin("flaky", flaky)])
    try:
        chat = Chat(app)
        rep = chat.user("Rita Rep", Role.SALES)
        with app.uow() as uow:
            customers.create_customer(uow, "Acme GmbH")
        dispatcher = EventDispatcher(app.session_factory, lambda: app.plugins.event_listeners(app))
        # Listeners start at the events written after they were first seen.
        dispatcher.run_once(now=T0)
        deal_id = _won_deal(app, chat, rep)
        # The request committed whatever the listeners will do: on_event runs in the worker, later.
        with app.uow() as uow:
            assert uow.session.get(Deal, deal_id).stage.value == "won"
        dispatcher.run_once(now=T0)
        assert heard.count("deal.won") == 1 and attempts == [attempts[0]]
        # Backing off: not retried at once, and the recorder is not given the event again.
        dispatcher.run_once(now=T0)
        assert len(attempts) == 1
        dispatcher.run_once(now=T0 + timedelta(seconds=2))
        assert len(attempts) == 2
        dispatcher.run_once(now=T0 + timedelta(seconds=10))
        assert len(attempts) == 3  # succeeded on the third try
        dispatcher.run_once(now=T0 + timedelta(minutes=5))
        assert len(attempts) == 3 and heard.count("deal.won") == 1
    finally:
        app.close()


def _big_deal_rows(app) -> list[str]:
    with app.uow() as uow:
        return list(
            uow.session.scalars(
                sa.select(OutboxMessage.idempotency_key).where(OutboxMessage.idempotency_key.like("example:bigdeal:%"))
            )
        )


@pytest.mark.slow
def test_the_example_listener_acts_once_per_event_across_a_killed_and_restarted_worker(database_url, tmp_path):
    sys.path.insert(0, str(EXAMPLE))
    env = {"CHATCRM_EXAMPLE_BIG_DEAL": "1000"}
    app = build_app(
        Settings(database_url=database_url, secret_key=TEST_SECRET_KEY, plugins=("chatcrm_example",), extra=env)
    )
    worker_env = {
        **os.environ,
        **SERVER_SECRET,
        **FAST_WORKER_ENV,
        **env,
        "DATABASE_URL": database_url,
        "CHATCRM_PLUGINS": "chatcrm_example",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLE), os.environ.get("PYTHONPATH", "")]),
        "CHATCRM_EVENTS_POLL": "0.1",
        "CHATCRM_EVENTS_LEASE": "2",
        "CHATCRM_LOG_LEVEL": "WARNING",
    }
    log_path = tmp_path / "worker.log"

    def start() -> subprocess.Popen:
        with open(log_path, "a") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "worker"], cwd=ROOT, env=worker_env, stdout=log, stderr=log
            )

    worker = start()
    try:
        chat = Chat(app)
        rep = chat.user("Rita Rep", Role.SALES)
        with app.uow() as uow:
            customers.create_customer(uow, "Acme GmbH")
        # The worker's listener cursor starts at the newest event when it first sees the plugin.
        assert wait_until(lambda: _cursor_seen(app), timeout=60), log_path.read_text()
        _won_deal(app, chat, rep, "First", "5000")
        assert wait_until(lambda: len(_big_deal_rows(app)) == 1, timeout=60), log_path.read_text()
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        # Won while no worker runs: delivered after the restart.
        _won_deal(app, chat, rep, "Second", "7000")
        _won_deal(app, chat, rep, "Small", "10")
        _won_deal(app, chat, rep, "Third", "9000")
        worker = start()
        assert wait_until(lambda: len(_big_deal_rows(app)) == 3, timeout=60), log_path.read_text()
        # Exactly once per big won deal, nothing for the small one, even with more time.
        wait_until(lambda: len(_big_deal_rows(app)) > 3, timeout=1.5)
        assert len(_big_deal_rows(app)) == 3
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        app.close()
        sys.path.remove(str(EXAMPLE))


def _cursor_seen(app) -> bool:
    from crm_core.models import EventCursor

    with app.uow() as uow:
        return uow.session.scalar(sa.select(sa.func.count()).select_from(EventCursor)) > 0
