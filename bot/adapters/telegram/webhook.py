"""``POST /telegram/webhook`` for ``chatcrm web``: Telegram pushes each update here.

Checks come before any work: the secret token header must match TELEGRAM_WEBHOOK_SECRET
(compared in constant time; wrong or missing -> 403, nothing read or processed), and the body
may not exceed 1 MiB (413, also when it arrives without a Content-Length). A body that is not
UTF-8 JSON (or is nested too deep to parse), or not shaped like an update in the fields chatcrm
reads (``update_shape``), gets 400: no 5xx for what Telegram would never send. The update is
written to the inbox and committed before anything else, then processed (its effect committed,
what it says sent, or left to the outbox when the platform's overall budget has no room for it
within ``CHATCRM_OUTBOX_SEND_NOW_WAIT``) before the 200. A 200 means it is kept: if processing failed it is retried from
the inbox (bot.inbox_runner), and a repeat of it is answered 200 without doing anything again.
Only when it could not even be recorded (the database is away) the answer is 500, so Telegram
sends it again.
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
from bot.adapters.telegram.update_shape import looks_like_update
from bot.bootstrap import App
from bot.web_guard import read_body

log = logging.getLogger("chatcrm.telegram")

PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


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
        body = await read_body(request)
        if body is None:
            return PlainTextResponse("body too large", status_code=413)
        try:
            update = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):
            # ValueError includes a body that is not UTF-8; RecursionError: JSON nested too deep.
            return PlainTextResponse("not JSON", status_code=400)
        if not looks_like_update(update):
            return PlainTextResponse("not a Telegram update", status_code=400)
        try:
            await self.bot.receive(update)
        except ValueError:
            return PlainTextResponse("not a Telegram update", status_code=400)
        except sa.exc.SQLAlchemyError:
            log.exception("could not record Telegram update %s; Telegram will send it again", update["update_id"])
            return Response(status_code=500)
        return Response(status_code=200)
