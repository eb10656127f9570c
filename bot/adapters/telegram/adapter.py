"""The Telegram bot: python-telegram-bot's ``Application`` wired to chatcrm.

Run: ``start()`` initialises the bot (getMe), registers the command list (setMyCommands), then
either registers the webhook (setWebhook with the secret, when TELEGRAM_WEBHOOK_URL is set) or
starts long polling. In polling mode this object is the worker's ``WorkerService``; in webhook
mode ``bot.adapters.telegram.webhook`` feeds it one update per HTTP request.

Every update goes through ``_on_update``:
- commands and button presses become ``Request``s for the dispatcher (staff only, except the
  few a customer needs: /start, /help, /link, /rate, /stop); /start from a customer in a
  private chat also opts them in to campaign messages; a reply asking for a form starts a
  step-by-step conversation;
- a plain message answers the form in progress, or is a staff reply to a relayed customer
  message (in the support chat), or, privately from a customer, goes into their ticket;
- a shared contact links the customer's chat to their record by phone number.
Database work runs in worker threads (SQLAlchemy is synchronous), sending happens after the
transaction committed. Each update's inbox row is written in the transaction of its effect.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from dataclasses import dataclass

from telegram import (
    BotCommand,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.adapters.telegram import callbacks, conversation, support
from bot.adapters.telegram.conversation import Filled, Question
from bot.adapters.telegram.inbound import PLATFORM, Inbound, from_update
from bot.adapters.telegram.outgoing import Outgoing, chat_id, delivery_error
from bot.adapters.telegram.render import escape, render_question
from bot.adapters.telegram.settings import TelegramSettings
from bot.bootstrap import App
from bot.dispatch import AlreadyHandled, FormRejected, error_reply, internal_error_reply, new_reference
from bot.messages import Origin, Reply, Request
from bot.router import Router
from crm_core import inbox
from crm_core.actor import Actor
from crm_core.services import link_codes, sla, tickets

log = logging.getLogger("chatcrm.telegram")

ALLOWED_UPDATES = ["message", "callback_query"]
# What someone who is not (yet) linked to a CRM user may run besides /start, /help and /cancel.
CUSTOMER_COMMANDS = frozenset({"link", "rate", "stop"})
CHOICES_PER_ROW = 3
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")


@dataclass
class _Outcome:
    """Whether handling the current update failed (the webhook answers 500 then, so Telegram retries)."""

    failed: bool = False


_OUTCOME: contextvars.ContextVar[_Outcome | None] = contextvars.ContextVar("telegram_outcome", default=None)


@dataclass(frozen=True)
class _Stale:
    """A press of an answer button under a question that is no longer the open one."""


@dataclass(frozen=True)
class _Chosen:
    step: Question | Filled
    label: str
    shown: str


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
        self.targets = sla.targets_from_env(app.settings.extra)

    @property
    def bot(self):
        return self.application.bot

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
        await self.application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
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
        elif inbound.contact_phone is not None:
            await self._on_contact(inbound)
        elif inbound.is_command:
            await self._on_command(inbound)
        else:
            await self._on_text(inbound)

    # -- database steps (run in a worker thread) ----------------------------------------------------

    def _uow(self, inbound: Inbound):
        return self.app.uow(
            Actor(user_id=None, name=inbound.origin.display_name or inbound.origin.user_external_id, platform=PLATFORM)
        )

    def _first_time(self, inbound: Inbound) -> bool:
        with self._uow(inbound) as uow:
            return inbox.first_time(uow, PLATFORM, inbound.key)

    def _before_command(self, inbound: Inbound) -> bool:
        """Whether the sender is staff; typing a new command also leaves a form in progress (unless the
        command is a re-delivery, whose first delivery may be what started that form)."""
        with self._uow(inbound) as uow:
            if inbound.command != "cancel" and not inbox.seen(uow, PLATFORM, inbound.key):
                conversation.cancel(uow, inbound.origin)
            return support.staff_user(uow, inbound) is not None

    def _customer_started(self, inbound: Inbound) -> bool:
        """A customer's /start: their chat (a placeholder customer on first contact) and their consent
        to campaign messages here. False for a re-delivered update."""
        with self._uow(inbound) as uow:
            if not inbox.first_time(uow, PLATFORM, inbound.key):
                return False
            support.customer_started(uow, inbound)
            return True

    def _cancel(self, inbound: Inbound) -> bool | None:
        with self._uow(inbound) as uow:
            if not inbox.first_time(uow, PLATFORM, inbound.key):
                return None
            return conversation.cancel(uow, inbound.origin)

    def _start_form(self, origin: Origin, form) -> Question | Filled:
        with self.app.uow() as uow:
            return conversation.start(uow, origin, form)

    def _submit(self, origin: Origin, filled: Filled) -> Reply | Question:
        request = Request(origin=origin, text=filled.form.command, form_values=filled.values, can_ask=True)
        try:
            return self.app.dispatcher.handle(request)
        except FormRejected as rejected:
            with self.app.uow() as uow:
                question = conversation.restart_with_errors(uow, origin, filled, rejected.errors)
            return question or error_reply("; ".join(rejected.errors.values()))

    def _decode(self, data: str):
        with self.app.uow() as uow:
            return callbacks.decode(uow, data)

    def _take_choice(self, inbound: Inbound, chosen: callbacks.Answer) -> _Chosen | _Stale | None:
        with self._uow(inbound) as uow:
            if not inbox.first_time(uow, PLATFORM, inbound.key):
                return None
            row = conversation.current(uow, inbound.origin)
            if row is None or row.id != chosen.session_id or row.asked != chosen.asked:
                return _Stale()
            field = conversation.question_of(row).field
            if chosen.choice == callbacks.SKIP:
                shown = "(skipped)"
            elif chosen.choice == callbacks.KEEP:
                shown = field.initial or ""
            else:
                index = int(chosen.choice)
                shown = field.choices[index] if 0 <= index < len(field.choices) else "?"
            return _Chosen(conversation.answer(uow, row, choice=chosen.choice), field.label, shown)

    def _take_text(self, inbound: Inbound):
        """What a plain message is, with its effect written: a form answer, a staff answer, a customer's message."""
        with self._uow(inbound) as uow:
            if not inbox.first_time(uow, PLATFORM, inbound.key):
                return None
            row = conversation.current(uow, inbound.origin)
            if row is not None:
                return conversation.answer(uow, row, text=inbound.text)
            user = support.staff_user(uow, inbound)
            if user is not None:
                uow.act_as(Actor(user_id=user.id, name=user.name, platform=PLATFORM))
                if inbound.origin.conversation == self.settings.support_chat_id:
                    return support.staff_answered(uow, inbound)
                return support.STAFF_HINT if inbound.origin.is_private else None
            if inbound.origin.is_private:
                return support.customer_wrote(uow, inbound, self.targets)
            return None

    def _take_contact(self, inbound: Inbound) -> support.ContactLinked | Reply | None:
        with self._uow(inbound) as uow:
            if not inbox.first_time(uow, PLATFORM, inbound.key):
                return None
            if support.staff_user(uow, inbound) is not None:
                return Reply(text="You are linked as staff; there is nothing to do with your number here.")
            return support.contact_shared(uow, inbound)

    def _record_relay(self, message_id: int, conversation_id: str, relay_id: int) -> None:
        with self.app.uow() as uow:
            tickets.record_relay(uow, message_id, conversation_id, str(relay_id))

    def _record_delivery(self, message_id: int, external_id: int | None, error: str | None) -> None:
        with self.app.uow() as uow:
            tickets.record_delivery(
                uow, message_id, error=error, external_message_id=str(external_id) if external_id else None
            )

    # -- handling ------------------------------------------------------------------------------------

    async def _send(self, inbound: Inbound, reply: Reply, **kwargs) -> None:
        await self.outgoing.reply(inbound.origin.conversation, reply, thread=inbound.origin.thread, **kwargs)

    async def _on_command(self, inbound: Inbound) -> None:
        name = inbound.command
        if name == "cancel":
            cancelled = await asyncio.to_thread(self._cancel, inbound)
            if cancelled is not None:
                await self._send(inbound, Reply(text="Cancelled." if cancelled else "There is nothing to cancel."))
            return
        staff = await asyncio.to_thread(self._before_command, inbound)
        if name == "start":
            # t.me/<bot>?start=<code> deep links carry a link code.
            if inbound.argument and link_codes.looks_like_code(inbound.argument):
                await self._dispatch(inbound, text=f"/link {inbound.argument}")
            elif staff:
                await self._dispatch(inbound, text="/help")
            else:
                if inbound.origin.is_private and await asyncio.to_thread(self._customer_started, inbound):
                    await self._greet(inbound, dedupe=False)
                elif not inbound.origin.is_private:
                    await self._greet(inbound)
            return
        if not staff and name not in CUSTOMER_COMMANDS:
            if await asyncio.to_thread(self._first_time, inbound):
                if name == "help":
                    await self._greet(inbound, dedupe=False)
                else:
                    await self._send(inbound, support.CUSTOMER_HINT)
            return
        await self._dispatch(inbound)

    async def _greet(self, inbound: Inbound, *, dedupe: bool = True) -> None:
        if dedupe and not await asyncio.to_thread(self._first_time, inbound):
            return
        markup = None
        if inbound.origin.is_private:
            markup = ReplyKeyboardMarkup(
                [[KeyboardButton("Share my phone number", request_contact=True)]],
                resize_keyboard=True,
                one_time_keyboard=True,
            )
        await self._send(inbound, support.greeting(inbound.first_name, self.bot.first_name), markup=markup)

    async def _dispatch(
        self, inbound: Inbound, *, text: str | None = None, from_button: bool = False, wants_form: bool = False
    ) -> None:
        request = inbound.request(text=text, from_button=from_button, wants_form=wants_form)
        try:
            reply = await asyncio.to_thread(self.app.dispatcher.handle, request)
        except AlreadyHandled:
            return
        await self._deliver(inbound, reply)

    async def _deliver(self, inbound: Inbound, reply: Reply) -> None:
        if reply.form is not None:
            step = await asyncio.to_thread(self._start_form, inbound.origin, reply.form)
            await self._next_step(inbound, step)
            return
        # In a group, answer the message that asked, so the right person sees it is theirs.
        reply_to = None if inbound.origin.is_private or inbound.is_callback else inbound.message_id
        await self._send(inbound, reply, reply_to=reply_to)

    async def _next_step(self, inbound: Inbound, step: Question | Filled) -> None:
        while isinstance(step, Filled):
            outcome = await asyncio.to_thread(self._submit, inbound.origin, step)
            if isinstance(outcome, Reply):
                await self._deliver(inbound, outcome)
                return
            step = outcome
        await self._ask(inbound, step)

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
            markup = InlineKeyboardMarkup(rows)
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

    async def _on_press(self, inbound: Inbound) -> None:
        decoded = await asyncio.to_thread(self._decode, inbound.text)
        if decoded is None:
            await self.bot.answer_callback_query(inbound.callback_id, "This button no longer works.")
            return
        if isinstance(decoded, callbacks.Press):
            await self.bot.answer_callback_query(inbound.callback_id)
            name = decoded.command.split()[0].lstrip("/").split("@")[0].lower() if decoded.command.split() else ""
            if name not in CUSTOMER_COMMANDS and not await asyncio.to_thread(self._is_staff, inbound):
                return
            await self._dispatch(inbound, text=decoded.command, from_button=True, wants_form=decoded.opens_form)
            return
        chosen = await asyncio.to_thread(self._take_choice, inbound, decoded)
        if chosen is None:
            return
        if isinstance(chosen, _Stale):
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
        await self._next_step(inbound, chosen.step)

    def _is_staff(self, inbound: Inbound) -> bool:
        with self.app.uow() as uow:
            return support.staff_user(uow, inbound) is not None

    async def _on_text(self, inbound: Inbound) -> None:
        outcome = await asyncio.to_thread(self._take_text, inbound)
        if outcome is None:
            return
        if isinstance(outcome, Question | Filled):
            await self._next_step(inbound, outcome)
        elif isinstance(outcome, support.CustomerWrote):
            await self._relay(inbound, outcome)
        elif isinstance(outcome, support.StaffAnswered):
            await self._answer_customer(inbound, outcome)
        else:
            await self._send(inbound, outcome)

    async def _relay(self, inbound: Inbound, wrote: support.CustomerWrote) -> None:
        if wrote.opened:
            await self._send(inbound, support.received_reply(wrote))
        target = self.settings.support_chat_id
        if target is None:
            log.warning(
                "ticket #%s got a message but TELEGRAM_SUPPORT_CHAT_ID is not set: nobody was told", wrote.ticket_id
            )
            return
        relayed = await self.outgoing.reply(target, support.relay_reply(wrote))
        await asyncio.to_thread(self._record_relay, wrote.message_id, target, relayed.message_id)

    async def _answer_customer(self, inbound: Inbound, answered: support.StaffAnswered) -> None:
        error: str | None = None
        sent_id: int | None = None
        if answered.customer_conversation is None:
            error = "the customer has no Telegram chat with us"
        else:
            try:
                sent = await self.outgoing.reply(answered.customer_conversation, Reply(text=answered.text))
                sent_id = sent.message_id
            except TelegramError as exc:
                error = str(delivery_error(exc))
        await asyncio.to_thread(self._record_delivery, answered.message_id, sent_id, error)
        await self._send(inbound, support.delivered_reply(answered, error), reply_to=inbound.message_id)

    async def _on_contact(self, inbound: Inbound) -> None:
        if not inbound.origin.is_private:
            return
        if str(inbound.contact_user_id) != inbound.origin.user_external_id:
            if await asyncio.to_thread(self._first_time, inbound):
                await self._send(inbound, support.OWN_CONTACT_ONLY)
            return
        outcome = await asyncio.to_thread(self._take_contact, inbound)
        if outcome is None:
            return
        reply = support.linked_reply(outcome) if isinstance(outcome, support.ContactLinked) else outcome
        await self._send(inbound, reply, markup=ReplyKeyboardRemove())
