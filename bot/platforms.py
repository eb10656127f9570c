"""Which platforms are configured, and the web mounts, worker services and outbox senders they contribute.

Adapters are imported only when configured, so a console-only install never loads an SDK.

The worker always runs the scheduler and the outbox sender, even when no chat platform is
configured: follow-up reminders and digests for console users are then printed by the
console sender, and rows for a platform this worker has no sender for simply wait (pending)
until a worker with that platform configured delivers them. Nothing is lost by starting small.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def senders(app: App) -> dict[str, PlatformSender]:
    """The outbox's ``PlatformSender`` for each platform, by platform name: the console's always,
    and Slack's and Telegram's when they are configured."""
    from bot.adapters.console.sender import ConsoleSender

    found: dict[str, PlatformSender] = {"console": ConsoleSender()}
    slack = _slack(app)
    if slack is not None:
        from bot.adapters.slack.sender import SlackSender

        found[SlackSender.platform] = SlackSender(slack)
    telegram = _telegram(app)
    if telegram is not None:
        from bot.adapters.telegram.sender import TelegramSender

        found["telegram"] = TelegramSender(telegram, app.session_factory)
    return found


def platform_services(app: App) -> list[WorkerService]:
    """The chat connections the worker keeps open: Slack Socket Mode, Telegram long polling."""
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


def worker_services(app: App, platform_senders: Mapping[str, PlatformSender] | None = None) -> list[WorkerService]:
    """What ``chatcrm worker`` runs: the chat connections, then the scheduler and the outbox sender."""
    from bot.outbox_sender import OutboxSender, SenderSettings
    from bot.scheduler import SchedulerService, SchedulerSettings

    env = app.settings.extra
    sender = OutboxSender(
        app.engine,
        app.session_factory,
        senders(app) if platform_senders is None else platform_senders,
        SenderSettings.from_env(env),
    )
    scheduler = SchedulerService(
        app.engine,
        app.session_factory,
        SchedulerSettings.from_env(env),
        config={**env, "CHATCRM_CURRENCY": app.settings.currency},
        on_ran=sender.wake,
    )
    return [*platform_services(app), scheduler, sender]
