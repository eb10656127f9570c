"""The dispatcher: one inbound request in, one reply (or outcome) out, in one transaction.

It resolves who is asking, finds the command, checks the role, parses the arguments (or asks
for missing ones with a form), runs the handler inside a unit of work, and turns every failure
into a short message: a user error gets the usage line; anything unexpected gets
"something went wrong (ref ...)" while the traceback is logged under that reference. Any
failure rolls the transaction back, so nothing half-written stays in the database.

Besides commands (``handle``), it takes what is not a command (``handle_event``: a plain message,
a shared contact), which the listeners of handler modules turn into messages to send; an adapter
sends them and tells the dispatcher how that went (``report``). On platforms without modals it
drives the step-by-step forms of ``bot.conversation`` (``ask``, ``advance``, ``choose``).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from bot import conversation
from bot.args import FormErrors, UsageError, parse_form, parse_line
from bot.context import Context
from bot.conversation import Chosen, Filled, Question, Stale
from bot.desk import SupportDesk
from bot.forms import form_for
from bot.interactive import OutboxQueue
from bot.messages import (
    Caller,
    Destination,
    Form,
    Origin,
    Outcome,
    Outgoing,
    Reply,
    Request,
    RequestKind,
    Tone,
)
from bot.roles import role_name
from bot.router import Command, Route, Router
from bot.settings import Settings
from crm_core import i18n, inbox
from crm_core.actor import Actor
from crm_core.errors import CrmError, Forbidden, ValidationError
from crm_core.i18n import N_, _, format_number
from crm_core.models import Role
from crm_core.services import customer_chats, erasure, reachability, users
from crm_core.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.plugins import Plugins

log = logging.getLogger("chatcrm.dispatch")


class AlreadyHandled(Exception):
    """The request's ``inbox_key`` was handled before (a retried or replayed delivery): nothing was done."""

    def __init__(self, key: str):
        super().__init__(f"already handled: {key}")
        self.key = key


class ProcessingFailed(Exception):
    """An unexpected failure while processing a queued request; logged under ``ref``, nothing kept."""

    def __init__(self, ref: str):
        super().__init__(f"processing failed (ref {ref})")
        self.ref = ref


