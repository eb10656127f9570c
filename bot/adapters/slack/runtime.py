"""What happens after the ack: run the request through the dispatcher off the event loop, then answer.

The bolt routes (``bolt_app``) acknowledge first and hand the payload here as a background task, so
Slack gets its 200 at once however slow the work is. The work runs ``Dispatcher.handle`` in a
thread pool (it is synchronous SQLAlchemy) and answers through the response_url when Slack gave one,
else by posting to the channel; a form opens as a modal with the press's trigger_id; the App Home is
published with views.publish.

A person's message in a thread of the support channel (CHATCRM_SLACK_SUPPORT_CHANNEL) goes to the
dispatcher as a plain message (``thread_message``); what it makes the bot say goes through the
outbox and is sent right after its commit (an answer to a customer on another platform included).

Modal submissions are the one thing that must be answered in the ack itself (inline errors keep
the modal open), so ``submit_form`` waits for the dispatcher, but never past ``FORM_ACK_BUDGET``:
after that the modal closes and the outcome follows as a message.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import platforms
from bot.adapters.slack import inbound
from bot.adapters.slack.blocks import decode_action, fallback_text, home_view, message_page
from bot.adapters.slack.modals import FormContext, MetadataTooLong, inline_errors, modal_view
from bot.adapters.slack.outbound import (
    Destination,
    direct_channel,
    post_message,
    post_to_response_url,
    response_url_body,
    upload_file,
    upload_image,
)
from bot.adapters.slack.settings import SlackSettings
from bot.args import UsageError
from bot.bootstrap import App
from bot.delivery import TemporaryFailure
from bot.dispatch import AlreadyHandled, FormRejected, new_reference
from bot.interactive import AfterSendRecorder, OutboxQueue
from bot.messages import UPLOAD_LIMIT, Form, InboundFile, Reply, Request, Tone
from bot.outbox_sender import OutboxSender, SenderSettings
from bot.roles import Permission
from crm_core import i18n
from crm_core.i18n import _

log = logging.getLogger("chatcrm.slack")

# Slack waits 3 s for a modal submission's answer; keep a margin for the network.
FORM_ACK_BUDGET = 2.5
WEB_API_TIMEOUT = 10
DISPATCH_THREADS = 4
SQLITE_DISPATCH_THREADS = 2
EXPIRED_TRIGGER_ERRORS = frozenset({"expired_trigger_id", "invalid_trigger_id", "exchanged_trigger_id"})
# How long a person's Slack locale (users.info) is trusted before it is asked again.
LOCALE_TTL = 24 * 3600.0

Ack = Callable[..., Awaitable[Any]]


class SlackRuntime:
    """The Slack side of one process: Web API client, dispatch thread pool and background tasks."""

    def __init__(self, app: App, settings: SlackSettings):
        self.app = app
        self.settings = settings
        # SQLite runs one write transaction at a time (every command writes its inbox key), so more
        # threads would only queue for the lock and take the GIL from the acks; PostgreSQL overlaps
        # the network waits of a few.
        workers = SQLITE_DISPATCH_THREADS if app.settings.is_sqlite else DISPATCH_THREADS
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack-dispatch")
        self._tasks: set[asyncio.Task[Any]] = set()
        # Slack user id -> (when asked, their locale or None): the language hint of their requests.
        self._locales: dict[str, tuple[float, str | None]] = {}
        self.session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None
        self._outbox: OutboxSender | None = None

    @property
    def client(self) -> AsyncWebClient:
        if self._client is None:
            raise RuntimeError("SlackRuntime.start() has not run")
        return self._client

    async def start(self) -> None:
        # One connection pool for every Web API call and response_url answer.
        self.session = aiohttp.ClientSession()
        self._client = AsyncWebClient(
            token=self.settings.bot_token, base_url=self.settings.api_url, session=self.session, timeout=WEB_API_TIMEOUT
        )

    async def close(self, grace: float = 10.0) -> None:
        """Let answers in flight finish (up to ``grace`` seconds), then let go of connections."""
        pending = set(self._tasks)
        if pending:
            _done, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
        if self.session:
            await self.session.close()
        if self._outbox is not None:
            for sender in self._outbox.senders.values():
                closing = getattr(sender, "close", None)
                if closing is not None:
                    await closing()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def spawn(self, work: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        """Run ``work`` after the ack; failures are logged with a reference, never lost silently."""
        task = asyncio.create_task(self._logged(work, what))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, None], what: str) -> None:
        try:
            await work
        except Exception:
            log.exception("slack %s failed (ref %s)", what, new_reference())

    async def dispatch(self, request: Request) -> Reply | None:
        """The dispatcher's reply, computed in the thread pool; None for a repeated delivery."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, self.app.dispatcher.handle, request)
        except AlreadyHandled:
            log.info("slack delivery %s was handled before; ignored", request.inbox_key)
            return None

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
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(self.executor, self._has_saved_language, user):
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

    # ---- inbound flows (each runs after the ack) ------------------------------------------

    async def slash_command(self, body: dict[str, Any]) -> None:
        request = await self._hinted(inbound.slash_command(body))
        reply = await self.dispatch(request)
        if reply is not None:
            where = Destination(
                channel=body.get("channel_id"), user=body["user_id"], response_url=body.get("response_url")
            )
            await self.answer(request, reply, where, trigger_id=body.get("trigger_id"))

    async def button(self, body: dict[str, Any]) -> None:
        action = (body.get("actions") or [{}])[0]
        pressed = decode_action(action.get("action_id", ""), action.get("value", ""))
        if pressed is None:
            log.warning("slack button with an unreadable action %r ignored", action.get("action_id"))
            return
        request = await self._hinted(inbound.button_press(body, pressed))
        reply = await self.dispatch(request)
        if reply is not None:
            where = Destination(
                channel=request.origin.conversation,
                user=request.origin.user_external_id,
                response_url=body.get("response_url"),
                thread_ts=request.origin.thread,
            )
            await self.answer(request, reply, where, trigger_id=body.get("trigger_id"), page=pressed.page or 1)

    async def event(self, body: dict[str, Any]) -> None:
        kind = (body.get("event") or {}).get("type")
        if kind == "app_home_opened":
            opened = inbound.home_opened(body)
            request = await self._hinted(opened) if opened else None
            reply = await self.dispatch(request) if request else None
            if request is not None and reply is not None:
                await self.client.views_publish(user_id=request.origin.user_external_id, view=home_view(reply))
        elif kind in ("message", "app_mention"):
            channel = self.settings.support_channel
            if channel is not None and inbound.in_thread_of(body, channel):
                await self.thread_message(body)
                return
            found = inbound.message_event(body)
            if found is not None:
                found = replace(found, request=await self._hinted(found.request))
            if found is not None and found.files:
                fetched = [await self._download(shared) for shared in found.files]
                found = replace(found, request=replace(found.request, files=tuple(f for f in fetched if f)))
            reply = await self.dispatch(found.request) if found else None
            if found is not None and reply is not None:
                origin = found.request.origin
                where = Destination(
                    channel=origin.conversation, user=origin.user_external_id, thread_ts=found.thread_ts
                )
                await self.answer(found.request, reply, where)

    async def thread_message(self, body: dict[str, Any]) -> None:
        """A message in a thread of the support channel (a staff reply in a ticket's thread): what it
        makes the bot say is queued in the outbox in its own transaction, then sent at once."""
        request = inbound.thread_message(body)
        if request is None:
            return
        request = await self._hinted(request)
        queue = OutboxQueue()
        handle = functools.partial(self.app.dispatcher.handle_event, request, queue=queue)
        try:
            await asyncio.get_running_loop().run_in_executor(self.executor, handle)
        except AlreadyHandled:
            log.info("slack delivery %s was handled before; ignored", request.inbox_key)
            return
        if queue.ids:
            await self.outbox.send_now(queue.ids)

    @property
    def outbox(self) -> OutboxSender:
        """Sends what a thread message queued, to whichever platform it goes (the customer's chat, the
        thread); what it cannot send now is left to the worker's outbox sender."""
        if self._outbox is None:
            app = self.app
            self._outbox = OutboxSender(
                app.engine,
                app.session_factory,
                platforms.chat_senders(app),
                SenderSettings.from_env(app.settings.extra, platforms.default_limits(app)),
                preparers=app.plugins.preparers,
                after=AfterSendRecorder(app.session_factory, app.router.recorder),
            )
        return self._outbox

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
        """A modal submission: inline errors in the ack, or close the modal and answer as a message."""
        view = body["view"]
        try:
            context = FormContext.decode(view.get("private_metadata", ""))
        except (ValueError, KeyError, TypeError):
            log.warning("slack modal submission without our private_metadata ignored")
            await ack()
            return
        request = await self._hinted(inbound.form_submission(body, context), ask=False)
        where = Destination(
            channel=request.origin.conversation,
            user=request.origin.user_external_id,
            response_url=context.response_url,
            thread_ts=context.thread_ts,
        )
        work = asyncio.get_running_loop().run_in_executor(self.executor, self.app.dispatcher.handle, request)
        try:
            reply = await asyncio.wait_for(asyncio.shield(work), FORM_ACK_BUDGET)
        except FormRejected as rejected:
            errors = inline_errors(view, rejected.errors)
            if errors:
                await ack(response_action="errors", errors=errors)
                return
            await ack()
            self.spawn(self.answer(request, _rejected_reply(rejected), where), "form answer")
            return
        except AlreadyHandled:
            await ack()
            return
        except TimeoutError:
            # Answer Slack in time; the outcome follows as a message once the work is done.
            await ack()
            self.spawn(self._late_form_answer(work, request, where), "late form answer")
            return
        if reply.tone is Tone.ERROR:
            with i18n.use_language(reply.language):
                errors = inline_errors(view, {"": reply.text or reply.title or _("That did not work.")})
            if errors:
                await ack(response_action="errors", errors=errors)
                return
        if reply.form is not None:
            # The command asks for more: show the next form in the same modal.
            await ack(response_action="update", view=modal_view(reply.form, _context_for(reply.form, where)))
            return
        await ack()
        self.spawn(self.answer(request, reply, where), "form answer")

    async def _late_form_answer(self, work: asyncio.Future[Reply], request: Request, where: Destination) -> None:
        try:
            reply = await work
        except FormRejected as rejected:
            reply = _rejected_reply(rejected)
        except AlreadyHandled:
            return
        await self.answer(request, reply, where)

    # ---- outbound -----------------------------------------------------------------------

    async def answer(
        self, request: Request, reply: Reply, where: Destination, *, trigger_id: str | None = None, page: int = 1
    ) -> None:
        if reply.form is not None and trigger_id:
            await self.open_form(reply.form, where, trigger_id)
            return
        await self.deliver(reply, where, more_command=self._repeatable(request), page=page)

    async def open_form(self, form: Form, where: Destination, trigger_id: str) -> None:
        try:
            view = modal_view(form, _context_for(form, where))
        except MetadataTooLong:
            with i18n.use_language(form.language):
                too_much = _("That is too much to ask for in a form; please type the whole command.")
            await self.deliver(Reply(text=too_much, tone=Tone.ERROR, private=True, language=form.language), where)
            return
        try:
            await self.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            if exc.response.get("error") not in EXPIRED_TRIGGER_ERRORS:
                raise
            # Slack lets a trigger open a modal for 3 seconds only.
            with i18n.use_language(form.language):
                late = _("The form could not open in time. Please try again.")
            await self.deliver(Reply(text=late, tone=Tone.WARNING, private=True, language=form.language), where)

    async def deliver(
        self, reply: Reply, where: Destination, *, more_command: str | None = None, page: int = 1
    ) -> None:
        shown = message_page(reply, page, more_command=more_command)
        posted = False
        if where.response_url:
            try:
                await post_to_response_url(self.session, where.response_url, response_url_body(reply, shown.blocks))
                posted = True
            except TemporaryFailure as exc:
                # A response_url lives 30 minutes and 5 answers; after that the channel still works.
                log.warning("slack response_url refused (%s); posting to the channel instead", exc)
        if not posted and where.channel:
            in_dm = where.channel == where.user or inbound.is_dm(where.channel)
            ephemeral_for = where.user if reply.private and not in_dm else None
            await post_message(
                self.client,
                where.channel,
                shown.blocks,
                fallback_text(reply),
                thread_ts=where.thread_ts,
                ephemeral_for=ephemeral_for,
            )
        if reply.image and where.channel:
            await upload_image(self.client, where.channel, reply.image, thread_ts=where.thread_ts)
        if reply.file is not None:
            # A private file goes to the person's own DM: Slack has no ephemeral files.
            if reply.private and where.user:
                await upload_file(self.client, await direct_channel(self.client, where.user), reply.file)
            elif where.channel:
                await upload_file(self.client, where.channel, reply.file, thread_ts=where.thread_ts)

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
