"""``TelegramSender``: the outbox's way to Telegram (``bot.delivery.PlatformSender``).

A neutral reply is rendered like any answer (HTML, inline keyboard, pictures with sendPhoto);
pre-formatted template text is sent as it is. Failures come back as the delivery errors the
outbox sender acts on: 429 -> RateLimited(retry_after), 403 (blocked, deactivated) and
400 "chat not found" -> RecipientUnreachable, anything else -> TemporaryFailure.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session, sessionmaker
from telegram import Bot
from telegram.error import TelegramError

from bot.adapters.telegram.outgoing import Outgoing, delivery_error
from bot.adapters.telegram.render import split_html
from bot.adapters.telegram.settings import TelegramSettings
from bot.delivery import OutboundMessage


class TelegramSender:
    platform = "telegram"

    def __init__(self, settings: TelegramSettings, session_factory: sessionmaker[Session], bot: Bot | None = None):
        self.bot = bot or Bot(settings.token, base_url=settings.api_url)
        self.outgoing = Outgoing(self.bot, session_factory)
        self._ready = asyncio.Lock()

    async def _ensure_initialized(self) -> None:
        # initialize() calls getMe once and is a no-op afterwards; the lock keeps two first sends from racing.
        async with self._ready:
            await self.bot.initialize()

    async def send(self, message: OutboundMessage) -> str:
        try:
            await self._ensure_initialized()
            out = self.outgoing
            if message.reply is not None:
                sent = await out.reply(message.conversation, message.reply, thread=message.thread)
            else:
                if message.image is not None:
                    sent = await out.photo(message.conversation, message.image, thread=message.thread)
                if message.formatted_text or message.image is None:
                    markup = await out.keyboard([[b] for b in message.buttons])
                    sent = await out.texts(message.conversation, split_html(message.formatted_text or ""), markup,
                                           thread=message.thread)
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        return str(sent.message_id)

    async def close(self) -> None:
        await self.bot.shutdown()
