"""Which platforms are configured, and the web mounts, worker services and outbox senders they contribute.

Adapters are imported only when configured, so a console-only install never loads an SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.bootstrap import App
from bot.delivery import PlatformSender
from bot.web import WebMount
from bot.worker import WorkerService

if TYPE_CHECKING:
    from bot.adapters.slack.settings import SlackSettings
    from bot.adapters.telegram.settings import TelegramSettings


def configured_platforms(app: App) -> list[str]:
    env = app.settings.extra
    found = []
    if env.get("SLACK_BOT_TOKEN"):
        found.append("slack")
    if env.get("TELEGRAM_BOT_TOKEN"):
        found.append("telegram")
    return found


def _slack(app: App) -> SlackSettings | None:
    from bot.adapters.slack.settings import SlackSettings

    return SlackSettings.from_env(app.settings.extra)


def _telegram(app: App) -> TelegramSettings | None:
    if not app.settings.extra.get("TELEGRAM_BOT_TOKEN"):
        return None
    from bot.adapters.telegram.settings import TelegramSettings

    return TelegramSettings.from_env(app.settings.extra)


def web_mounts(app: App) -> list[WebMount]:
    """The HTTP endpoints of every configured platform (Slack events, Telegram webhook).

    Raises SettingsError when a platform is set up for HTTP without its secret.
    """
    mounts: list[WebMount] = []
    slack = _slack(app)
    # Slack over HTTP unless it is Socket Mode only (an app token and no signing secret).
    if slack is not None and (slack.signing_secret or not slack.socket_mode):
        from bot.adapters.slack.http import SlackWebMount

        mounts.append(SlackWebMount(app, slack))
    telegram = _telegram(app)
    if telegram is not None and telegram.webhook_secret:
        from bot.adapters.telegram.webhook import TelegramWebhook

        mounts.append(TelegramWebhook.build(app, telegram))
    return mounts


def worker_services(app: App) -> list[WorkerService]:
    """What ``chatcrm worker`` runs: Socket Mode / polling connections, scheduler, outbox sender."""
    services: list[WorkerService] = []
    slack = _slack(app)
    if slack is not None and slack.socket_mode:
        from bot.adapters.slack.socket_mode import SlackSocketModeService

        services.append(SlackSocketModeService(app, slack))
    telegram = _telegram(app)
    if telegram is not None and not telegram.uses_webhook:
        from bot.adapters.telegram.adapter import TelegramBot

        services.append(TelegramBot(app, telegram, webhook=False))
    return services


def platform_senders(app: App) -> dict[str, PlatformSender]:
    """The outbox sender's way to each configured platform, by platform name."""
    senders: dict[str, PlatformSender] = {}
    slack = _slack(app)
    if slack is not None:
        from bot.adapters.slack.sender import SlackSender

        senders[SlackSender.platform] = SlackSender(slack)
    telegram = _telegram(app)
    if telegram is not None:
        from bot.adapters.telegram.sender import TelegramSender

        senders["telegram"] = TelegramSender(telegram, app.session_factory)
    return senders
