"""Which platforms are configured, and the web mounts and worker services they contribute.

Adapters are imported only when configured, so a console-only install never loads an SDK.
"""

from __future__ import annotations

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


def _slack_settings(app: App):
    from bot.adapters.slack.settings import SlackSettings

    return SlackSettings.from_env(app.settings.extra)


def web_mounts(app: App) -> list[WebMount]:
    """The HTTP endpoints of every configured platform (Slack events, Telegram webhook).

    Raises SettingsError when a platform is set up for HTTP without its secret.
    """
    mounts: list[WebMount] = []
    slack = _slack_settings(app)
    # Slack over HTTP unless it is Socket Mode only (an app token and no signing secret).
    if slack is not None and (slack.signing_secret or not slack.socket_mode):
        from bot.adapters.slack.http import SlackWebMount

        mounts.append(SlackWebMount(app, slack))
    return mounts


def worker_services(app: App) -> list[WorkerService]:
    """What ``chatcrm worker`` runs: Socket Mode / polling connections, scheduler, outbox sender."""
    services: list[WorkerService] = []
    slack = _slack_settings(app)
    if slack is not None and slack.socket_mode:
        from bot.adapters.slack.socket_mode import SlackSocketModeService

        services.append(SlackSocketModeService(app, slack))
    return services


def platform_senders(app: App) -> dict[str, PlatformSender]:
    """The outbox's senders, by platform name, for every configured platform."""
    senders: dict[str, PlatformSender] = {}
    slack = _slack_settings(app)
    if slack is not None:
        from bot.adapters.slack.sender import SlackSender

        senders[SlackSender.platform] = SlackSender(slack)
    return senders
