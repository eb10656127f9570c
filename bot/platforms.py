"""Which platforms are configured, and the web mounts and worker services they contribute.

Adapters are imported only when configured, so a console-only install never loads an SDK.
"""

from __future__ import annotations

from bot.bootstrap import App
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


def worker_services(app: App) -> list[WorkerService]:
    """What ``chatcrm worker`` runs: Socket Mode / polling connections, scheduler, outbox sender."""
    services: list[WorkerService] = []
    return services
