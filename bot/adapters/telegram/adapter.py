"""The Telegram bot: python-telegram-bot's ``Application`` wired to chatcrm.

Run: ``start()`` initialises the bot (getMe), registers the command list (setMyCommands), then
either registers the webhook (setWebhook with the secret, when TELEGRAM_WEBHOOK_URL is set) or
starts long polling. In polling mode this object is the worker's ``WorkerService``; in webhook
mode ``bot.adapters.telegram.webhook`` feeds it one update per HTTP request.

No update is lost: each one is first written to the inbox and committed (``InboxRunner.receive``):
by the webhook before Telegram gets its 200, by polling before the next getUpdates confirms its
offset (our own small loop over getUpdates, not python-telegram-bot's Updater, which confirms an
offset on its next call whatever became of the update). Then it is processed from the inbox
(``process``): its effect marks it done, and a process that dies before leaves it to be run again
(bot.inbox_runner). What it makes the bot say goes into the outbox in the same transaction
(bot.interactive) and is sent right after the commit by ``send_now``; what could not be sent
then (a crash, a 429, a 5xx, no room in the platform's overall budget within
``CHATCRM_OUTBOX_SEND_NOW_WAIT``) is left to the worker's outbox sender. Questions of a form (inline
keyboards, ForceReply), callback answers and the edit of an answered question are sent directly:
they are tied to a form session and a callback query that only live now.

Every update goes through ``_route``, which only translates and sends; what an update means
is decided by the platform-neutral core:
- commands and button presses become command ``Request``s for the dispatcher, which knows who is
  staff and who is a customer (role "customer": anyone not linked as staff, since anyone can write
  to a bot); a reply asking for a form is asked one question at a time (``bot.conversation``),
  rendered here as inline keyboards for choices and ForceReply prompts in groups;
- a plain message or a shared contact becomes a message / contact ``Request``; the dispatcher's
  answer is the messages to send (a customer's message: thanks and a relay to the support chat;
  a staff reply there: the answer to the customer), which are queued in the outbox, and how each
  send went is recorded when the sender marks it sent or failed (the relay's message id). A
  recipient found unreachable (403, "chat not found") is blocked and opted out, and a group that
  moved to a supergroup id is followed there (crm_core.services.reachability): by the outbox
  sender, and here for what is sent directly.
The support desk (``bot.desk``) tells the core which chat is the support chat.
Database work runs in worker threads (SQLAlchemy is synchronous), sending happens after the
transaction committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import ssl
from dataclasses import replace

import httpx
import sqlalchemy as sa
from telegram import BotCommand, ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import RetryAfter, TelegramError
from telegram.ext import Application
from telegram.request import HTTPXRequest

from bot import interactive
from bot.adapters.telegram import callbacks
from bot.adapters.telegram.inbound import PLATFORM, Inbound, from_update
from bot.adapters.telegram.outgoing import Outgoing, chat_id, delivery_error
from bot.adapters.telegram.plugin import LIMITS
from bot.adapters.telegram.render import escape, render_question
from bot.adapters.telegram.sender import TelegramSender
from bot.adapters.telegram.settings import TelegramSettings
from bot.bootstrap import App
from bot.conversation import Question, Stale
from bot.delivery import ChatMoved, RecipientUnreachable
from bot.desk import SupportDesk
from bot.dispatch import AlreadyHandled, internal_error_reply, reply_to_sender
from bot.inbox_runner import InboxRunner, InboxSettings
from bot.interactive import OutboxQueue
from bot.messages import UPLOAD_LIMIT, Destination, InboundFile, Reply
from bot.platforms import interactive_outbox
from bot.router import Router
from crm_core import i18n, inbox
from crm_core.i18n import N_, _
from crm_core.inbox import Claim
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.telegram")

ALLOWED_UPDATES = ["message", "callback_query"]
# Seconds a getUpdates call waits for updates (long polling).
POLL_TIMEOUT = 10
CHOICES_PER_ROW = 3
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")


# The menu entry of /cancel (a hidden command, reached by typing it while a form asks questions).
CANCEL_SUMMARY = N_("Stop the questions of a command in progress")


def bot_commands(router: Router) -> list[BotCommand]:
    """The command menu in the current language: every top-level command with the summary of its bare
    form (or its sub-commands)."""
    commands = []
    for name in router.top_level_names():
        if not _COMMAND_NAME.match(name):
            continue
        bare = router.get(name)
        if bare is not None:
            description = bare.description
        else:
            subs = [c.path[1] for c in router.commands if c.path[0] == name and len(c.path) > 1 and not c.hidden]
            description = _("{command}: {subcommands}", command=name.capitalize(), subcommands=", ".join(subs))
        commands.append(BotCommand(name, description[:256]))
    commands.append(BotCommand("cancel", _(CANCEL_SUMMARY)))
    return commands


def command_menus(router: Router) -> list[tuple[str | None, list[BotCommand]]]:
    """(language_code, menu) for setMyCommands: the default menu (for every app language) in
    CHATCRM_LANGUAGE, then one per language chatcrm speaks, for apps set to that language."""
    with i18n.use_language(i18n.default_language()):
        menus: list[tuple[str | None, list[BotCommand]]] = [(None, bot_commands(router))]
    for language in i18n.LANGUAGES:
        with i18n.use_language(language):
            menus.append((language, bot_commands(router)))
    return menus


def _hinted(inbound: Inbound, text: str) -> str:
    """``text`` (marked with N_) in the language of the person's app: a press answered before, or
    without, the dispatcher knows who they are."""
    with i18n.use_language(i18n.resolve_language(None, inbound.origin.language_hint)):
        return _(text)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The verifying TLS context httpx would make (certifi's CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR),
    made once per process: loading the bundle takes about 20 ms, and each bot built two of them
    (a test process builds hundreds of bots). One context serves any number of connections."""
    return httpx.create_ssl_context()


