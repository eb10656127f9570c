"""Translate in: a Telegram ``Update`` as an ``Inbound`` (who, where, what), and commands and button
presses as neutral ``Request``s for the dispatcher.

Only new messages and callback queries matter; edits, channel posts, service messages and
anything a bot sent are ignored. A message without text (a photo, a file) is described in words
so a customer's message never gets lost, even if its attachment is not relayed.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Message, Update
from telegram.constants import ChatType

from bot.messages import Origin, Request

PLATFORM = "telegram"


@dataclass(frozen=True)
class Inbound:
    update_id: int
    origin: Origin
    # The message text (or caption, or a description of an attachment); a button's payload for presses.
    text: str
    first_name: str
    message_id: int | None = None
    # For a reply: the message replied to.
    reply_to_message_id: int | None = None
    reply_to_bot: bool = False
    reply_to_text: str | None = None
    # A shared contact.
    contact_phone: str | None = None
    contact_user_id: int | None = None
    # A button press.
    callback_id: str | None = None

    @property
    def key(self) -> str:
        """The inbox key: Telegram numbers every update of a bot."""
        return str(self.update_id)

    @property
    def is_callback(self) -> bool:
        return self.callback_id is not None

    @property
    def is_command(self) -> bool:
        return not self.is_callback and self.contact_phone is None and self.text.startswith("/")

    @property
    def command(self) -> str | None:
        """The command word: ``/Ticket@chatcrm_bot new`` -> ``ticket``."""
        if not self.is_command:
            return None
        return self.text.split()[0][1:].split("@", 1)[0].lower()

    @property
    def argument(self) -> str:
        parts = self.text.split(maxsplit=1)
        return parts[1].strip() if len(parts) > 1 else ""

    def request(self, *, text: str | None = None, from_button: bool = False, wants_form: bool = False) -> Request:
        # Telegram can always ask for missing arguments one question at a time.
        return Request(
            origin=self.origin,
            text=text if text is not None else self.text,
            from_button=from_button,
            wants_form=wants_form,
            can_ask=True,
            inbox_key=self.key,
        )


def _describe(message: Message) -> str:
    """Words for what a message holds, with its caption."""
    caption = message.caption or ""
    if message.photo:
        kind = "[photo]"
    elif message.document:
        kind = f"[file: {message.document.file_name or 'unnamed'}]"
    elif message.sticker:
        kind = f"[sticker {message.sticker.emoji or ''}]".replace(" ]", "]")
    elif message.voice:
        kind = "[voice message]"
    elif message.video or message.video_note:
        kind = "[video]"
    elif message.audio:
        kind = "[audio]"
    elif message.location:
        kind = f"[location {message.location.latitude:.5f}, {message.location.longitude:.5f}]"
    else:
        return caption
    return f"{kind} {caption}".strip()


def _origin(message: Message, user) -> Origin:
    thread = message.message_thread_id if message.is_topic_message else None
    return Origin(
        platform=PLATFORM,
        user_external_id=str(user.id),
        conversation=str(message.chat.id),
        thread=str(thread) if thread else None,
        is_private=message.chat.type == ChatType.PRIVATE,
        display_name=user.full_name,
    )


def from_update(update: Update, bot_id: int | None) -> Inbound | None:
    query = update.callback_query
    if query is not None:
        message = query.message
        if not query.data or message is None or query.from_user.is_bot:
            return None
        return Inbound(
            update.update_id,
            _origin(message, query.from_user),
            query.data,
            query.from_user.first_name,
            message_id=message.message_id,
            callback_id=query.id,
        )
    message = update.message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    user = message.from_user
    replied = message.reply_to_message
    common = {
        "message_id": message.message_id,
        "reply_to_message_id": replied.message_id if replied else None,
        "reply_to_bot": bool(replied and replied.from_user and bot_id is not None and replied.from_user.id == bot_id),
        "reply_to_text": (replied.text or replied.caption) if replied else None,
    }
    if message.contact is not None:
        return Inbound(
            update.update_id,
            _origin(message, user),
            "",
            user.first_name,
            contact_phone=message.contact.phone_number,
            contact_user_id=message.contact.user_id,
            **common,
        )
    text = message.text if message.text is not None else _describe(message)
    if not text.strip():
        return None
    return Inbound(update.update_id, _origin(message, user), text, user.first_name, **common)
