"""Translate in: a Telegram ``Update`` as an ``Inbound`` (who, where, what), and that as a neutral
``Request`` for the dispatcher: a command (typed or a button press), a plain message (with the
message it replies to and what it carries), or a shared contact.

Only new messages and callback queries matter; edits, channel posts, service messages and
anything a bot sent are ignored. A message with a photo, a file, a voice message... comes with
what it carried (``Attachment``: a kind, not words, so each reader sees it in their own language)
and its caption as the text, so a customer's message never gets lost, even if its attachment is
not relayed. Control characters
(a NUL byte, which PostgreSQL cannot store) are dropped from names and texts here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Document, MaybeInaccessibleMessage, Message, Update
from telegram.constants import ChatType

from bot.messages import Attachment, Contact, InboundFile, MessageRef, Origin, Request, RequestKind
from crm_core.text import without_control

PLATFORM = "telegram"


@dataclass(frozen=True)
class Inbound:
    update_id: int
    origin: Origin
    # The message text (or an attachment's caption, maybe empty); a button's payload for presses.
    text: str
    message_id: int | None = None
    # For a reply: the message replied to.
    reply_to: MessageRef | None = None
    attachments: tuple[Attachment, ...] = ()
    # A shared contact.
    contact: Contact | None = None
    # A button press.
    callback_id: str | None = None
    # A document sent with a command in its caption ("/import customers"): fetched before dispatch.
    document: Document | None = None

    @property
    def key(self) -> str:
        """The inbox key: Telegram numbers every update of a bot."""
        return str(self.update_id)

    @property
    def is_callback(self) -> bool:
        return self.callback_id is not None

    @property
    def is_command(self) -> bool:
        # A photo captioned "/help" is a message with a photo, not a command.
        return not self.is_callback and self.contact is None and not self.attachments and self.text.startswith("/")

    def request(
        self,
        *,
        text: str | None = None,
        from_button: bool = False,
        wants_form: bool = False,
        files: tuple[InboundFile, ...] = (),
    ) -> Request:
        """The neutral request: a command for a typed command or a button press, else a message or contact."""
        if self.contact is not None:
            kind = RequestKind.CONTACT
        elif self.is_command or self.is_callback:
            kind = RequestKind.COMMAND
        else:
            kind = RequestKind.MESSAGE
        # Telegram can always ask for missing arguments one question at a time.
        return Request(
            origin=self.origin,
            text=text if text is not None else self.text,
            from_button=from_button,
            wants_form=wants_form,
            can_ask=True,
            inbox_key=self.key,
            kind=kind,
            message_id=str(self.message_id) if self.message_id is not None else None,
            reply_to=self.reply_to,
            attachments=self.attachments,
            contact=self.contact,
            files=files,
        )


def _attachment(message: Message) -> Attachment | None:
    if message.photo:
        return Attachment("photo")
    if message.document:
        return Attachment("file", without_control(message.document.file_name or "") or None)
    if message.sticker:
        return Attachment("sticker", message.sticker.emoji)
    if message.voice:
        return Attachment("voice")
    if message.video or message.video_note:
        return Attachment("video")
    if message.audio:
        return Attachment("audio")
    if message.location:
        return Attachment("location", f"{message.location.latitude:.5f}, {message.location.longitude:.5f}")
    return None


def _origin(message: MaybeInaccessibleMessage, user) -> Origin:
    # A button under a message Telegram no longer shows comes with an InaccessibleMessage: no thread.
    thread = message.message_thread_id if isinstance(message, Message) and message.is_topic_message else None
    return Origin(
        platform=PLATFORM,
        user_external_id=str(user.id),
        conversation=str(message.chat.id),
        thread=str(thread) if thread else None,
        is_private=message.chat.type == ChatType.PRIVATE,
        display_name=without_control(user.full_name),
        first_name=without_control(user.first_name),
        # The language of the person's Telegram app ("zh-hans", "en"): their answers' language until /lang.
        language_hint=user.language_code,
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
            message_id=message.message_id,
            callback_id=query.id,
        )
    message = update.message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    user = message.from_user
    replied = message.reply_to_message
    reply_to = None
    if replied is not None:
        reply_to = MessageRef(
            str(replied.message_id),
            from_bot=bool(replied.from_user and bot_id is not None and replied.from_user.id == bot_id),
            text=replied.text or replied.caption,
        )
    if message.contact is not None:
        contact = Contact(
            message.contact.phone_number,
            str(message.contact.user_id) if message.contact.user_id is not None else None,
        )
        return Inbound(
            update.update_id,
            _origin(message, user),
            "",
            message_id=message.message_id,
            reply_to=reply_to,
            contact=contact,
        )
    attachment = _attachment(message)
    text = without_control(message.text if message.text is not None else (message.caption or ""))
    # A document captioned with a command (/import customers) is that command, the file its input;
    # any other attachment is a message with an attachment (a photo captioned "/help" included).
    command_file = message.document if message.document is not None and text.startswith("/") else None
    if command_file is not None:
        attachment = None
    if not text.strip() and attachment is None:
        return None
    return Inbound(
        update.update_id,
        _origin(message, user),
        text,
        message_id=message.message_id,
        reply_to=reply_to,
        attachments=(attachment,) if attachment is not None else (),
        document=command_file,
    )
