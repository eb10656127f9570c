"""The dispatcher: one inbound request in, one reply out, in one transaction.

It resolves who is asking, finds the command, checks the role, parses the arguments (or asks
for missing ones with a form), runs the handler inside a unit of work, and turns every failure
into a short message: a user error gets the usage line; anything unexpected gets
"something went wrong (ref ...)" while the traceback is logged under that reference. Any
failure rolls the transaction back, so nothing half-written stays in the database.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from bot.args import FormErrors, UsageError, parse_form, parse_line
from bot.context import Context
from bot.forms import form_for
from bot.messages import Caller, Origin, Reply, Request, Tone
from bot.router import Command, Router
from bot.settings import Settings
from crm_core import inbox
from crm_core.actor import Actor
from crm_core.errors import CrmError, Forbidden, ValidationError
from crm_core.services import users
from crm_core.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.plugins import Plugins

log = logging.getLogger("chatcrm.dispatch")


class AlreadyHandled(Exception):
    """The request's ``inbox_key`` was handled before (a retried or replayed delivery): nothing was done."""

    def __init__(self, key: str):
        super().__init__(f"already handled: {key}")
        self.key = key


class FormRejected(Exception):
    """A submitted form has invalid inputs; ``errors`` maps input name to message (shown inline)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def new_reference() -> str:
    return secrets.token_hex(4).upper()


def error_reply(message: str, usage: str | None = None) -> Reply:
    return Reply(text=message, footer=f"Usage: {usage}" if usage else None, tone=Tone.ERROR, private=True)


def internal_error_reply(ref: str) -> Reply:
    return Reply(
        text=f"Something went wrong (ref {ref}). It has been logged; tell an admin the reference if it keeps happening.",
        tone=Tone.ERROR,
        private=True,
    )


class Dispatcher:
    def __init__(
        self, router: Router, session_factory: sessionmaker[Session], settings: Settings, plugins: Plugins
    ):
        self.router = router
        self.plugins = plugins
        self.session_factory = session_factory
        self.settings = settings

    def handle(self, request: Request) -> Reply:
        """Run one request. With a form submission, invalid inputs raise FormRejected instead of replying;
        a request whose ``inbox_key`` was handled before raises AlreadyHandled and changes nothing."""
        too_long = self._too_long(request)
        if too_long:
            return self._answer_once(request, error_reply(too_long))
        try:
            route = self.router.route(request.text)
        except UsageError as exc:
            return self._answer_once(request, error_reply(f"I could not read that command: {exc.message}."))
        command = route.command if route else self.router.get("help")
        arg_text = route.arg_text if route else ""
        try:
            with UnitOfWork(self.session_factory) as uow:
                # Insert-first, in this request's transaction: a rolled-back attempt leaves no key.
                self._record_once(uow, request)
                caller = self._caller(uow, request.origin)
                request.caller = caller
                uow.act_as(Actor(user_id=caller.user_id, name=caller.name, platform=request.origin.platform))
                ctx = Context(
                    uow=uow,
                    caller=caller,
                    settings=self.settings,
                    router=self.router,
                    platform=request.origin.platform,
                    plugins=self.plugins,
                )
                if route is None:
                    reply = command.handler(replace(request, args={}), ctx)
                    return replace(
                        reply,
                        title=f"I don't know {request.text.split()[0]!r}. Here is what you can use:",
                        tone=Tone.WARNING,
                        private=True,
                    )
                return self._run(command, arg_text, request, ctx)
        except AlreadyHandled:
            raise
        except FormErrors as exc:
            if request.form_values is not None:
                raise FormRejected(exc.errors) from None
            return error_reply(exc.message, command.usage)
        except UsageError as exc:
            return error_reply(f"{_sentence(exc.message)}", command.usage)
        except ValidationError as exc:
            if request.form_values is not None and exc.errors:
                raise FormRejected(exc.errors) from None
            return error_reply(_sentence(exc.message), command.usage)
        except Forbidden as exc:
            return error_reply(_sentence(exc.message))
        except CrmError as exc:
            return error_reply(_sentence(exc.message))
        except Exception:
            ref = new_reference()
            log.exception(
                "unhandled error ref=%s platform=%s user=%s command=%r",
                ref,
                request.origin.platform,
                request.origin.user_external_id,
                request.text[:200],
            )
            return internal_error_reply(ref)

    @staticmethod
    def _record_once(uow: UnitOfWork, request: Request) -> None:
        if request.inbox_key is not None and not inbox.first_time(uow, request.origin.platform, request.inbox_key):
            raise AlreadyHandled(request.inbox_key)

    def _answer_once(self, request: Request, reply: Reply) -> Reply:
        """An answer given without running a command still uses up the delivery's inbox key."""
        if request.inbox_key is not None:
            with UnitOfWork(self.session_factory) as uow:
                self._record_once(uow, request)
        return reply

    def _too_long(self, request: Request) -> str | None:
        limit = self.settings.max_input_chars
        size = len(request.text) + sum(len(v or "") for v in (request.form_values or {}).values())
        if size > limit:
            return f"That is too long ({size:,} characters; the limit is {limit:,}). Please shorten it."
        return None

    def _caller(self, uow: UnitOfWork, origin: Origin) -> Caller:
        # The id comes from the platform itself, so it is looked up as it is (no form check).
        user = users.user_for_identity(uow, users.PlatformId(origin.platform, origin.user_external_id))
        if user is None or not user.active:
            role = self.settings.unknown_role
            return Caller(
                user_id=None, name=origin.display_name or origin.user_external_id, role=role.value if role else None
            )
        return Caller(
            user_id=user.id,
            name=user.name,
            role=user.role.value if user.role else None,
            timezone=user.timezone,
            language=user.language,
        )

    def _run(self, command: Command, arg_text: str, request: Request, ctx: Context) -> Reply:
        if not ctx.can(command.permission):
            raise Forbidden(self._denied_message(ctx.caller, command))
        if request.form_values is not None:
            parsed = parse_form(command.params, request.form_values, extra_options=command.extra_options)
        else:
            parsed = parse_line(command.params, arg_text, extra_options=command.extra_options)
        if request.wants_form or (parsed.missing and (request.can_ask or request.from_button)):
            return Reply(form=form_for(command, request, ctx, parsed.args))
        if parsed.missing:
            names = ", ".join(f"<{p.name}>" if p.positional else f"{p.name}=" for p in parsed.missing)
            raise UsageError(f"missing {names}", parsed.missing[0].name)
        request.args = parsed.args
        request.extra = parsed.extra
        return command.handler(request, ctx)

    @staticmethod
    def _denied_message(caller: Caller, command: Command) -> str:
        if caller.user_id is None or caller.role is None:
            return f"You can't use /{command.name} yet: ask a chatcrm admin to give you a role (/role)."
        return f"Your role ({caller.role}) can't use /{command.name}. Ask an admin if you need it."


def _sentence(message: str) -> str:
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."
