"""Slack over Socket Mode (``SLACK_APP_TOKEN``): ``chatcrm worker`` connects out to Slack over a
WebSocket, so chatcrm can run behind a firewall with no public URL. Same bolt app, same runtime."""

from __future__ import annotations

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.adapters.slack.bolt_app import build_bolt_app
from bot.adapters.slack.runtime import SlackRuntime
from bot.adapters.slack.settings import SlackSettings
from bot.bootstrap import App


class SlackSocketModeService:
    """The ``WorkerService`` holding the Socket Mode connection."""

    name = "slack-socket-mode"

    def __init__(self, app: App, settings: SlackSettings):
        if not settings.app_token:
            raise ValueError("Socket Mode needs SLACK_APP_TOKEN")
        self.app_token = settings.app_token
        self.runtime = SlackRuntime(app, settings)
        self._handler: AsyncSocketModeHandler | None = None

    async def start(self) -> None:
        await self.runtime.start()
        bolt = build_bolt_app(self.runtime, signing_secret=None)
        self._handler = AsyncSocketModeHandler(bolt, self.app_token)
        await self._handler.connect_async()

    async def stop(self) -> None:
        if self._handler is not None:
            await self._handler.close_async()
        await self.runtime.close()
