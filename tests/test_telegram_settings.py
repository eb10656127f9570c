"""TELEGRAM_* settings: what is refused with which message, and which parts each configuration runs
(webhook mount for ``chatcrm web``, polling service for ``chatcrm worker``, the outbox sender)."""

from __future__ import annotations

import pytest

from bot.adapters.telegram.settings import DEFAULT_API_URL, TelegramSettings
from bot.bootstrap import build_app
from bot.platforms import configured_platforms, platform_services, senders, web_mounts
from bot.settings import Settings, SettingsError
from tests.support import TEST_SECRET_KEY

TOKEN = "123456:ABC"


@pytest.mark.parametrize(
    "env, message",
    [
        ({}, "TELEGRAM_BOT_TOKEN is not set (get one from @BotFather)"),
        (
            {"TELEGRAM_WEBHOOK_SECRET": "has spaces"},
            "TELEGRAM_WEBHOOK_SECRET may only hold 1-256 letters, digits, _ and -",
        ),
        (
            {"TELEGRAM_WEBHOOK_URL": "http://crm.example/telegram/webhook", "TELEGRAM_WEBHOOK_SECRET": "s"},
            "TELEGRAM_WEBHOOK_URL='http://crm.example/telegram/webhook' must be an https:// URL (Telegram requires it)",
        ),
        (
            {"TELEGRAM_WEBHOOK_URL": "https://crm.example/telegram/webhook"},
            "TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not: the webhook needs a secret so nobody "
            "else can post updates to it",
        ),
        (
            {"TELEGRAM_SUPPORT_CHAT_ID": "@support"},
            "TELEGRAM_SUPPORT_CHAT_ID='@support' is not a chat id: use the group's number, like -1001234567890 "
            "(see the README for how to find it)",
        ),
        ({"TELEGRAM_API_URL": "ftp://example"}, "TELEGRAM_API_URL='ftp://example' is not an http(s) URL"),
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(env, message):
    token = {} if env == {} else {"TELEGRAM_BOT_TOKEN": TOKEN}
    with pytest.raises(SettingsError) as error:
        TelegramSettings.from_env({**token, **env})
    assert str(error.value) == message


def test_defaults():
    settings = TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_SUPPORT_CHAT_ID": "-1001234"})
    assert settings.api_url == DEFAULT_API_URL == "https://api.telegram.org/bot"
    assert not settings.uses_webhook and settings.support_chat_id == "-1001234"


@pytest.fixture
def configured(database_url):
    apps = []

    def build(**env: str):
        app = build_app(Settings.from_env({"DATABASE_URL": database_url, "CHATCRM_SECRET_KEY": TEST_SECRET_KEY, **env}))
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.close()


def test_which_parts_run_in_each_mode(configured):
    console_only = configured()
    assert (
        configured_platforms(console_only),
        web_mounts(console_only),
        platform_services(console_only),
        list(senders(console_only)),
    ) == ([], [], [], ["console", "webhook"])

    polling = configured(TELEGRAM_BOT_TOKEN=TOKEN)
    assert configured_platforms(polling) == ["telegram"]
    assert web_mounts(polling) == []
    assert [s.name for s in platform_services(polling)] == ["telegram"]
    # Outgoing webhooks (bot.adapters.webhook) need no configuration: their endpoints are in the database.
    assert list(senders(polling)) == ["console", "telegram", "webhook"]

    webhook = configured(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_WEBHOOK_SECRET="s3cret",
        TELEGRAM_WEBHOOK_URL="https://crm.example/telegram/webhook",
    )
    [mount] = web_mounts(webhook)
    assert mount.name == "telegram" and [r.path for r in mount.routes] == ["/telegram/webhook"]
    # In webhook mode Telegram refuses getUpdates: the worker does not poll.
    assert platform_services(webhook) == []


def test_cli_reports_configuration_problems_in_one_line(database_url, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    # As a server deployment has one (without it PostgreSQL starts with a warning about customers' data keys).
    monkeypatch.setenv("CHATCRM_SECRET_KEY", "a-test-secret-key-of-enough-length")
    # Polling mode: nothing for the web server to serve.
    assert main(["web"]) == 2
    assert "no platform is configured" in capsys.readouterr().err
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://crm.example/telegram/webhook")
    assert main(["worker"]) == 1
    assert capsys.readouterr().err.strip() == (
        "chatcrm: TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not: the webhook needs a secret so "
        "nobody else can post updates to it"
    )
