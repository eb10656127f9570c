"""``TelegramSender``: the outbox's way to Telegram (``bot.delivery.PlatformSender``).

A neutral reply is rendered like any answer (HTML, inline keyboard, pictures with sendPhoto);
pre-formatted template text is sent as it is. A message with ``replace`` edits that earlier
message with editMessageText instead: one message, so text past 4,096 characters is cut (at a
line, ending in "…") rather than split; no picture. Failures come back as the delivery errors the
outbox sender acts on: 429 -> RateLimited(retry_after), 403 (blocked, deactivated) and
400 "chat not found" -> RecipientUnreachable, a group upgraded to a supergroup (400 with
``migrate_to_chat_id``) -> ChatMoved(new id), 400 "message to edit not found" (and other
messages that cannot be edited) -> PermanentFailure, anything else -> TemporaryFailure. An edit
Telegram answers "message is not modified" has nothing left to do: it counts as sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker
from telegram import Bot
from telegram.error import TelegramError

from bot.adapters.telegram.outgoing import Outgoing, delivery_error
from bot.adapters.telegram.render import TEXT_LIMIT, render_reply, split_html
from bot.adapters.telegram.settings import TelegramSettings
from bot.delivery import OutboundMessage, PermanentFailure
from bot.messages import Button

ELLIPSIS = "…"


def one_message(texts: Sequence[str]) -> str:
    """The first of the messages a text was split into (made within TEXT_LIMIT - 1), with "…" when
    more followed: an edit replaces one message and cannot add more."""
    return texts[0] + ELLIPSIS if len(texts) > 1 else texts[0]


def edit_content(message: OutboundMessage) -> tuple[str, Sequence[Sequence[Button]]]:
    """The HTML text and keyboard rows an edit puts in place of the earlier message (never a picture)."""
    if message.reply is not None:
        rendered = render_reply(message.reply, TEXT_LIMIT - len(ELLIPSIS))
        return one_message(rendered.texts), rendered.rows
    texts = split_html(message.formatted_text or "", TEXT_LIMIT - len(ELLIPSIS))
    return one_message(texts), [[b] for b in message.buttons]


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
            if message.replace:
                return await self._edit(message, message.replace)
            reply_to = int(message.reply_to) if message.reply_to and message.reply_to.isdigit() else None
            if message.reply is not None:
                sent = await out.reply(message.conversation, message.reply, thread=message.thread, reply_to=reply_to)
            else:
                if message.image is not None:
                    sent = await out.photo(message.conversation, message.image, thread=message.thread)
                if message.formatted_text or message.image is None:
                    markup = await out.keyboard([[b] for b in message.buttons])
                    sent = await out.texts(
                        message.conversation,
                        split_html(message.formatted_text or ""),
                        markup,
                        thread=message.thread,
                        reply_to=reply_to,
                    )
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        return str(sent.message_id)

    async def _edit(self, message: OutboundMessage, message_id: str) -> str:
        try:
            number = int(message_id)
        except ValueError:
            raise PermanentFailure(f"cannot edit {message_id!r}: not a Telegram message id") from None
        text, rows = edit_content(message)
        await self.outgoing.edit(message.conversation, number, text, await self.outgoing.keyboard(rows))
        return message_id

    async def close(self) -> None:
        await self.bot.shutdown()
