"""/lang: the language chatcrm answers you in.

``/lang`` shows it and where it comes from; ``/lang zh`` or ``/lang en`` saves your choice;
``/lang auto`` forgets it, so your chat app's language (Telegram's, Slack's) decides again, then
CHATCRM_LANGUAGE. A customer writing to the bot can choose too: it is saved on their customer
record, which is also the language of the campaigns and support answers they get.
"""

from __future__ import annotations

from bot.args import Kind, arg
from bot.context import Context
from bot.hookspecs import hookimpl
from bot.messages import Reply, Request, Tone
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import i18n
from crm_core.errors import ValidationError
from crm_core.i18n import N_, _
from crm_core.models import Customer
from crm_core.services import users

group = CommandGroup()
_AUTO = "auto"


@group.command(
    "lang",
    summary=N_("Show or choose the language chatcrm answers you in"),
    permission=Permission.HELP,
    params=[arg("language", Kind.TEXT, required=False, label=N_("Language"), hint="zh, en, auto", max_length=10)],
    usage="[zh | en | auto]",
)
def lang(req: Request, ctx: Context) -> Reply:
    wanted = (req.args.get("language") or "").strip().lower()
    if not wanted:
        return _show(req, ctx)
    choice = None if wanted == _AUTO else i18n.supported(wanted)
    if wanted != _AUTO and choice is None:
        raise ValidationError(
            _(
                "{language} is not a language I speak; choose one of {choices}, or auto.",
                language=repr(wanted),
                choices=", ".join(i18n.LANGUAGES),
            )
        )
    saved = _save(ctx, choice)
    if not saved:
        raise ValidationError(_("I don't know you yet, so there is nowhere to save a language."))
    # The answer is already in the new language.
    i18n.switch_language(i18n.resolve_language(choice, req.origin.language_hint))
    if choice is None:
        return Reply(text=_("I will follow your chat app's language again."), tone=Tone.SUCCESS, private=True)
    return Reply(
        text=_("From now on I answer you in {name}.", name=i18n.LANGUAGES[choice]), tone=Tone.SUCCESS, private=True
    )


def _save(ctx: Context, choice: str | None) -> bool:
    if ctx.caller.user_id is not None:
        users.set_language(ctx.uow, ctx.caller.user_id, choice)
        return True
    if ctx.caller.customer_id is not None:
        customer = ctx.uow.session.get(Customer, ctx.caller.customer_id)
        if customer is not None:
            customer.language = choice
            return True
    return False


def _show(req: Request, ctx: Context) -> Reply:
    current = i18n.current_language()
    name = i18n.LANGUAGES.get(current, current)
    if _saved(ctx):
        source = _("your choice")
    elif i18n.supported(req.origin.language_hint):
        source = _("your chat app's language")
    else:
        source = _("the company default")
    return Reply(
        text=_("I answer you in {name} ({source}).", name=name, source=source),
        footer=_("Change it with /lang zh or /lang en; /lang auto follows your chat app."),
        private=True,
    )


def _saved(ctx: Context) -> bool:
    if ctx.caller.user_id is not None:
        user = users.find_user(ctx.uow, f"#{ctx.caller.user_id}")
        return user.language is not None
    if ctx.caller.customer_id is not None:
        customer = ctx.uow.session.get(Customer, ctx.caller.customer_id)
        return customer is not None and i18n.supported(customer.language) is not None
    return False


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
