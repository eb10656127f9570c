"""``POST /telegram/webhook`` for ``chatcrm web``: Telegram pushes each update here.

Checks come before any work: the secret token header must match TELEGRAM_WEBHOOK_SECRET
(compared in constant time; wrong or missing -> 403, nothing read or processed), and the body
may not exceed 1 MB (413, also when it arrives without a Content-Length). The update is
processed, and its effect committed, before the 200; when processing failed the answer is 500
so Telegram delivers the update again (the inbox makes sure it takes effect once).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.adapters.telegram.adapter import TelegramBot
from bot.adapters.telegram.settings import TelegramSettings
from bot.bootstrap import App

PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1024 * 1024


class TelegramWebhook:
    name = "telegram"

    def __init__(self, bot: TelegramBot, secret: str):
        self.bot = bot
        self._secret = secret.encode()

    @classmethod
    def build(cls, app: App, settings: TelegramSettings) -> TelegramWebhook:
        assert settings.webhook_secret, "the webhook needs TELEGRAM_WEBHOOK_SECRET"
        return cls(TelegramBot(app, settings, webhook=True), settings.webhook_secret)

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return [Route(PATH, self.receive, methods=["POST"])]

    async def startup(self) -> None:
        await self.bot.start()

    async def shutdown(self) -> None:
        await self.bot.stop()

    async def receive(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, self._secret):
            return PlainTextResponse("forbidden", status_code=403)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            return PlainTextResponse("body too large", status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return PlainTextResponse("body too large", status_code=413)
        try:
            update = json.loads(body)
        except ValueError:
            return PlainTextResponse("not JSON", status_code=400)
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            return PlainTextResponse("not a Telegram update", status_code=400)
        try:
            ok = await self.bot.process(update)
        except ValueError:
            return PlainTextResponse("not a Telegram update", status_code=400)
        return Response(status_code=200 if ok else 500)
