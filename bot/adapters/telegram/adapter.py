"""The Telegram bot: python-telegram-bot's ``Application`` wired to chatcrm.

Run: ``start()`` initialises the bot (getMe), registers the command list (setMyCommands), then
either registers the webhook (setWebhook with the secret, when TELEGRAM_WEBHOOK_URL is set) or
starts long polling. In polling mode this object is the worker's ``WorkerService``; in webhook
mode ``bot.adapters.telegram.webhook`` feeds it one update per HTTP request.

Every update goes through ``_on_update``, which only translates and sends; what an update means
is decided by the platform-neutral core:
- commands and button presses become command ``Request``s for the dispatcher, which knows who is
  staff and who is a customer (role "customer": anyone not linked as staff, since anyone can write
  to a bot); a reply asking for a form is asked one question at a time (``bot.conversation``),
  rendered here as inline keyboards for choices and ForceReply prompts in groups;
- a plain message or a shared contact becomes a message / contact ``Request``; the dispatcher's
  answer is the messages to send (a customer's message: thanks and a relay to the support chat;
  a staff reply there: the answer to the customer), which are sent here, and how each send went
  is reported back (``Dispatcher.report``) so the CRM records it. A recipient found unreachable
  (403, "chat not found") is blocked and opted out, and a group that moved to a supergroup id is
  followed there (crm_core.services.reachability), as the outbox sender does.
The support desk (``bot.desk``) tells the core which chat is the support chat.
Database work runs in worker threads (SQLAlchemy is synchronous), sending happens after the
transaction committed. Each update's inbox row is written in the transaction of its effect.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from dataclasses import dataclass, replace

from telegram import BotCommand, ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.adapters.telegram import callbacks
from bot.adapters.telegram.inbound import PLATFORM, Inbound, from_update
from bot.adapters.telegram.outgoing import Outgoing, chat_id, delivery_error
from bot.adapters.telegram.render import escape, render_question
from bot.adapters.telegram.settings import TelegramSettings
from bot.bootstrap import App
from bot.conversation import Question, Stale
from bot.delivery import ChatMoved, RecipientUnreachable
from bot.desk import SupportDesk
from bot.dispatch import AlreadyHandled, internal_error_reply, new_reference
from bot.messages import Destination, Reply
from bot.messages import Outgoing as Send
from bot.router import Router

log = logging.getLogger("chatcrm.telegram")

ALLOWED_UPDATES = ["message", "callback_query"]
CHOICES_PER_ROW = 3
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")


@dataclass
class _Outcome:
    """Whether handling the current update failed (the webhook answers 500 then, so Telegram retries)."""

    failed: bool = False


_OUTCOME: contextvars.ContextVar[_Outcome | None] = contextvars.ContextVar("telegram_outcome", default=None)


def bot_commands(router: Router) -> list[BotCommand]:
    """The command menu: every top-level command with the summary of its bare form (or its sub-commands)."""
    commands = []
    for name in router.top_level_names():
        if not _COMMAND_NAME.match(name):
            continue
        bare = router.get(name)
        if bare is not None:
            description = bare.summary
        else:
            subs = [c.path[1] for c in router.commands if c.path[0] == name and len(c.path) > 1 and not c.hidden]
            description = f"{name.capitalize()}: {', '.join(subs)}"
        commands.append(BotCommand(name, description[:256]))
    commands.append(BotCommand("cancel", "Stop the questions of a command in progress"))
    return commands


class TelegramBot:
    name = "telegram"

    def __init__(self, app: App, settings: TelegramSettings, *, webhook: bool):
        self.app = app
        self.settings = settings
        self.webhook = webhook
        builder = Application.builder().token(settings.token).base_url(settings.api_url)
        if webhook:
            # Updates arrive over our own HTTP endpoint, not through PTB's updater.
            builder = builder.updater(None)
        self.application = builder.build()
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)
        self.outgoing = Outgoing(self.application.bot, app.session_factory)

    @property
    def bot(self):
        return self.application.bot

    @property
    def desk(self) -> SupportDesk:
        """Customers write to this bot; their messages are relayed to TELEGRAM_SUPPORT_CHAT_ID."""
        room = self.settings.support_chat_id
        return SupportDesk(
            staff_room=Destination(PLATFORM, room) if room is not None else None,
            bot_name=self.bot.first_name or "chatcrm",
        )

    # -- run --------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.application.initialize()
        try:
            await self.bot.set_my_commands(bot_commands(self.app.router))
        except TelegramError as exc:
            # The menu is a convenience; a bot that cannot set it still works.
            log.warning("setMyCommands failed: %s", exc)
        if self.webhook:
            if self.settings.webhook_url:
                await self.bot.set_webhook(
                    self.settings.webhook_url,
                    secret_token=self.settings.webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                )
                log.info("Telegram webhook registered at %s", self.settings.webhook_url)
            return
        updater = self.application.updater
        assert updater is not None, "polling mode builds its application with an updater"
        await updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        await self.application.start()
        log.info("Telegram long polling started as @%s", self.bot.username)

    async def stop(self) -> None:
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def process(self, data: dict) -> bool:
        """Handle one update from the webhook; False when it failed and Telegram should send it again.
        Raises ValueError for a body that is no Telegram update."""
        try:
            update = Update.de_json(data, self.bot)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a Telegram update: {exc}") from None
        outcome = _Outcome()
        token = _OUTCOME.set(outcome)
        try:
            await self.application.process_update(update)
        finally:
            _OUTCOME.reset(token)
        return not outcome.failed

    # -- the one handler --------------------------------------------------------------------------

    async def _on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        inbound = from_update(update, self.bot.id)
        if inbound is None:
            return
        try:
            await self._route(inbound)
        except TelegramError as exc:
            # What had to be saved is saved; a message did not go out (blocked, rate limited, ...).
            log.warning("sending for update %s failed: %s", inbound.update_id, exc)
            # The answers of _route go to the chat the update came from.
            await self._unreachable(Destination(PLATFORM, inbound.origin.conversation), delivery_error(exc))
        except Exception:
            ref = new_reference()
            log.exception(
                "unhandled error ref=%s telegram update=%s user=%s",
                ref,
                inbound.update_id,
                inbound.origin.user_external_id,
            )
            if (outcome := _OUTCOME.get()) is not None:
                outcome.failed = True
            try:
                await self.outgoing.reply(
                    inbound.origin.conversation, internal_error_reply(ref), thread=inbound.origin.thread
                )
            except TelegramError:
                pass

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("python-telegram-bot error for %r", update, exc_info=context.error)

    async def _route(self, inbound: Inbound) -> None:
        if inbound.is_callback:
            await self._on_press(inbound)
        elif inbound.is_command:
            await self._dispatch(inbound)
        else:
            await self._on_event(inbound)

    # -- commands and forms ---------------------------------------------------------------------------

    async def _send(self, inbound: Inbound, reply: Reply, **kwargs) -> None:
        await self.outgoing.reply(inbound.origin.conversation, reply, thread=inbound.origin.thread, **kwargs)

    async def _dispatch(
        self, inbound: Inbound, *, text: str | None = None, from_button: bool = False, wants_form: bool = False
    ) -> None:
        request = inbound.request(text=text, from_button=from_button, wants_form=wants_form)
        try:
            reply = await asyncio.to_thread(self.app.dispatcher.handle, request, desk=self.desk)
        except AlreadyHandled:
            return
        await self._deliver(inbound, reply)

    async def _deliver(self, inbound: Inbound, reply: Reply) -> None:
        if reply.form is not None:
            step = await asyncio.to_thread(self.app.dispatcher.ask, inbound.origin, reply.form, desk=self.desk)
            await self._show(inbound, step)
            return
        if reply.is_empty:
            return
        # In a group, answer the message that asked, so the right person sees it is theirs.
        reply_to = None if inbound.origin.is_private or inbound.is_callback else inbound.message_id
        await self._send(inbound, reply, reply_to=reply_to)
        if reply.file is not None:
            # A private file goes to the person's own chat with the bot (its id is their user id).
            private = reply.private and not inbound.origin.is_private
            where = inbound.origin.user_external_id if private else inbound.origin.conversation
            await self.outgoing.document(where, reply.file, thread=None if private else inbound.origin.thread)

    async def _show(self, inbound: Inbound, step: Question | Reply) -> None:
        if isinstance(step, Question):
            await self._ask(inbound, step)
        else:
            await self._deliver(inbound, step)

    async def _ask(self, inbound: Inbound, question: Question) -> None:
        in_group = not inbound.origin.is_private
        field = question.field
        buttons = [
            InlineKeyboardButton(
                choice[:64], callback_data=callbacks.answer_data(question.session_id, question.asked, i)
            )
            for i, choice in enumerate(field.choices)
        ]
        rows = [buttons[i : i + CHOICES_PER_ROW] for i in range(0, len(buttons), CHOICES_PER_ROW)]
        extra = []
        if field.initial:
            extra.append(
                InlineKeyboardButton(
                    "Keep as it is",
                    callback_data=callbacks.answer_data(question.session_id, question.asked, callbacks.KEEP),
                )
            )
        elif not field.required:
            extra.append(
                InlineKeyboardButton(
                    "Skip", callback_data=callbacks.answer_data(question.session_id, question.asked, callbacks.SKIP)
                )
            )
        if extra:
            rows.append(extra)
        if rows:
            markup: InlineKeyboardMarkup | ForceReply | None = InlineKeyboardMarkup(rows)
        elif in_group:
            # In groups the bot only sees replies to its own messages: make answering one easy.
            markup = ForceReply(selective=True, input_field_placeholder=field.label[:64])
        else:
            markup = None
        html = render_question(
            question.form.title, question.number, question.total, field, error=question.error, in_group=in_group
        )
        reply_to = inbound.message_id if in_group and not inbound.is_callback else None
        await self.outgoing.texts(
            inbound.origin.conversation, [html], markup, thread=inbound.origin.thread, reply_to=reply_to
        )

    def _decode(self, data: str):
        with self.app.uow() as uow:
            return callbacks.decode(uow, data)

    async def _on_press(self, inbound: Inbound) -> None:
        decoded = await asyncio.to_thread(self._decode, inbound.text)
        if decoded is None:
            await self.bot.answer_callback_query(inbound.callback_id, "This button no longer works.")
            return
        if isinstance(decoded, callbacks.Press):
            await self.bot.answer_callback_query(inbound.callback_id)
            await self._dispatch(inbound, text=decoded.command, from_button=True, wants_form=decoded.opens_form)
            return
        try:
            chosen = await asyncio.to_thread(
                self.app.dispatcher.choose, inbound.request(), decoded.session_id, decoded.asked, decoded.choice
            )
        except AlreadyHandled:
            return
        if isinstance(chosen, Stale):
            await self.bot.answer_callback_query(inbound.callback_id, "That question is no longer open.")
            return
        await self.bot.answer_callback_query(inbound.callback_id)
        # The question stays in the chat with its answer instead of its buttons.
        await self.bot.edit_message_text(
            f"<b>{escape(chosen.label)}</b>: {escape(chosen.shown)}",
            chat_id=chat_id(inbound.origin.conversation),
            message_id=inbound.message_id,
            parse_mode=ParseMode.HTML,
        )
        step = await asyncio.to_thread(self.app.dispatcher.advance, inbound.origin, chosen.step, desk=self.desk)
        await self._show(inbound, step)

    # -- plain messages and shared contacts ---------------------------------------------------------------

    async def _on_event(self, inbound: Inbound) -> None:
        try:
            outcome = await asyncio.to_thread(self.app.dispatcher.handle_event, inbound.request(), desk=self.desk)
        except AlreadyHandled:
            return
        if outcome.step is not None:
            step = await asyncio.to_thread(self.app.dispatcher.advance, inbound.origin, outcome.step, desk=self.desk)
            await self._show(inbound, step)
        await self._perform(list(outcome.sends))

    async def _perform(self, sends: list[Send]) -> None:
        """Send each message in order and report how it went; what the report asks to send follows."""
        while sends:
            item = sends.pop(0)
            # ``item`` as sent: to the new id if its chat moved meanwhile.
            item, message_id, error = await self._send_one(item)
            if item.after is not None:
                sends.extend(
                    await asyncio.to_thread(self.app.dispatcher.report, item, message_id=message_id, error=error)
                )

    async def _send_one(self, item: Send, *, moved: bool = False) -> tuple[Send, str | None, str | None]:
        """(the message as sent, its id, None) or (the message, None, why it was not sent)."""
        to = item.to
        if to.platform != PLATFORM:
            log.warning("message %s is for %s, which this Telegram bot cannot send to", item.key, to.platform)
            return item, None, f"it is on {to.platform}, which this bot cannot send to"
        try:
            sent = await self.outgoing.reply(
                to.conversation, item.reply, thread=to.thread, reply_to=int(to.reply_to) if to.reply_to else None
            )
        except TelegramError as exc:
            log.warning("message %s to %s not sent: %s", item.key, to.conversation, exc)
            error = delivery_error(exc)
            if isinstance(error, ChatMoved) and not moved:
                await self._unreachable(to, error)
                return await self._send_one(replace(item, to=replace(to, conversation=error.conversation)), moved=True)
            await self._unreachable(to, error)
            return item, None, str(error)
        return item, str(sent.message_id), None

    async def _unreachable(self, to: Destination, error: Exception) -> None:
        """Record what a failed send says about its chat: unreachable (blocked and opted out) or
        moved (the new id replaces the old everywhere, the support chat setting included)."""
        if isinstance(error, ChatMoved):
            await asyncio.to_thread(self.app.dispatcher.chat_moved, to, error.conversation)
            if self.settings.support_chat_id == to.conversation:
                # Until TELEGRAM_SUPPORT_CHAT_ID is updated (the log says so), this process follows the move.
                self.settings = replace(self.settings, support_chat_id=error.conversation)
        elif isinstance(error, RecipientUnreachable):
            await asyncio.to_thread(self.app.dispatcher.unreachable, to, str(error))
