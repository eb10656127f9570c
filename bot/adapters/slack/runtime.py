"""Slack's deliveries: kept in the inbox before the ack, then run through the dispatcher, answered
through the outbox.

Record first, then ack, then work. Each bolt route (``bolt_app``) first writes the raw delivery
(slash command, button press, event, and a modal submission that is not answered within its ack)
to the inbox under its dedup key (``inbound.delivery_key``) and commits (``receive``), then lets
bolt answer Slack, then processes it from the claim as a background task (``process``, this
runtime is the platform's ``InboxProcessor``). A process that dies after the ack leaves the row
pending: once its lease ran out, the worker's ``InboxRecovery`` (or this process's start-up pass)
runs it again from the stored body, through ``process``, which the Slack plugin registers as its
inbox processor. A delivery Slack sends again (an event retried after a slow ack, a replayed body)
finds its row and does nothing.

The dispatcher marks the delivery done and queues its answer as an interactive outbox row (keyed by
the delivery, carrying the response_url and the person who asked in ``answer_to``) in the
transaction of its effect, so a replay repairs what is missing and repeats nothing; the row is
sent right after the commit (``OutboxSender.send_now`` through ``SlackSender``, in parallel with
other requests' answers in the same channel), and what could not be sent then is left to the
worker's sender. One outbox sender (``outbox``) has every chat platform's sender, since what a
delivery makes the bot say may go to another platform.

What stays outside this (documented in the README): things that only work within seconds of the
request. A modal opens with views.open on the request's ``trigger_id``, which Slack accepts for 3
seconds: a delivery processed later (a recovery) answers with a message saying so instead. A modal
submission is run within its ack (``submit_form``), because its inline errors and next form can
only be given there; its answer is an outbox row of the same transaction, and it is kept in the
inbox only when the ack has to go before the work is done (``FORM_ACK_BUDGET``). The App Home
(views.publish) and exported files are sent directly after the commit: a crash in between leaves
the Home as it was until it is opened again, and the file to be asked for again.

A person's message in a thread of the support channel (CHATCRM_SLACK_SUPPORT_CHANNEL) is kept and
processed the same way, as a plain message (``RequestKind.MESSAGE``); what it makes the bot say may
go to another platform (an answer to a Telegram customer), and is sent in order with what else goes
to that conversation. Files shared with a command in a DM ("import customers") are fetched when the
delivery is processed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import interactive, platforms
from bot.adapters.slack import inbound
from bot.adapters.slack.blocks import decode_action, home_view
from bot.adapters.slack.inbound import ACTION, COMMAND, EVENT, PLATFORM, VIEW
from bot.adapters.slack.modals import FormContext, MetadataTooLong, inline_errors, modal_view
from bot.adapters.slack.outbound import (
    WEB_API_TIMEOUT,
    Destination,
    direct_channel,
    is_slack_failure,
    upload_file,
)
from bot.adapters.slack.plugin import LIMITS
from bot.adapters.slack.sender import SlackSender
from bot.adapters.slack.settings import SlackSettings
from bot.args import UsageError
from bot.bootstrap import App
from bot.dispatch import (
    AlreadyHandled,
    FormRejected,
    ProcessingFailed,
    internal_error_reply,
    new_reference,
    reply_to_sender,
)
from bot.inbox_runner import InboxRunner, InboxSettings
from bot.interactive import OutboxQueue
from bot.messages import UPLOAD_LIMIT, Form, InboundFile, Outgoing, Reply, Request, Tone
from bot.roles import Permission
from crm_core import i18n, inbox, outbox
from crm_core.i18n import _
from crm_core.inbox import Claim
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.slack")

# Slack waits 3 s for a modal submission's answer; keep a margin for the network.
FORM_ACK_BUDGET = 2.5
# After that, how long the ack may wait for the submission to be kept in the inbox.
FORM_RECORD_BUDGET = 0.3
# A trigger_id opens a modal within 3 s of the request; after that, answer with a message instead.
TRIGGER_LIFETIME = 2.5
# A response_url takes answers for 30 minutes (and 5 of them) after the request.
RESPONSE_URL_LIFETIME = 30 * 60
DISPATCH_THREADS = 4
SQLITE_DISPATCH_THREADS = 2
# Inbox writes have a thread of their own, so an ack never waits behind a command's work; one batch
# of them is written at a time (``_keep_batches``).
INBOX_THREADS = 1
EXPIRED_TRIGGER_ERRORS = frozenset({"expired_trigger_id", "invalid_trigger_id", "exchanged_trigger_id"})
# How long a person's Slack locale (users.info) is trusted before it is asked again.
LOCALE_TTL = 24 * 3600.0

Ack = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Delivery:
    """A kept delivery rebuilt: the request, where its answer goes, and the trigger that may open a modal."""

    request: Request
    where: Destination
    trigger_id: str | None = None


class InlineErrorQueue(OutboxQueue):
    """The outbox queue of a modal submission answered in its ack: an error the modal can show next
    to its inputs is held back from the outbox (the ack shows it, and the modal stays open), unless
    the ack has gone already (``acked``), when it must go out as a message after all."""

    def __init__(self, view: dict[str, Any], send_now: outbox.SendNow | None = None):
        super().__init__(send_now)
        self.view = view
        self.held: Outgoing | None = None
        self.errors: dict[str, str] = {}
        self._acked = False
        self._lock = threading.Lock()

    def add(self, uow: UnitOfWork, sends: Iterable[Outgoing]) -> None:
        kept = []
        with self._lock:
            for send in sends:
                errors = {} if self._acked or self.held is not None else self._inline(send.reply)
                if errors:
                    self.held, self.errors = send, errors
                else:
                    kept.append(send)
        super().add(uow, kept)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.held, self.errors = None, {}

    def acked(self) -> Outgoing | None:
        """Slack got its ack without errors: the error held back, if any, to send as a message."""
        with self._lock:
            self._acked = True
            held, self.held = self.held, None
        return held

    def _inline(self, reply: Reply) -> dict[str, str]:
        if reply.tone is not Tone.ERROR:
            return {}
        with i18n.use_language(reply.language or i18n.current_language()):
            return inline_errors(self.view, {"": reply.text or reply.title or _("That did not work.")})


class SlackRuntime:
    """The Slack side of one process: Web API client, the inbox and its processing, the dispatch
    thread pool, the interactive lane of the outbox, and background tasks."""

    platform = PLATFORM

    def __init__(self, app: App, settings: SlackSettings):
        self.app = app
        self.settings = settings
        # SQLite runs one write transaction at a time (every command writes its inbox key), so more
        # threads would only queue for the lock and take the GIL from the acks; PostgreSQL overlaps
        # the network waits of a few.
        workers = SQLITE_DISPATCH_THREADS if app.settings.is_sqlite else DISPATCH_THREADS
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack-dispatch")
        self.inbox_executor = ThreadPoolExecutor(max_workers=INBOX_THREADS, thread_name_prefix="slack-inbox")
        env = app.settings.extra
        self.runner = InboxRunner(app.session_factory, InboxSettings.from_env(env), {PLATFORM: self})
        # Sends what a delivery queued right after its commit (the interactive lane of the outbox):
        # to Slack over this runtime's connection, and to the other chat platforms (a staff reply in
        # a ticket's thread goes to the customer's chat); the rest is left to the worker's sender.
        self.sender = SlackSender(settings)
        self.outbox = platforms.interactive_outbox(app, PLATFORM, self.sender, LIMITS)
        self._tasks: set[asyncio.Task[Any]] = set()
        # Deliveries waiting to be kept in the inbox (``receive``), and the task writing them.
        self._to_keep: list[tuple[str, str, asyncio.Future[Claim | None]]] = []
        self._keeping: asyncio.Task[None] | None = None
        # Slack user id -> (when asked, their locale or None): the language hint of their requests.
        self._locales: dict[str, tuple[float, str | None]] = {}
        self.session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None

    @property
    def client(self) -> AsyncWebClient:
        if self._client is None:
            raise RuntimeError("SlackRuntime.start() has not run")
        return self._client

    async def start(self) -> None:
        """Open the connection pool (once; the worker's recovery starts it on first use)."""
        if self._client is not None:
            return
        # One connection pool for every Web API call and response_url answer.
        self.session = aiohttp.ClientSession()
        self._client = AsyncWebClient(
            token=self.settings.bot_token, base_url=self.settings.api_url, session=self.session, timeout=WEB_API_TIMEOUT
        )
        self.sender.share(self._client, self.session)

    def recover_soon(self) -> None:
        """Take up, in the background, the deliveries a dead process left (their lease ran out)."""
        self.spawn(self.runner.recover(), "start-up recovery")

    async def close(self, grace: float = 10.0) -> None:
        """Let work in flight finish (up to ``grace`` seconds), then let go of connections. What is
        cut short stays pending in the inbox and outbox for the worker."""
        pending = set(self._tasks)
        if pending:
            _done, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
        await self.runner.close()
        if self.session:
            await self.session.close()
        for name, sender in self.outbox.senders.items():
            closing = getattr(sender, "close", None)
            if name != PLATFORM and closing is not None:
                await closing()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.inbox_executor.shutdown(wait=False, cancel_futures=True)

    def spawn(self, work: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[None]:
        """Run ``work`` after the ack; failures are logged with a reference, never lost silently."""
        task = asyncio.create_task(self._logged(work, what))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, Any], what: str) -> None:
        try:
            await work
        except Exception:
            log.exception("slack %s failed (ref %s)", what, new_reference())

    async def _in_thread(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(function, *args, **kwargs))

    async def dispatch(self, request: Request, queue: OutboxQueue | None = None) -> Reply | None:
        """The dispatcher's reply, computed in the thread pool; None for a repeated delivery. With
        ``queue`` the answer is queued in the outbox in the request's transaction."""
        try:
            return await self._in_thread(self.app.dispatcher.handle, request, queue=queue)
        except AlreadyHandled:
            log.info("slack delivery %s was handled before; ignored", request.inbox_key)
            return None

    # ---- the inbox: record first -----------------------------------------------------------

    async def receive(self, kind: str, body: dict[str, Any]) -> Claim | None:
        """Keep a delivery in the inbox, committed (call before the ack). The claim to process it
        now; None when there is nothing to do: an event chatcrm ignores, or a delivery done before
        or in someone else's hands. Raises the database's error when it could not be kept."""
        key = inbound.delivery_key(kind, body, self.settings.support_channel)
        if key is None:
            return None
        payload = json.dumps({"kind": kind, "received": time.time(), "body": body})
        kept: asyncio.Future[Claim | None] = asyncio.get_running_loop().create_future()
        self._to_keep.append((key, payload, kept))
        if self._keeping is None or self._keeping.done():
            self._keeping = asyncio.create_task(self._keep_batches())
        claim = await kept
        if claim is None:
            log.info("slack delivery %s was kept before (done, or in hand); not processed again", key)
        return claim

    async def _keep_batches(self) -> None:
        """Write the deliveries waiting to be kept, all that arrived meanwhile in one transaction: under
        load each ack waits for one commit, not for a queue of them."""
        loop = asyncio.get_running_loop()
        while self._to_keep:
            batch, self._to_keep = self._to_keep, []
            deliveries = [(key, payload) for key, payload, _kept in batch]
            try:
                claims = await loop.run_in_executor(
                    self.inbox_executor,
                    functools.partial(
                        inbox.receive_many,
                        self.app.session_factory,
                        PLATFORM,
                        deliveries,
                        lease=self.runner.settings.lease,
                    ),
                )
            except Exception as exc:  # noqa: BLE001 - each waiting ack gets the error (a 500: not kept)
                for _key, _payload, kept in batch:
                    if not kept.done():
                        kept.set_exception(exc)
                continue
            for (_key, _payload, kept), claim in zip(batch, claims, strict=True):
                if not kept.done():
                    kept.set_result(claim)

    def process_later(self, claim: Claim | None, what: str) -> None:
        """Process a kept delivery after the ack (failures: retried from the inbox, see InboxRunner)."""
        if claim is not None:
            self.spawn(self.runner.run(claim), what)

    # ---- InboxProcessor ----------------------------------------------------------------------

    async def process(self, claim: Claim) -> None:
        """Carry out a kept delivery: its effect and its answer (an outbox row) in one transaction,
        then send the answer. Raises when that failed (the runner retries it)."""
        await self.start()
        data = json.loads(claim.payload)
        kind, body, received = data["kind"], data["body"], float(data.get("received") or 0)
        queue = OutboxQueue(self.outbox.offer(parallel={PLATFORM}))
        if kind == EVENT and (body.get("event") or {}).get("type") == "app_home_opened":
            await self._home(claim.key, body)
            return
        if kind == EVENT and self._in_support_thread(body):
            await self._thread_message(claim.key, body)
            return
        delivery = self._rebuild(claim.key, kind, body, received)
        reply = None
        if delivery is not None:
            request = await self._hinted(delivery.request, ask=kind != VIEW)
            if kind == EVENT:
                request = await self._with_files(request, body)
            try:
                reply = await self.dispatch(request, queue)
            except FormRejected as rejected:
                # A submission processed after its modal closed: its problems come as a message.
                await self._answer_once(request, _rejected_reply(rejected), queue)
            if reply is not None and reply.form is not None:
                fresh = time.time() - received < TRIGGER_LIFETIME
                notice = await self.open_form(reply.form, delivery.where, delivery.trigger_id if fresh else None)
                if notice is not None:
                    await self._enqueue(reply_to_sender(request, notice, "form"), queue)
        if not queue.done:
            # Done, if nothing marked it so (an ignored delivery, a repeat, a form shown).
            await asyncio.to_thread(inbox.finish, self.app.session_factory, PLATFORM, claim.key)
        await self._send(queue)
        if delivery is not None and reply is not None and reply.file is not None:
            await self._upload(reply, delivery.where)

    def poisoned(self, uow: UnitOfWork, claim: Claim, ref: str) -> None:
        """InboxProcessor: the one answer someone whose delivery was given up gets."""
        try:
            data = json.loads(claim.payload)
            delivery = self._rebuild(claim.key, data["kind"], data["body"], float(data.get("received") or 0))
        except (ValueError, KeyError, TypeError, AttributeError):
            delivery = None
        if delivery is not None:
            interactive.enqueue(uow, [reply_to_sender(delivery.request, internal_error_reply(ref), "poisoned")])

    def _rebuild(self, key: str, kind: str, body: dict[str, Any], received: float) -> Delivery | None:
        """The request a kept delivery carries, keyed by its inbox key; None when it is nothing to run."""
        trigger_id = body.get("trigger_id")
        page = 1
        if kind == COMMAND:
            request = inbound.slash_command(body)
            where = Destination(
                channel=body.get("channel_id"), user=body["user_id"], response_url=body.get("response_url")
            )
        elif kind == ACTION:
            action = (body.get("actions") or [{}])[0]
            pressed = decode_action(action.get("action_id", ""), action.get("value", ""))
            if pressed is None:
                log.warning("slack button with an unreadable action %r ignored", action.get("action_id"))
                return None
            request = inbound.button_press(body, pressed)
            page = pressed.page or 1
            where = Destination(
                channel=request.origin.conversation,
                user=request.origin.user_external_id,
                response_url=body.get("response_url"),
                thread_ts=request.origin.thread,
            )
        elif kind == VIEW:
            try:
                context = FormContext.decode(body["view"].get("private_metadata", ""))
            except (ValueError, KeyError, TypeError):
                log.warning("slack modal submission without our private_metadata ignored")
                return None
            request = inbound.form_submission(body, context)
            # The modal has closed: a next form cannot be shown in it.
            trigger_id = None
            where = Destination(
                channel=request.origin.conversation,
                user=request.origin.user_external_id,
                response_url=context.response_url,
                thread_ts=context.thread_ts,
            )
        elif kind == EVENT:
            found = inbound.message_event(body)
            if found is None:
                return None
            request = found.request
            trigger_id = None
            where = Destination(
                channel=request.origin.conversation, user=request.origin.user_external_id, thread_ts=found.thread_ts
            )
        else:
            log.warning("slack delivery %s of unknown kind %r ignored", key, kind)
            return None
        request.inbox_key = key
        request.answer_to = self._answer_to(request, where, received, page)
        return Delivery(request, where, trigger_id)

    def _answer_to(self, request: Request, where: Destination, received: float, page: int) -> dict[str, Any]:
        """What SlackSender needs to answer ``request``: response_url (and until when it is valid), the
        person an ephemeral answer is for, the page, and the command a "More" button re-runs."""
        answer: dict[str, Any] = {}
        if where.user:
            answer["user"] = where.user
        if where.response_url:
            answer["response_url"] = where.response_url
            answer["response_url_until"] = received + RESPONSE_URL_LIFETIME
        more = self._repeatable(request)
        if more:
            answer["more_command"] = more
        if page != 1:
            answer["page"] = page
        return answer

    async def _home(self, key: str, body: dict[str, Any]) -> None:
        """The App Home: a view, published directly (a lost publish is redone when it is next opened)."""
        opened = inbound.home_opened(body)
        reply = None
        if opened is not None:
            opened.inbox_key = key
            reply = await self.dispatch(await self._hinted(opened))
        if reply is None:
            await asyncio.to_thread(inbox.finish, self.app.session_factory, PLATFORM, key)
            return
        assert opened is not None
        await self.client.views_publish(user_id=opened.origin.user_external_id, view=home_view(reply))

    async def _enqueue(self, send: Outgoing, queue: OutboxQueue) -> None:
        """Queue one more message in a transaction of its own (its key keeps it from being queued twice)."""

        def write() -> list[int]:
            with UnitOfWork(self.app.session_factory) as uow:
                return interactive.enqueue(uow, [send])

        queue.ids.extend(await self._in_thread(write))

    async def _answer_once(self, request: Request, reply: Reply, queue: OutboxQueue) -> None:
        """Mark the delivery done and queue ``reply`` as its answer, in one transaction (unless done before)."""

        def write() -> list[int] | None:
            with UnitOfWork(self.app.session_factory) as uow:
                if request.inbox_key is not None and not inbox.complete(uow, PLATFORM, request.inbox_key):
                    return None
                return interactive.enqueue(uow, [reply_to_sender(request, reply, "reply")])

        ids = await self._in_thread(write)
        if ids is not None:
            queue.ids.extend(ids)
            queue.done = True

    async def _send(self, queue: OutboxQueue) -> None:
        if queue.pending:
            # Each answer goes to its own request's response_url: answers to many people in one
            # channel do not wait for each other (nor for the channel's 1 message/s). What a
            # command sends elsewhere (to a Telegram customer) keeps its conversation's order.
            await self.outbox.send_now(list(queue.ids), queue.claimed, parallel={PLATFORM})

    async def _upload(self, reply: Reply, where: Destination) -> None:
        """An exported file, sent directly: an outbox row cannot carry it. A private file goes to the
        person's own DM (Slack has no ephemeral files)."""
        assert reply.file is not None
        if reply.private and where.user:
            await upload_file(self.client, await direct_channel(self.client, where.user), reply.file)
        elif where.channel:
            await upload_file(self.client, where.channel, reply.file, thread_ts=where.thread_ts)

    # ---- the language hint: the person's Slack locale ------------------------------------

    def _cached_locale(self, user: str) -> tuple[bool, str | None]:
        known = self._locales.get(user)
        if known is not None and time.monotonic() - known[0] < LOCALE_TTL:
            return True, known[1]
        return False, None

    def _has_saved_language(self, user: str) -> bool:
        return self.app.dispatcher.saved_language(inbound.PLATFORM, user) is not None

    async def locale_of(self, user: str) -> str | None:
        """``user``'s Slack locale ("zh-CN"), asked with users.info only when needed: not cached yet and
        no language saved with /lang (which wins anyway). A failure just leaves the hint out."""
        cached, locale = self._cached_locale(user)
        if cached:
            return locale
        if await self._in_thread(self._has_saved_language, user):
            return None
        try:
            answer = await self.client.users_info(user=user, include_locale=True)
            locale = (answer.get("user") or {}).get("locale")
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("slack users.info for %s failed (%s); no language hint", user, exc)
            locale = None
        self._locales[user] = (time.monotonic(), locale)
        return locale

    async def _hinted(self, request: Request, *, ask: bool = True) -> Request:
        """``request`` with its sender's Slack locale as the language hint (from the cache only, with
        ``ask=False``: a modal submission is answered in its ack, with no time for users.info)."""
        user = request.origin.user_external_id
        locale = await self.locale_of(user) if ask else self._cached_locale(user)[1]
        return replace(request, origin=replace(request.origin, language_hint=locale)) if locale else request

    # ---- modal submissions: answered in the ack ---------------------------------------------

    def _in_support_thread(self, body: dict[str, Any]) -> bool:
        channel = self.settings.support_channel
        return channel is not None and inbound.in_thread_of(body, channel)

    async def _thread_message(self, key: str, body: dict[str, Any]) -> None:
        """A kept message in a thread of the support channel (a staff reply in a ticket's thread): what
        it makes the bot say is queued in the outbox in the transaction that marks it done, then sent
        at once, to whichever platform it goes, after what is already in flight to that conversation."""
        request = inbound.thread_message(body)
        if request is None:
            await asyncio.to_thread(inbox.finish, self.app.session_factory, PLATFORM, key)
            return
        request.inbox_key = key
        request = await self._hinted(request)
        queue = OutboxQueue(self.outbox.offer())
        try:
            await self._in_thread(self.app.dispatcher.handle_event, request, queue=queue)
        except AlreadyHandled:
            log.info("slack delivery %s was handled before; ignored", key)
        if not queue.done:
            await asyncio.to_thread(inbox.finish, self.app.session_factory, PLATFORM, key)
        if queue.pending:
            await self.outbox.send_now(list(queue.ids), queue.claimed)

    async def _with_files(self, request: Request, body: dict[str, Any]) -> Request:
        """A DM's command with the files shared with it, fetched now ("import customers" with a CSV)."""
        found = inbound.message_event(body)
        if found is None or not found.files:
            return request
        fetched = [await self._download(shared) for shared in found.files]
        return replace(request, files=tuple(f for f in fetched if f))

    async def _download(self, shared: dict[str, Any]) -> InboundFile | None:
        """A file shared with a command (Slack's file object), fetched with the bot token (scope files:read).
        The token goes only to Slack's file host or the configured Web API's host (SLACK_API_URL); a file
        over UPLOAD_LIMIT is not fetched, and the command says it is too big."""
        name, url, mime = str(shared.get("name") or "file"), str(shared["url_private_download"]), shared.get("mimetype")
        if int(shared.get("size") or 0) > UPLOAD_LIMIT:
            return InboundFile(name, int(shared["size"]), None, mime)
        if not _trusted_file_url(url, self.settings.api_url):
            log.warning("slack file %s not fetched: %s is not a Slack file URL", name, url[:100])
            return None
        assert self.session is not None
        headers = {"Authorization": f"Bearer {self.settings.bot_token}"}
        chunks: list[bytes] = []
        size = 0
        async with self.session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as response:
            response.raise_for_status()
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > UPLOAD_LIMIT:
                    return InboundFile(name, size, None, mime)
                chunks.append(chunk)
        return InboundFile(name, size, b"".join(chunks), mime)

    async def submit_form(self, body: dict[str, Any], ack: Ack) -> None:
        """A modal submission: inline errors in the ack, or close the modal; the answer is an outbox
        row of the submission's transaction. Kept in the inbox only when the ack goes before the work
        is done (after ``FORM_ACK_BUDGET``): until then Slack has no ack, so a crash shows the person
        an error in the modal, which is still open."""
        received = time.time()
        key = inbound.delivery_key(VIEW, body)
        assert key is not None
        delivery = self._rebuild(key, VIEW, body, received)
        if delivery is None:
            await ack()
            return
        view = body["view"]
        request = await self._hinted(delivery.request, ask=False)
        queue = InlineErrorQueue(view, self.outbox.offer(parallel={PLATFORM}))
        work = asyncio.get_running_loop().run_in_executor(
            self.executor, functools.partial(self.app.dispatcher.handle, request, queue=queue)
        )
        try:
            reply = await asyncio.wait_for(asyncio.shield(work), FORM_ACK_BUDGET)
        except FormRejected as rejected:
            errors = inline_errors(view, rejected.errors)
            if errors:
                await ack(response_action="errors", errors=errors)
                return
            await ack()
            self.spawn(self._answer_and_send(request, _rejected_reply(rejected), queue), "form answer")
            return
        except AlreadyHandled:
            await ack()
            return
        except ProcessingFailed as failed:
            # Nothing was kept: say so in the modal, which stays open to be sent again.
            with i18n.use_language(i18n.resolve_language(None, request.origin.language_hint)):
                errors = inline_errors(view, {"": internal_error_reply(failed.ref).text or ""})
            await ack(**({"response_action": "errors", "errors": errors} if errors else {}))
            return
        except TimeoutError:
            # The ack goes before the work is done: keep the submission in the inbox first, so that if
            # this process dies the worker runs it again; the outcome follows as a message. Slack's 3 s
            # leave little time: when the database is what is slow, the ack goes after
            # FORM_RECORD_BUDGET with the record still on its way (it commits when the database can).
            record = asyncio.ensure_future(self.receive(VIEW, body))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(record), FORM_RECORD_BUDGET)
            held = queue.acked()
            await ack()
            self.spawn(self._late_form_answer(work, request, delivery, queue, held, record), "late form answer")
            return
        if queue.held is not None:
            await ack(response_action="errors", errors=queue.errors)
            return
        if reply.form is not None:
            # The command asks for more: show the next form in the same modal.
            await ack(response_action="update", view=modal_view(reply.form, _context_for(reply.form, delivery.where)))
            return
        await ack()
        self.spawn(self._send_with_file(queue, reply, delivery.where), "form answer")

    async def _answer_and_send(self, request: Request, reply: Reply, queue: OutboxQueue) -> None:
        await self._answer_once(request, reply, queue)
        await self._send(queue)

    async def _send_with_file(self, queue: OutboxQueue, reply: Reply, where: Destination) -> None:
        await self._send(queue)
        if reply.file is not None:
            await self._upload(reply, where)

    async def _late_form_answer(
        self,
        work: asyncio.Future[Reply],
        request: Request,
        delivery: Delivery,
        queue: OutboxQueue,
        held: Outgoing | None,
        record: asyncio.Future[Claim | None],
    ) -> None:
        claim = None
        try:
            claim = await record
        except Exception:  # noqa: BLE001 - the work itself may still succeed; only a crash would lose it
            log.exception("keeping a late slack modal submission in the inbox failed")
        try:
            reply: Reply | None = await work
        except FormRejected as rejected:
            await self._answer_and_send(request, _rejected_reply(rejected), queue)
            return
        except AlreadyHandled:
            return
        except ProcessingFailed as failed:
            # Kept in the inbox before the ack: released to be run again after a backoff.
            if claim is not None:
                await asyncio.to_thread(
                    inbox.fail,
                    self.app.session_factory,
                    claim,
                    f"ref {failed.ref}",
                    max_attempts=self.runner.settings.max_attempts,
                )
            return
        if held is not None:
            # An error meant for the modal, which closed meanwhile.
            await self._enqueue(held, queue)
        if reply is not None and reply.form is not None:
            notice = await self.open_form(reply.form, delivery.where, None)
            if notice is not None:
                await self._enqueue(reply_to_sender(request, notice, "form"), queue)
        await self._send(queue)
        if reply is not None and reply.file is not None:
            await self._upload(reply, delivery.where)

    # ---- modals ------------------------------------------------------------------------------

    async def open_form(self, form: Form, where: Destination, trigger_id: str | None) -> Reply | None:
        """Open ``form`` as a modal with ``trigger_id``; the message to send instead when it cannot
        open (no trigger or an expired one, or a form too big for a modal), else None."""
        with i18n.use_language(form.language):
            late = Reply(
                text=_("The form could not open in time. Please try again."),
                tone=Tone.WARNING,
                private=True,
                language=form.language,
            )
            try:
                view = modal_view(form, _context_for(form, where))
            except MetadataTooLong:
                too_much = _("That is too much to ask for in a form; please type the whole command.")
                return Reply(text=too_much, tone=Tone.ERROR, private=True, language=form.language)
        if not trigger_id:
            return late
        try:
            await self.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            if exc.response.get("error") not in EXPIRED_TRIGGER_ERRORS:
                log.warning("slack views.open failed (%s); answering with a message", exc.response.get("error"))
            # Slack lets a trigger open a modal for 3 seconds only.
            return late
        except Exception as exc:
            if not is_slack_failure(exc):
                raise
            log.warning("slack views.open failed (%s); answering with a message", exc)
            return late
        return None

    def _repeatable(self, request: Request) -> str | None:
        """The command line to re-run for a "More" page: only for commands that only read."""
        if request.form_values is not None:
            return None
        try:
            route = self.app.router.route(request.text)
        except UsageError:
            return None
        if route is None:
            return request.text  # an unknown command is answered with /help
        permission = route.command.permission
        # Permissions are named "<area>.read" / "<area>.write"; re-running a write would repeat it.
        return request.text if permission == Permission.HELP or str(permission).endswith(".read") else None


def _context_for(form: Form, where: Destination) -> FormContext:
    return FormContext(
        command=form.command,
        fixed=dict(form.fixed),
        response_url=where.response_url,
        channel=where.channel,
        thread_ts=where.thread_ts,
    )


def _rejected_reply(rejected: FormRejected) -> Reply:
    problems = "; ".join(f"{name}: {message}" for name, message in rejected.errors.items())
    with i18n.use_language(rejected.language):
        text = _("Your form was not saved: {problems}", problems=problems)
    return Reply(text=text, tone=Tone.ERROR, private=True, language=rejected.language)


def _trusted_file_url(url: str, api_url: str) -> bool:
    """Slack's own file host, or the host of SLACK_API_URL (an enterprise proxy, a test's fake)."""
    from urllib.parse import urlsplit

    target, api = urlsplit(url), urlsplit(api_url)
    if target.scheme == "https" and target.hostname == "files.slack.com":
        return True
    return (target.scheme, target.netloc) == (api.scheme, api.netloc)