class FormRejected(Exception):
    """A submitted form has invalid inputs; ``errors`` maps input name to message (shown inline)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors
        # The messages' language, for whoever shows them outside the dispatcher.
        self.language = i18n.current_language()


def new_reference() -> str:
    return secrets.token_hex(4).upper()


def error_reply(message: str, usage: str | None = None) -> Reply:
    return Reply(
        text=message, footer=_("Usage: {usage}", usage=usage) if usage else None, tone=Tone.ERROR, private=True
    )


# What a customer is told when they type a command that is not for them: writing is what counts.
CUSTOMER_HINT_TEXT = N_("Just write your question here in your own words; our team will answer you in this chat.")
# The English answer (tests compare with it); customer_hint() gives it in the current language.
CUSTOMER_HINT = Reply(text=CUSTOMER_HINT_TEXT, language=i18n.DEFAULT_LANGUAGE)


def customer_hint() -> Reply:
    """CUSTOMER_HINT in the current language."""
    return Reply(text=_(CUSTOMER_HINT_TEXT), language=i18n.current_language())


def reply_to_sender(request: Request, reply: Reply, what: str = "reply") -> Outgoing:
    """An answer to the person who sent ``request``, in the same conversation and thread."""
    origin = request.origin
    return Outgoing(
        Destination(origin.platform, origin.conversation, origin.thread),
        reply,
        request.key_for(what),
        answer_to=request.answer_to,
    )


def internal_error_reply(ref: str) -> Reply:
    return Reply(
        text=_(
            "Something went wrong (ref {ref}). It has been logged; tell an admin the reference if it keeps happening.",
            ref=ref,
        ),
        tone=Tone.ERROR,
        private=True,
    )


class Dispatcher:
    def __init__(self, router: Router, session_factory: sessionmaker[Session], settings: Settings, plugins: Plugins):
        self.router = router
        self.plugins = plugins
        self.session_factory = session_factory
        self.settings = settings

    def handle(self, request: Request, *, desk: SupportDesk | None = None, queue: OutboxQueue | None = None) -> Reply:
        """Run one command, answering in the caller's language (see ``_handle``)."""
        # The platform's hint until the caller is known; _caller switches to their own choice.
        with i18n.use_language(i18n.resolve_language(None, request.origin.language_hint)):
            return _in_language(self._handle(request, desk=desk, queue=queue))

    def _handle(self, request: Request, *, desk: SupportDesk | None = None, queue: OutboxQueue | None = None) -> Reply:
        """Run one command. With a form submission, invalid inputs raise FormRejected instead of replying;
        a request whose ``inbox_key`` was handled before raises AlreadyHandled and changes nothing.
        ``desk``: the request comes from a platform where customers write to us (see bot.desk).
        ``queue``: the answer goes into the outbox (bot.interactive) in the transaction that marks the
        request done, unless it asks for a form; an unexpected failure then raises ProcessingFailed
        (nothing was kept: the request is to be processed again) instead of answering."""
        too_long = self._too_long(request)
        if too_long:
            return self._answer_once(request, error_reply(too_long), queue)
        try:
            route = self.router.route(request.text)
        except UsageError as exc:
            return self._answer_once(
                request, error_reply(_("I could not read that command: {problem}.", problem=exc.message)), queue
            )
        # An unknown command is answered with the help listing (when a help command is registered).
        command = route.command if route else self.router.get("help")
        usage = command.usage if command else None
        try:
            if route is not None and route.command.read_only and self.settings.is_sqlite:
                return self._read_then_record(request, desk, route, queue)
            with UnitOfWork(self.session_factory) as uow:
                # Marked done in this request's transaction: a rolled-back attempt leaves it to do.
                self._record_once(uow, request)
                reply = self._command(uow, request, desk, route, command)
                if queue is not None and reply.form is None:
                    queue.add(uow, [self._answer(request, reply)])
                return reply
        except AlreadyHandled:
            raise
        # A refusal or a user error is this delivery's answer: it uses up the inbox key (the transaction
        # that held it was rolled back), so a redelivery is not answered again.
        except FormErrors as exc:
            if request.form_values is not None:
                raise FormRejected(exc.errors) from None
            return self._refused(request, error_reply(exc.message, usage), queue)
        except UsageError as exc:
            return self._refused(request, error_reply(f"{_sentence(exc.message)}", usage), queue)
        except ValidationError as exc:
            if request.form_values is not None and exc.errors:
                raise FormRejected(exc.errors) from None
            return self._refused(request, error_reply(_sentence(exc.message), usage), queue)
        except CrmError as exc:  # Forbidden included
            return self._refused(request, error_reply(_sentence(exc.message)), queue)
        except Exception as exc:
            ref = new_reference()
            log.exception(
                "unhandled error ref=%s platform=%s user=%s command=%r",
                ref,
                request.origin.platform,
                request.origin.user_external_id,
                request.text[:200],
            )
            if queue is not None:
                queue.reset()
                raise ProcessingFailed(ref) from exc
            return internal_error_reply(ref)

    def _read_then_record(
        self, request: Request, desk: SupportDesk | None, route: Route, queue: OutboxQueue | None
    ) -> Reply:
        """A command that only reads, on SQLite: its reply is read in a reading transaction, and what
        must be written (the delivery marked done, a form in progress left, the answer queued) is
        written after it in a short one. Every SQLite transaction that may write takes the one write
        lock up front, so a card read in it made every other writer wait, a Slack delivery waiting
        to be kept before its ack included. A delivery handled meanwhile still raises AlreadyHandled
        there, and its reply is dropped."""
        with UnitOfWork(self.session_factory, read_only=True) as uow:
            reply = self._command(uow, request, desk, route, route.command, leave_form=False)
            actor = uow.actor
        with UnitOfWork(self.session_factory, actor) as uow:
            self._record_once(uow, request)
            if _leaves_form(request, route.command):
                conversation.cancel(uow, request.origin)
            if queue is not None and reply.form is None:
                queue.add(uow, [self._answer(request, reply)])
        return reply

    def _command(
        self,
        uow: UnitOfWork,
        request: Request,
        desk: SupportDesk | None,
        route: Route | None,
        command: Command | None,
        *,
        leave_form: bool = True,
    ) -> Reply:
        arg_text = route.arg_text if route else ""
        if leave_form and _leaves_form(request, route.command if route else None):
            conversation.cancel(uow, request.origin)
        ctx = self._context(uow, request, desk)
        if ctx.caller.role == Role.CUSTOMER and (
            route is None or not self.router.permissions.allows(Role.CUSTOMER, route.command.permission)
        ):
            # A customer pressing a button of a staff message (in a shared group) is ignored.
            return Reply() if request.from_button else customer_hint()
        if route is None:
            typed = repr(request.text.split()[0])
            if command is None:
                return error_reply(_("I don't know {command}.", command=typed))
            in_group = self._group_help(request, ctx, command)
            if in_group is not None:
                return in_group
            reply = command.handler(replace(request, args={}), ctx)
            return replace(
                reply,
                title=_("I don't know {command}. Here is what you can use:", command=typed),
                tone=Tone.WARNING,
                private=True,
            )
        return self._run(route.command, arg_text, request, ctx)

    def _group_help(self, request: Request, ctx: Context, help_command: Command) -> Reply | None:
        """For ``/digest`` alone, or ``/export customers`` where only ``/export segment`` exists: the
        help of that group of commands (``/help digest``), saying what was missing, instead of "I
        don't know /digest" above the whole listing. A caller who may use none of the group is told
        so, as for any command their role does not allow. None when the first word starts no
        command: the caller gets the whole listing."""
        found = self.router.group_of(request.text)
        if found is None:
            return None
        group, word = found
        if not any(c.path[0] == group for c in self.router.visible_to(ctx.caller.role)):
            raise Forbidden(self._denied_message(ctx.caller, group))
        # ``topic``: /help's one parameter, the command or group to explain.
        reply = help_command.handler(replace(request, args={"topic": group}), ctx)
        if word is None:
            title = _("{command} needs one more word. Here is what it can do:", command=repr(f"/{group}"))
        else:
            title = _("{command} has no {word}. Here is what it can do:", command=repr(f"/{group}"), word=repr(word))
        return replace(reply, title=title, tone=Tone.WARNING, private=True)

    def _refused(self, request: Request, reply: Reply, queue: OutboxQueue | None) -> Reply:
        """A command refused (bad input, no permission): the refusal is its answer, given once."""
        if queue is not None:
            queue.reset()
        return self._answer_once(request, reply, queue)

    @staticmethod
    def _answer(request: Request, reply: Reply) -> Outgoing:
        """The queued answer to a command: in a group, as a reply to the message that asked, so the
        right person sees it is theirs."""
        origin = request.origin
        reply_to = None if origin.is_private or request.from_button else request.message_id
        return Outgoing(
            Destination(origin.platform, origin.conversation, origin.thread, reply_to),
            _in_language(reply),
            request.key_for("reply"),
            answer_to=request.answer_to,
        )

    def handle_event(
        self, request: Request, *, desk: SupportDesk | None = None, queue: OutboxQueue | None = None
    ) -> Outcome:
        """Take what is not a command: a plain message or a shared contact. A message from someone
        answering a form's question is their answer (``Outcome.step``); anything else goes to the
        handler modules' listeners. User errors become a message to the sender; anything else raises
        (the adapter logs it and lets the platform deliver the request again). A request whose
        ``inbox_key`` was handled before raises AlreadyHandled. With ``queue``, the messages to send
        go into the outbox in the request's transaction and the outcome returned has none."""
        assert request.kind is not RequestKind.COMMAND, "commands go to handle()"
        with i18n.use_language(i18n.resolve_language(None, request.origin.language_hint)):
            return self._handle_event(request, desk=desk, queue=queue)

    def _handle_event(self, request: Request, *, desk: SupportDesk | None, queue: OutboxQueue | None) -> Outcome:
        try:
            with UnitOfWork(self.session_factory) as uow:
                self._record_once(uow, request)
                outcome = self._event(uow, request, desk)
                if queue is not None:
                    queue.add(uow, outcome.sends)
                    outcome = replace(outcome, sends=())
                return outcome
        except CrmError as exc:
            if queue is not None:
                queue.reset()
            reply = self._answer_once(request, error_reply(_sentence(exc.message)), queue, "error")
            return Outcome(sends=() if queue is not None else (reply_to_sender(request, reply, "error"),))
        except Exception:
            if queue is not None:
                queue.reset()
            raise

    def _event(self, uow: UnitOfWork, request: Request, desk: SupportDesk | None) -> Outcome:
        if request.kind is RequestKind.MESSAGE:
            row = conversation.current(uow, request.origin)
            if row is not None:
                return Outcome(step=conversation.answer(uow, row, text=request.text))
        ctx = self._context(uow, request, desk)
        for listener in self.router.listeners(request.kind):
            outcome = listener(request, ctx)
            if outcome is not None:
                return outcome
        return Outcome()

    def report(self, sent: Outgoing, *, message_id: str | None = None, error: str | None = None) -> list[Outgoing]:
        """How sending ``sent`` went: the platform's id of the message, or why it failed. Writes down what
        its ``after`` asks for and returns what to send about it in turn (e.g. "Sent to …")."""
        if sent.after is None:
            return []
        recorder = self.router.recorder(sent.after.kind)
        if recorder is None:
            log.warning("nothing records %r sends (message %s)", sent.after.kind, sent.key)
            return []
        with UnitOfWork(self.session_factory) as uow:
            return list(recorder(uow, sent, message_id, error))

    def saved_language(self, platform: str, user_external_id: str) -> str | None:
        """The language a staff member chose with /lang, if any: an adapter need not ask its platform
        for a language hint then (the choice wins anyway)."""
        with UnitOfWork(self.session_factory) as uow:
            user = users.user_for_identity(uow, users.PlatformId(platform, user_external_id))
            return user.language if user is not None and user.active else None

    def unreachable(self, to: Destination, reason: str) -> None:
        """A send to ``to`` was refused for good (blocked the bot, chat not found): block the chat and
        opt out the customers there, in one transaction (crm_core.services.reachability)."""
        with UnitOfWork(self.session_factory) as uow:
            reachability.recipient_unreachable(uow, to.platform, to.conversation, reason)

    def chat_moved(self, to: Destination, new_conversation: str) -> None:
        """The chat ``to`` has a new id (a group became a supergroup): move every reference to it."""
        with UnitOfWork(self.session_factory) as uow:
            reachability.chat_moved(uow, to.platform, to.conversation, new_conversation)

    # -- step-by-step forms (bot.conversation) -------------------------------------------------------

    def ask(self, origin: Origin, form: Form, *, desk: SupportDesk | None = None) -> Question | Reply:
        """Begin asking ``form`` one question at a time (replacing a form in progress): the first question,
        or, when nothing needs asking, the reply of the submitted form."""
        with UnitOfWork(self.session_factory) as uow:
            step = conversation.start(uow, origin, form)
        return self.advance(origin, step, desk=desk)

    def advance(self, origin: Origin, step: Question | Filled, *, desk: SupportDesk | None = None) -> Question | Reply:
        """The next thing to show for a form step: the question itself, or, for a filled form, the reply of
        its command (inputs it got wrong are asked again; a reply asking for another form starts that)."""
        while isinstance(step, Filled):
            submitted = Request(origin=origin, text=step.form.command, form_values=step.values, can_ask=True)
            try:
                reply = self.handle(submitted, desk=desk)
            except FormRejected as rejected:
                with UnitOfWork(self.session_factory) as uow:
                    question = conversation.restart_with_errors(uow, origin, step, rejected.errors)
                return question or error_reply("; ".join(rejected.errors.values()))
            if reply.form is None:
                return reply
            with UnitOfWork(self.session_factory) as uow:
                step = conversation.start(uow, origin, reply.form)
        return step

    def choose(self, request: Request, session_id: int, asked: int, choice: str) -> Chosen | Stale:
        """A choice pressed under question ``asked`` of form session ``session_id``; AlreadyHandled for a
        repeated delivery."""
        origin = request.origin
        actor = Actor(user_id=None, name=origin.display_name or origin.user_external_id, platform=origin.platform)
        with UnitOfWork(self.session_factory, actor) as uow:
            self._record_once(uow, request)
            return conversation.choose(uow, request.origin, session_id, asked, choice)

    # -- helpers -----------------------------------------------------------------------------------------

    def _context(self, uow: UnitOfWork, request: Request, desk: SupportDesk | None) -> Context:
        caller = self._caller(uow, request.origin, desk)
        request.caller = caller
        uow.act_as(
            Actor(
                user_id=caller.user_id,
                name=caller.name,
                platform=request.origin.platform,
                role=caller.role,
                edit_scope=self.settings.edit_scope,
            )
        )
        return Context(
            uow=uow,
            caller=caller,
            settings=self.settings,
            router=self.router,
            platform=request.origin.platform,
            plugins=self.plugins,
            desk=desk,
        )

    @staticmethod
    def _record_once(uow: UnitOfWork, request: Request) -> None:
        if request.inbox_key is not None and not inbox.complete(uow, request.origin.platform, request.inbox_key):
            raise AlreadyHandled(request.inbox_key)

    def _answer_once(
        self, request: Request, reply: Reply, queue: OutboxQueue | None = None, what: str = "reply"
    ) -> Reply:
        """An answer given without running a command still uses up the delivery's inbox key (and, with
        ``queue``, goes into the outbox in that same transaction)."""
        if request.inbox_key is not None or queue is not None:
            with UnitOfWork(self.session_factory) as uow:
                self._record_once(uow, request)
                if queue is not None:
                    answer = self._answer(request, reply)
                    queue.add(uow, [replace(answer, key=request.key_for(what))])
        return reply

    def _too_long(self, request: Request) -> str | None:
        limit = self.settings.max_input_chars
        size = len(request.text) + sum(len(v or "") for v in (request.form_values or {}).values())
        if size > limit:
            return _(
                "That is too long ({size} characters; the limit is {limit}). Please shorten it.",
                size=format_number(size),
                limit=format_number(limit),
            )
        return None

    def _caller(self, uow: UnitOfWork, origin: Origin, desk: SupportDesk | None = None) -> Caller:
        """Staff (an active CRM user) with their role; else a customer, where customers write to us (a
        support desk) or whose chat the CRM knows; else someone unknown, with CHATCRM_UNKNOWN_ROLE."""
        # The id comes from the platform itself, so it is looked up as it is (no form check).
        platform_id = users.PlatformId(origin.platform, origin.user_external_id)
        user = users.user_for_identity(uow, platform_id)
        if user is None or not user.active:
            chat = customer_chats.chat_for(uow, platform_id) if platform_id else None
            if chat is not None or desk is not None:
                saved = chat.customer.language if chat is not None else None
                return Caller(
                    user_id=None,
                    name=origin.display_name or origin.user_external_id,
                    role=Role.CUSTOMER.value,
                    customer_id=chat.customer_id if chat is not None else None,
                    language=i18n.switch_language(i18n.resolve_language(saved, origin.language_hint)),
                )
            role = self.settings.unknown_role
            return Caller(
                user_id=None,
                name=origin.display_name or origin.user_external_id,
                role=role.value if role else None,
                language=i18n.current_language(),
            )
        return Caller(
            user_id=user.id,
            name=user.name,
            role=user.role.value if user.role else None,
            timezone=user.timezone,
            language=i18n.switch_language(i18n.resolve_language(user.language, origin.language_hint)),
        )

    def _run(self, command: Command, arg_text: str, request: Request, ctx: Context) -> Reply:
        if not ctx.can(command.permission):
            raise Forbidden(self._denied_message(ctx.caller, command.name))
        if request.form_values is not None:
            parsed = parse_form(command.params, request.form_values, extra_options=command.extra_options)
        else:
            parsed = parse_line(command.params, arg_text, extra_options=command.extra_options)
        if request.wants_form or (parsed.missing and (request.can_ask or request.from_button)):
            return Reply(form=form_for(command, request, ctx, parsed.args))
        if parsed.missing:
            names = ", ".join(f"<{p.placeholder}>" if p.positional else f"{p.name}=" for p in parsed.missing)
            raise UsageError(_("missing {names}", names=names), parsed.missing[0].name)
        request.args = parsed.args
        request.extra = parsed.extra
        return command.handler(request, ctx)

    @staticmethod
    def _denied_message(caller: Caller, command: str) -> str:
        """What a caller is told of a command (``deal new``) or group (``digest``) their role does not allow."""
        if caller.user_id is None or caller.role is None:
            return _("You can't use /{command} yet: ask a chatcrm admin to give you a role (/role).", command=command)
        return _(
            "Your role ({role}) can't use /{command}. Ask an admin if you need it.",
            role=role_name(caller.role),
            command=command,
        )


def _in_language(reply: Reply) -> Reply:
    """``reply`` marked with the language it was written in, for the adapter that renders it, and the
    markers erased customers leave in data ("Erased customer #12", "[erased]") shown in that language."""
    if reply.is_empty:
        return reply
    with i18n.use_language(reply.language or i18n.current_language()):
        reply = reply.with_texts(erasure.shown)
    if reply.language is not None:
        return reply
    language = i18n.current_language()
    form = replace(reply.form, language=language) if reply.form is not None and reply.form.language is None else None
    return replace(reply, language=language, form=form or reply.form)


def _leaves_form(request: Request, command: Command | None) -> bool:
    """Typing a new command, even an unknown one (not a button, a form submission or /cancel), leaves a
    form in progress."""
    typed = request.form_values is None and not request.from_button
    return typed and (command is None or command.path != ("cancel",))


def _sentence(message: str) -> str:
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?", "。", "！", "？")) else message + _(".")
