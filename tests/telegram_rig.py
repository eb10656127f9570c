"""The Telegram test rig: a fake Bot API, an app configured for it, and chatcrm's web app serving
the webhook under real uvicorn. Used by the tests of the Telegram adapter and support workflow."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.bootstrap import App, build_app
from bot.platforms import web_mounts, worker_services
from bot.settings import Settings
from bot.web import build_web_app
from crm_core.models import Role
from crm_core.services import users
from tests.fakes.loopback import LOOPBACK_TLS
from tests.fakes.servers import run_worker, serve_asgi
from tests.fakes.telegram_api import FakeTelegram
from tests.support import TEST_SECRET_KEY

SECRET = "webhook-secret_for-tests"
SUPPORT_CHAT = -1005005005


def telegram_env(fake: FakeTelegram, **more: str) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_URL": fake.api_url,
        "TELEGRAM_SUPPORT_CHAT_ID": str(SUPPORT_CHAT),
        **more,
    }


def build_telegram_app(database_url: str, env: dict[str, str]) -> App:
    return build_app(Settings.from_env({"DATABASE_URL": database_url, "CHATCRM_SECRET_KEY": TEST_SECRET_KEY, **env}))


class Rig:
    """One chatcrm app talking to one fake Telegram."""

    def __init__(self, app: App, fake: FakeTelegram, base_url: str | None = None):
        self.app = app
        self.fake = fake
        self.base_url = base_url

    def staff(self, tg_id: int, name: str, role: Role = Role.SUPPORT) -> dict[str, Any]:
        """A CRM user linked to a Telegram account; returns the Telegram user."""
        with self.app.uow() as uow:
            users.ensure_user(uow, users.PlatformId("telegram", str(tg_id)), display_name=name, role=role)
        first, _, last = name.partition(" ")
        return self.fake.user(tg_id, first, last or None)

    def customer(self, tg_id: int, name: str) -> dict[str, Any]:
        first, _, last = name.partition(" ")
        return self.fake.user(tg_id, first, last or None)

    def post(self, update: dict[str, Any] | bytes, secret: str | None = SECRET, **kwargs: Any) -> httpx.Response:
        """POST an update to /telegram/webhook over HTTP, as Telegram does."""
        assert self.base_url, "this rig has no web app"
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        body = {"content": update} if isinstance(update, bytes) else {"json": update}
        return httpx.post(
            f"{self.base_url}/telegram/webhook", headers=headers, timeout=30, verify=LOOPBACK_TLS, **body, **kwargs
        )

    def send(self, update: dict[str, Any]) -> dict[str, Any]:
        """Deliver an update through the webhook and insist it was taken (200)."""
        response = self.post(update)
        assert response.status_code == 200, response.text
        return update


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@contextlib.contextmanager
def webhook_rig_with(database_url: str, fake: FakeTelegram, **env: str) -> Iterator[Rig]:
    """chatcrm web with the Telegram webhook, served by uvicorn, talking to the fake Bot API."""
    app = build_telegram_app(
        database_url,
        telegram_env(
            fake, TELEGRAM_WEBHOOK_SECRET=SECRET, TELEGRAM_WEBHOOK_URL="https://crm.example/telegram/webhook", **env
        ),
    )
    try:
        with serve_asgi(build_web_app(app, web_mounts(app))) as base_url:
            yield Rig(app, fake, base_url)
    finally:
        app.close()


@pytest.fixture
def webhook_rig(database_url, fake_telegram) -> Iterator[Rig]:
    with webhook_rig_with(database_url, fake_telegram) as rig:
        yield rig


@pytest.fixture
def polling_rig(database_url, fake_telegram) -> Iterator[Rig]:
    """chatcrm worker polling the fake Bot API for updates."""
    app = build_telegram_app(database_url, telegram_env(fake_telegram))
    try:
        with run_worker(worker_services(app)):
            yield Rig(app, fake_telegram)
    finally:
        app.close()
