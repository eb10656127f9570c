"""Socket Mode: with SLACK_APP_TOKEN, ``chatcrm worker``'s services connect out to Slack over a WebSocket
(here the fake's) and serve the same commands, acknowledging each envelope."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from urllib.parse import parse_qsl

import pytest

from bot.bootstrap import build_app
from bot.platforms import platform_services, web_mounts
from bot.settings import Settings
from bot.worker import run_services
from crm_core.models import Interaction
from crm_core.services import customers
from crm_core.services.users import PlatformId
from tests.fakes.slack_api import FakeSlackApi
from tests.slack_support import ADMIN, BOT_TOKEN, block_texts, slack_api, slash_command  # noqa: F401
from tests.support import TEST_SECRET_KEY

APP_TOKEN = "xapp-1-A1-test"


class Worker:
    """``run_services`` (what ``chatcrm worker`` runs) in a thread, stopped like SIGTERM stops it."""

    def __init__(self, services):
        self.services = services
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="chatcrm-worker", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.stop_event = asyncio.Event()
            await run_services(self.services, self.stop_event)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.failure = exc

    def stop(self) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(15)
        assert self.failure is None, self.failure


@pytest.fixture
def socket_app(database_url, slack_api: FakeSlackApi) -> Iterator:
    extra = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": slack_api.base_url}
    app = build_app(
        Settings(
            database_url=database_url, secret_key=TEST_SECRET_KEY, admins=(PlatformId("slack", ADMIN),), extra=extra
        )
    )
    with app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    yield app
    app.close()


def test_the_worker_serves_slack_over_socket_mode(socket_app, slack_api):
    services = platform_services(socket_app)
    assert [s.name for s in services] == ["slack-socket-mode"]
    # Socket Mode without a signing secret: there is nothing to serve over HTTP.
    assert web_mounts(socket_app) == []
    worker = Worker(services)
    worker.thread.start()
    try:
        slack_api.wait_for_socket()
        opened = slack_api.calls("apps.connections.open")
        assert len(opened) == 1 and opened[0].token == APP_TOKEN
        payload = dict(
            parse_qsl(
                slash_command("/note", "acme Met them at the fair", response_url=slack_api.response_url("sm1")).decode()
            )
        )
        ack = slack_api.send_envelope("slash_commands", payload)
        # The envelope is acknowledged with nothing in it; the answer follows via the response_url.
        assert list(ack.args) == ["envelope_id"]
        answer = slack_api.wait_for("response_url", name="sm1")[0].args
        assert "Note logged on Acme Corp" in block_texts(answer)
        with socket_app.uow() as uow:
            assert uow.session.query(Interaction).count() == 1

        home = {
            "token": "x",
            "team_id": "T1",
            "type": "event_callback",
            "event_id": "EvSOCKET1",
            "event": {"type": "app_home_opened", "user": ADMIN, "tab": "home"},
        }
        slack_api.send_envelope("events_api", home)
        view = slack_api.wait_for("views.publish")[0].json_arg("view")
        assert view["type"] == "home" and "Your open deals" in block_texts(view)
        # Web API calls carry the bot token; only apps.connections.open uses the app token.
        assert {
            c.token
            for c in slack_api.calls()
            if c.method not in ("apps.connections.open", "response_url", "socket_mode.ack")
        } == {BOT_TOKEN}
    finally:
        worker.stop()
