"""Which platforms are configured, and the web mounts, worker services and outbox senders they contribute.

Adapters are imported only when configured, so a console-only install never loads an SDK.

The worker always runs the scheduler and the outbox sender, even when no chat platform is
configured: follow-up reminders and digests for console users are then printed by the
console sender, and rows for a platform this worker has no sender for simply wait (pending)
until a worker with that platform configured delivers them. Nothing is lost by starting small.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.bootstrap import App
from bot.delivery import PlatformSender
from bot.web import WebMount
from bot.worker import WorkerService


def configured_platforms(app: App) -> list[str]:
    env = app.settings.extra
    found = []
    if env.get("SLACK_BOT_TOKEN"):
        found.append("slack")
    if env.get("TELEGRAM_BOT_TOKEN"):
        found.append("telegram")
    return found


def web_mounts(app: App) -> list[WebMount]:
    """The HTTP endpoints of every configured platform (Slack events, Telegram webhook)."""
    mounts: list[WebMount] = []
    return mounts


def senders(app: App) -> dict[str, PlatformSender]:
    """The outbox's ``PlatformSender`` for each platform, by platform name.

    The console's is always there. A configured platform registers its own with one line here,
    e.g. ``found["slack"] = SlackSender(SlackSettings.from_env(app.settings.extra))``.
    """
    from bot.adapters.console.sender import ConsoleSender

    found: dict[str, PlatformSender] = {"console": ConsoleSender()}
    return found


def worker_services(app: App, platform_senders: Mapping[str, PlatformSender] | None = None) -> list[WorkerService]:
    """What ``chatcrm worker`` runs: Socket Mode / polling connections, scheduler, outbox sender."""
    from bot.outbox_sender import OutboxSender, SenderSettings
    from bot.scheduler import SchedulerService, SchedulerSettings

    services: list[WorkerService] = []
    env = app.settings.extra
    sender = OutboxSender(app.engine, app.session_factory,
                          senders(app) if platform_senders is None else platform_senders,
                          SenderSettings.from_env(env))
    scheduler = SchedulerService(app.engine, app.session_factory, SchedulerSettings.from_env(env),
                                 config={**env, "CHATCRM_CURRENCY": app.settings.currency}, on_ran=sender.wake)
    services.extend([scheduler, sender])
    return services
