"""``POST /telegram/webhook`` for ``chatcrm web``: Telegram pushes each update here.

Checks come before any work: the secret token header must match TELEGRAM_WEBHOOK_SECRET
(compared in constant time; wrong or missing -> 403, nothing read or processed), and the body
may not exceed 1 MB (413, also when it arrives without a Content-Length). The update is written
to the inbox and committed before anything else, then processed (its effect committed, what it
says sent) before the 200. A 200 means it is kept: if processing failed it is retried from the
inbox (bot.inbox_runner), and a repeat of it is answered 200 without doing anything again. Only
when it could not even be recorded (the database is away) the answer is 500, so Telegram sends
it again.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.adapters.telegram.adapter import TelegramBot
from bot.adapters.telegram.settings import TelegramSettings
from bot.bootstrap import App

log = logging.getLogger("chatcrm.telegram")

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
            await self.bot.receive(update)
        except ValueError:
            return PlainTextResponse("not a Telegram update", status_code=400)
        except sa.exc.SQLAlchemyError:
            log.exception("could not record Telegram update %s; Telegram will send it again", update["update_id"])
            return Response(status_code=500)
        return Response(status_code=200)
