"""The Telegram adapter's settings, read from the TELEGRAM_* environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.settings import SettingsError
from crm_core.i18n import _

DEFAULT_API_URL = "https://api.telegram.org/bot"
# What Telegram accepts as a webhook secret token.
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_CHAT_ID = re.compile(r"^-?\d{1,20}$")


@dataclass(frozen=True)
class TelegramSettings:
    token: str
    # python-telegram-bot's base_url: the token is appended to it.
    api_url: str = DEFAULT_API_URL
    webhook_secret: str | None = None
    # Public HTTPS URL of POST /telegram/webhook; set means webhook mode, unset means long polling.
    webhook_url: str | None = None
    # The staff group customers' messages are relayed to.
    support_chat_id: str | None = None

    @property
    def file_url(self) -> str:
        """Where documents are downloaded from: Telegram serves files under ``/file/bot<token>/`` beside
        ``/bot<token>/`` (so a local Bot API server or a test's fake serves them too)."""
        base = self.api_url.rstrip("/")
        return base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file/bot"

    @property
    def uses_webhook(self) -> bool:
        return bool(self.webhook_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TelegramSettings:
        def value(name: str) -> str | None:
            raw = (env.get(name) or "").strip()
            return raw or None

        token = value("TELEGRAM_BOT_TOKEN")
        if token is None:
            raise SettingsError(_("TELEGRAM_BOT_TOKEN is not set (get one from @BotFather)"))
        secret = value("TELEGRAM_WEBHOOK_SECRET")
        if secret is not None and not _SECRET.match(secret):
            raise SettingsError(_("TELEGRAM_WEBHOOK_SECRET may only hold 1-256 letters, digits, _ and -"))
        url = value("TELEGRAM_WEBHOOK_URL")
        if url is not None:
            if not url.startswith("https://"):
                raise SettingsError(
                    _(
                        "{setting} must be an https:// URL (Telegram requires it)",
                        setting=f"TELEGRAM_WEBHOOK_URL={url!r}",
                    )
                )
            if secret is None:
                raise SettingsError(
                    _(
                        "TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not: "
                        "the webhook needs a secret so nobody else can post updates to it"
                    )
                )
        support = value("TELEGRAM_SUPPORT_CHAT_ID")
        if support is not None and not _CHAT_ID.match(support):
            raise SettingsError(
                _(
                    "{setting} is not a chat id: use the group's number, like -1001234567890 (see the README for "
                    "how to find it)",
                    setting=f"TELEGRAM_SUPPORT_CHAT_ID={support!r}",
                )
            )
        api_url = value("TELEGRAM_API_URL") or DEFAULT_API_URL
        if not api_url.startswith(("https://", "http://")):
            raise SettingsError(_("{setting} is not an http(s) URL", setting=f"TELEGRAM_API_URL={api_url!r}"))
        return cls(token=token, api_url=api_url, webhook_secret=secret, webhook_url=url, support_chat_id=support)
