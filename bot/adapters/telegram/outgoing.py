"""Sending to Telegram: rendered replies (long ones in several messages, the keyboard under the
last), pictures, edits of sent messages, and the translation of Bot API failures into chatcrm's
delivery errors."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    LinkPreviewOptions,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from bot.adapters.telegram import callbacks
from bot.adapters.telegram.render import caption, render_reply
from bot.delivery import (
    ChatMoved,
    DeliveryError,
    PermanentFailure,
    RateLimited,
    RecipientUnreachable,
    TemporaryFailure,
)
from bot.messages import Button, File, Image, Reply
from crm_core.uow import UnitOfWork

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# editMessageText refusals that no retry can fix: this message fails, the chat stays reachable.
_UNEDITABLE = (
    "message to edit not found",
    "message can't be edited",
    "there is no text in the message to edit",
    "message_id_invalid",
)


def chat_id(conversation: str) -> int | str:
    """Telegram chat ids are numbers; public channels may be named "@channel"."""
    return int(conversation) if conversation.lstrip("-").isdigit() else conversation


def delivery_error(exc: TelegramError) -> DeliveryError:
    if isinstance(exc, RetryAfter):
        with warnings.catch_warnings():
            # python-telegram-bot warns that retry_after will become a timedelta; either is fine here.
            warnings.simplefilter("ignore")
            wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return RateLimited(seconds, exc.message)
    if isinstance(exc, ChatMigrated):
        # A group upgraded to a supergroup (400 with migrate_to_chat_id): same chat, new id.
        return ChatMoved(str(exc.new_chat_id), exc.message)
    if isinstance(exc, Forbidden):
        # Blocked by the user, user deactivated, bot kicked from the group: it will not get better.
        return RecipientUnreachable(exc.message)
    if isinstance(exc, BadRequest) and "chat not found" in exc.message.lower():
        return RecipientUnreachable(exc.message)
    if isinstance(exc, BadRequest) and any(reason in exc.message.lower() for reason in _UNEDITABLE):
        return PermanentFailure(exc.message)
    return TemporaryFailure(f"{type(exc).__name__}: {exc.message}")


class Outgoing:
    """Sends through a python-telegram-bot ``Bot``, storing long button commands before they are shown."""

    def __init__(self, bot: Bot, session_factory: sessionmaker[Session]):
        self.bot = bot
        self.session_factory = session_factory

    def _store(self, rows: list) -> None:
        with UnitOfWork(self.session_factory) as uow:
            callbacks.store(uow, rows)

    async def keyboard(self, rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
        if not rows:
            return None
        stored = []
        markup: list[list[InlineKeyboardButton]] = []
        for row in rows:
            buttons = []
            for button in row:
                data, to_store = callbacks.encode(button)
                if to_store is not None:
                    stored.append(to_store)
                buttons.append(InlineKeyboardButton(button.label[:64], callback_data=data))
            markup.append(buttons)
        if stored:
            await asyncio.to_thread(self._store, stored)
        return InlineKeyboardMarkup(markup)

    async def texts(
        self,
        conversation: str,
        texts: Sequence[str],
        markup=None,
        *,
        thread: str | None = None,
        reply_to: int | None = None,
    ) -> Message:
        """Send HTML messages in order; the markup goes under the last, the first replies to ``reply_to``."""
        sent: Message | None = None
        for index, text in enumerate(texts):
            last = index == len(texts) - 1
            sent = await self.bot.send_message(
                chat_id(conversation),
                text,
                parse_mode=ParseMode.HTML,
                link_preview_options=_NO_PREVIEW,
                reply_markup=markup if last else None,
                message_thread_id=int(thread) if thread else None,
                reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True)
                if reply_to and index == 0
                else None,
            )
        assert sent is not None
        return sent

    async def edit(self, conversation: str, message_id: int, text: str, markup=None) -> bool:
        """Replace the text (HTML) and inline keyboard of a message sent earlier; no ``markup`` removes
        the keyboard. False when Telegram says it already reads so ("message is not modified")."""
        try:
            await self.bot.edit_message_text(
                text,
                chat_id=chat_id(conversation),
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                link_preview_options=_NO_PREVIEW,
                reply_markup=markup,
            )
        except BadRequest as exc:
            if "message is not modified" in exc.message.lower():
                return False
            raise
        return True

    async def photo(self, conversation: str, image: Image, *, thread: str | None = None) -> Message:
        with open(image.path, "rb") as picture:
            return await self.bot.send_photo(
                chat_id(conversation),
                picture,
                caption=caption(image.title),
                parse_mode=ParseMode.HTML,
                message_thread_id=int(thread) if thread else None,
            )

    async def document(self, conversation: str, file: File, *, thread: str | None = None) -> Message:
        """sendDocument: a file (an export) with its name and an optional caption."""
        return await self.bot.send_document(
            chat_id(conversation),
            InputFile(file.data(), filename=file.name),
            caption=caption(file.title) if file.title else None,
            parse_mode=ParseMode.HTML,
            message_thread_id=int(thread) if thread else None,
        )

    async def reply(
        self, conversation: str, reply: Reply, *, thread: str | None = None, reply_to: int | None = None, markup=None
    ) -> Message:
        """Render and send a neutral reply; ``markup`` replaces its buttons. A reply offering to share the
        recipient's phone number gets Telegram's contact-request keyboard (one taking that offer back
        removes it)."""
        rendered = render_reply(reply)
        if markup is None and reply.share_phone_button:
            markup = ReplyKeyboardMarkup(
                [[KeyboardButton(reply.share_phone_button[:64], request_contact=True)]],
                resize_keyboard=True,
                one_time_keyboard=True,
            )
        elif markup is None and reply.hide_share_phone:
            markup = ReplyKeyboardRemove()
        if markup is None:
            markup = await self.keyboard(rendered.rows)
        if reply.image is not None:
            await self.photo(conversation, reply.image, thread=thread)
        return await self.texts(conversation, rendered.texts, markup, thread=thread, reply_to=reply_to)
