"""/link: pair a chat account (Telegram, Slack, console) with a CRM user by a one-time code.

``/link`` (in a private chat) gives you a code; an admin's ``/link <user>`` gives one for someone
else; ``/link <code>`` sent privately to the bot on the other platform pairs that account.
"""

from __future__ import annotations

from bot.args import Kind, rest
from bot.context import Context
from bot.hookspecs import hookimpl
from bot.messages import Field, Reply, Request, Tone
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import platforms
from crm_core.errors import Forbidden, ValidationError
from crm_core.i18n import N_, _, ngettext
from crm_core.services import link_codes, users

group = CommandGroup()
_MINUTES = int(link_codes.CODE_TTL.total_seconds() // 60)


@group.command(
    "link",
    summary=N_("Link a chat account to your CRM user: get a one-time code, then send it to the bot privately"),
    permission=Permission.HELP,
    params=[rest("code_or_user", Kind.TEXT, required=False, label=N_("Code (admins: or a user)"), max_length=200)],
    usage="[code | user]",
)
def link(req: Request, ctx: Context) -> Reply:
    argument = (req.args.get("code_or_user") or "").strip()
    if argument and link_codes.looks_like_code(argument):
        return _redeem(req, ctx, argument)
    if not req.origin.is_private:
        # A code in a shared channel could be used by anyone reading it.
        return Reply(
            text=_("Ask me for a link code in a private chat with the bot, not here."), tone=Tone.WARNING, private=True
        )
    if not argument:
        if ctx.caller.user_id is None:
            raise ValidationError(
                _(
                    "the CRM does not know you yet, so there is nothing to link to: "
                    "ask an admin for a code (/link <you>)"
                )
            )
        user = users.find_user(ctx.uow, f"#{ctx.caller.user_id}")
        title = _("Your link code")
    else:
        if not ctx.can(Permission.USERS_MANAGE):
            raise Forbidden(_("only admins can make link codes for other users; use /link on its own for yours"))
        user = users.find_user(ctx.uow, argument)
        title = _("Link code for {name}", name=user.name)
    code = link_codes.issue(ctx.uow, user)
    if argument:
        footer = _(
            "To link an account, send /link {code} to the chatcrm bot in a private chat on that platform "
            "(e.g. Telegram). It will then act as them.",
            code=code,
        )
    else:
        footer = _(
            "To link an account, send /link {code} to the chatcrm bot in a private chat on that platform "
            "(e.g. Telegram). It will then act as you.",
            code=code,
        )
    return Reply(
        title=title,
        text=code,
        fields=(Field(_("Valid"), ngettext("{n} minute, once", "{n} minutes, once", _MINUTES)),),
        footer=footer,
        private=True,
    )


def _redeem(req: Request, ctx: Context, code: str) -> Reply:
    if not req.origin.is_private:
        withdrawn = link_codes.withdraw(ctx.uow, code, "withdrawn: posted in a shared chat")
        text = (
            _(
                "Send link codes to me in a private chat, not here. "
                "Others may have seen this one, so it no longer works: get a new code with /link."
            )
            if withdrawn
            else _("Send link codes to me in a private chat, not here.")
        )
        return Reply(text=text, tone=Tone.ERROR, private=True)
    if platforms.get(req.origin.platform) is None:
        raise ValidationError(_("accounts on {platform} cannot be linked", platform=req.origin.platform))
    platform = req.origin.platform
    user = link_codes.redeem(
        ctx.uow, code, users.PlatformId(platform, req.origin.user_external_id), req.origin.display_name
    )
    if user.role:
        text = _(
            "Linked: this {platform} account now acts as {name} (role {role}).",
            platform=platform,
            name=user.name,
            role=user.role,
        )
    else:
        text = _(
            "Linked: this {platform} account now acts as {name} (no role yet: ask an admin for one).",
            platform=platform,
            name=user.name,
        )
    return Reply(text=text, tone=Tone.SUCCESS, private=True)


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