class TelegramBot:
    name = "telegram"
    platform = PLATFORM

    def __init__(self, app: App, settings: TelegramSettings, *, webhook: bool):
        self.app = app
        self.settings = settings
        self.webhook = webhook
        # Updates arrive over our own HTTP endpoint or our own polling loop, never PTB's updater.
        # PTB's own request defaults (256 connections for calls, 1 for getUpdates), sharing one TLS context.
        tls = {"verify": _tls_context()}
        builder = (
            Application.builder()
            .token(settings.token)
            .base_url(settings.api_url)
            .base_file_url(settings.file_url)
            .request(HTTPXRequest(connection_pool_size=256, httpx_kwargs=tls))
            .get_updates_request(HTTPXRequest(connection_pool_size=1, httpx_kwargs=tls))
            .updater(None)
        )
        self.application = builder.build()
        self.outgoing = Outgoing(self.application.bot, app.session_factory)
        env = app.settings.extra
        self.runner = InboxRunner(app.session_factory, InboxSettings.from_env(env), {PLATFORM: self})
        # Sends what an update queued right after its commit (the interactive lane of the outbox): to
        # Telegram with this bot, and to the other configured platforms (a post in a ticket's thread).
        self.interactive = interactive_outbox(
            app, PLATFORM, TelegramSender(settings, app.session_factory, bot=self.bot), LIMITS, on_moved=self._moved
        )
        self._initialized = asyncio.Lock()
        self._polling: asyncio.Task | None = None
        self._recovering: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        # Webhook updates parsed on arrival, by inbox key, while they are processed right after: the
        # update is not parsed a second time from its kept copy (about 1 % of a web process's CPU
        # under load; PTB's objects are immutable, so sharing one is safe).
        self._parsed: dict[str, Update] = {}

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

    async def initialize(self) -> None:
        """getMe once (the bot's id and name are needed to read updates)."""
        async with self._initialized:
            await self.application.initialize()

    async def start(self) -> None:
        await self.initialize()
        for language, menu in command_menus(self.app.router):
            try:
                await self.bot.set_my_commands(menu, language_code=language)
            except TelegramError as exc:
                # The menu is a convenience; a bot that cannot set it still works.
                log.warning("setMyCommands (language %s) failed: %s", language or "default", exc)
        self._stopping = asyncio.Event()
        # Updates a process left unfinished (their lease expired) are taken up again now.
        self._recovering = asyncio.create_task(self._recover_once(), name="telegram-recovery")
        if self.webhook:
            if self.settings.webhook_url:
                await self.bot.set_webhook(
                    self.settings.webhook_url,
                    secret_token=self.settings.webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                )
                log.info("Telegram webhook registered at %s", self.settings.webhook_url)
            return
        await self.bot.delete_webhook()
        self._polling = asyncio.create_task(self._poll(), name="telegram-polling")
        log.info("Telegram long polling started as @%s", self.bot.username)

    async def stop(self) -> None:
        self._stopping.set()
        for task in (self._polling, self._recovering):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._polling = self._recovering = None
        await self.runner.close()
        await self.application.shutdown()
        for name, sender in self.interactive.senders.items():
            closing = getattr(sender, "close", None)
            if name != PLATFORM and closing is not None:
                await closing()

    async def close(self) -> None:
        """InboxProcessor: the worker's inbox recovery stops (this bot only processed kept updates)."""
        await self.stop()

    async def _recover_once(self) -> None:
        try:
            await self.runner.recover()
        except Exception:  # noqa: BLE001 - the worker's loop tries again
            log.exception("recovering Telegram updates at start-up failed")

    # -- long polling -------------------------------------------------------------------------------

    async def _poll(self) -> None:
        """getUpdates in a loop; each update is in the inbox (committed) before the next call
        confirms it with a higher offset."""
        offset: int | None = None
        pause = 0.0
        while not self._stopping.is_set():
            if pause:
                await asyncio.sleep(pause)
            try:
                updates = await self.bot.get_updates(
                    offset=offset, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES
                )
                for update in updates:
                    claim = await asyncio.to_thread(
                        self.runner.receive, PLATFORM, str(update.update_id), json.dumps(update.to_dict())
                    )
                    offset = update.update_id + 1
                    if claim is not None:
                        await self.runner.run(claim)
                pause = 0.0
            except RetryAfter as exc:
                pause = delivery_error(exc).retry_after  # type: ignore[attr-defined]
            except (TelegramError, sa.exc.SQLAlchemyError) as exc:
                # Nothing confirmed what was not recorded: the same updates come again.
                log.warning("Telegram polling: %s; retrying", str(exc).splitlines()[0] if str(exc) else exc)
                pause = min(max(pause * 2, 1.0), 30.0)

    # -- processing ---------------------------------------------------------------------------------

    def parse(self, data: dict) -> Update:
        """The update in a webhook body; ValueError for a body that is no Telegram update."""
        try:
            return Update.de_json(data, self.bot)
        except Exception as exc:  # parsing only: whatever fails here is the body's fault (a date past 9999...)
            raise ValueError(f"not a Telegram update: {exc!r}") from None

    async def receive(self, data: dict) -> None:
        """A webhook update: recorded (committed) first, then processed unless it was done before or
        someone else is on it. Raises ValueError for a body that is no Telegram update."""
        update = self.parse(data)
        claim = await asyncio.to_thread(self.runner.receive, PLATFORM, str(data["update_id"]), json.dumps(data))
        if claim is not None:
            self._parsed[claim.key] = update
            try:
                await self.runner.run(claim)
            finally:
                self._parsed.pop(claim.key, None)

    async def process(self, claim: Claim) -> None:
        """InboxProcessor: carry out a recorded update (the runner retries it when this raises)."""
        await self.initialize()
        update = self._parsed.pop(claim.key, None) or self.parse(json.loads(claim.payload))
        inbound = from_update(update, self.bot.id)
        queue = OutboxQueue(self.interactive.offer())
        if inbound is not None:
            try:
                await self._route(inbound, queue)
            except TelegramError as exc:
                # What had to be saved is saved; a question or button answer did not go out.
                log.warning("sending for update %s failed: %s", inbound.update_id, exc)
                # What _route sends directly goes to the chat the update came from.
                await self._unreachable(Destination(PLATFORM, inbound.origin.conversation), delivery_error(exc))
        if not queue.done:
            # Done, if nothing marked it so (an ignored update, a repeat, a press of a dead button).
            await asyncio.to_thread(inbox.finish, self.app.session_factory, PLATFORM, claim.key)
        if queue.pending:
            await self.interactive.send_now(queue.ids, queue.claimed)

    def poisoned(self, uow: UnitOfWork, claim: Claim, ref: str) -> None:
        """InboxProcessor: the one answer someone whose update was given up gets."""
        try:
            inbound = from_update(self.parse(json.loads(claim.payload)), self.bot.id)
        except ValueError:
            inbound = None
        if inbound is None:
            return
        request = inbound.request()
        interactive.enqueue(uow, [reply_to_sender(request, internal_error_reply(ref), "poisoned")])

    async def _route(self, inbound: Inbound, queue: OutboxQueue) -> None:
        if inbound.is_callback:
            await self._on_press(inbound, queue)
        elif inbound.is_command:
            await self._dispatch(inbound, queue)
        else:
            await self._on_event(inbound, queue)

    # -- commands and forms ---------------------------------------------------------------------------

    async def _send(self, inbound: Inbound, reply: Reply, **kwargs) -> None:
        await self.outgoing.reply(inbound.origin.conversation, reply, thread=inbound.origin.thread, **kwargs)

    async def _dispatch(
        self,
        inbound: Inbound,
        queue: OutboxQueue,
        *,
        text: str | None = None,
        from_button: bool = False,
        wants_form: bool = False,
    ) -> None:
        files = await self._fetch(inbound) if inbound.document is not None and text is None else ()
        request = inbound.request(text=text, from_button=from_button, wants_form=wants_form, files=files)
        try:
            reply = await asyncio.to_thread(self.app.dispatcher.handle, request, desk=self.desk, queue=queue)
        except AlreadyHandled:
            return
        if reply.form is not None:
            # A form is asked one question at a time, directly (the answer itself was queued otherwise).
            await self._deliver(inbound, reply)
        elif reply.file is not None:
            # The answer's text was queued; a file (a data export) cannot ride in an outbox row, so it
            # goes directly, after the text that announces it.
            await self._send_file(inbound, reply)

    async def _fetch(self, inbound: Inbound) -> tuple[InboundFile, ...]:
        """The document sent with a command, downloaded through the Bot API (getFile, then the file URL);
        one over UPLOAD_LIMIT is not fetched, and the command says it is too big."""
        document = inbound.document
        assert document is not None
        name = document.file_name or "file"
        if document.file_size is not None and document.file_size > UPLOAD_LIMIT:
            return (InboundFile(name, document.file_size, None, document.mime_type),)
        handle = await self.bot.get_file(document.file_id)
        content = bytes(await handle.download_as_bytearray())
        if len(content) > UPLOAD_LIMIT:
            return (InboundFile(name, len(content), None, document.mime_type),)
        return (InboundFile(name, len(content), content, document.mime_type),)

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
            await self._send_file(inbound, reply)

    async def _send_file(self, inbound: Inbound, reply: Reply) -> None:
        assert reply.file is not None
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
        # Asked in the language the form was written in (set by the dispatcher).
        with i18n.use_language(question.form.language or i18n.current_language()):
            await self._ask_in_language(inbound, question)

    async def _ask_in_language(self, inbound: Inbound, question: Question) -> None:
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
                    _("Keep as it is"),
                    callback_data=callbacks.answer_data(question.session_id, question.asked, callbacks.KEEP),
                )
            )
        elif not field.required:
            extra.append(
                InlineKeyboardButton(
                    _("Skip"), callback_data=callbacks.answer_data(question.session_id, question.asked, callbacks.SKIP)
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

    async def _answer_press(self, inbound: Inbound, text: str | None = None) -> None:
        """Stop the button's spinner (a courtesy: a query too old to answer does not matter)."""
        try:
            await self.bot.answer_callback_query(inbound.callback_id, text)
        except TelegramError as exc:
            log.info("answerCallbackQuery for update %s failed: %s", inbound.update_id, exc)

    async def _on_press(self, inbound: Inbound, queue: OutboxQueue) -> None:
        decoded = await asyncio.to_thread(self._decode, inbound.text)
        if decoded is None:
            await self._answer_press(inbound, _hinted(inbound, N_("This button no longer works.")))
            return
        if isinstance(decoded, callbacks.Press):
            await self._answer_press(inbound)
            await self._dispatch(inbound, queue, text=decoded.command, from_button=True, wants_form=decoded.opens_form)
            return
        try:
            chosen = await asyncio.to_thread(
                self.app.dispatcher.choose, inbound.request(), decoded.session_id, decoded.asked, decoded.choice
            )
        except AlreadyHandled:
            return
        if isinstance(chosen, Stale):
            await self._answer_press(inbound, _hinted(inbound, N_("That question is no longer open.")))
            return
        await self._answer_press(inbound)
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

    async def _on_event(self, inbound: Inbound, queue: OutboxQueue) -> None:
        try:
            outcome = await asyncio.to_thread(
                self.app.dispatcher.handle_event, inbound.request(), desk=self.desk, queue=queue
            )
        except AlreadyHandled:
            return
        if outcome.step is not None:
            step = await asyncio.to_thread(self.app.dispatcher.advance, inbound.origin, outcome.step, desk=self.desk)
            await self._show(inbound, step)

    def _moved(self, _platform: str, old: str, new: str) -> None:
        if self.settings.support_chat_id == old:
            # Until TELEGRAM_SUPPORT_CHAT_ID is updated (the log says so), this process follows the move.
            self.settings = replace(self.settings, support_chat_id=new)

    async def _unreachable(self, to: Destination, error: Exception) -> None:
        """Record what a failed send says about its chat: unreachable (blocked and opted out) or
        moved (the new id replaces the old everywhere, the support chat setting included)."""
        if isinstance(error, ChatMoved):
            await asyncio.to_thread(self.app.dispatcher.chat_moved, to, error.conversation)
            self._moved(PLATFORM, to.conversation, error.conversation)
        elif isinstance(error, RecipientUnreachable):
            await asyncio.to_thread(self.app.dispatcher.unreachable, to, str(error))
