"""/help: the commands the caller's role may use, with their usage (for a customer: the greeting, since
what they can do is write to us); /cancel: leave a form that is being asked one question at a time."""

from __future__ import annotations

from bot import conversation
from bot.args import rest
from bot.context import Context
from bot.handlers.support import greeting
from bot.hookspecs import hookimpl
from bot.messages import Field, Item, Reply, Request, Section
from bot.roles import Permission, role_name
from bot.router import CommandGroup
from crm_core.i18n import N_, _
from crm_core.models import Role

group = CommandGroup()


@group.command(
    "help",
    read_only=True,
    summary=N_("What you can do here"),
    permission=Permission.HELP,
    params=[rest("topic", required=False, label=N_("Command"), max_length=100)],
    usage=N_("[command]"),
)
def show_help(req: Request, ctx: Context) -> Reply:
    if ctx.caller.role == Role.CUSTOMER:
        return greeting(req, ctx)
    topic = (req.args.get("topic") or "").strip().lstrip("/").lower()
    visible = ctx.router.visible_to(ctx.caller.role)
    if topic:
        matching = [c for c in visible if c.name == topic or c.path[0] == topic]
        if matching:
            return Reply(
                title=f"/{topic}",
                sections=tuple(Section(title=c.usage, text=c.description) for c in matching),
            )
    items = tuple(Item(text=c.usage, detail=c.description) for c in visible)
    if ctx.caller.role is None:
        footer = _("You have no role yet, so you can only see this help. Ask a chatcrm admin to give you one (/role).")
    else:
        footer = _("Commands also work as /crm <command>. Arguments with spaces go in quotes.")
    role = role_name(ctx.caller.role) if ctx.caller.role else _("no role")
    return Reply(
        title=_("chatcrm commands"),
        fields=(Field(_("You"), f"{ctx.caller.name} · {role}"),),
        sections=(Section(items=items),),
        footer=footer,
        private=True,
    )


@group.command(
    "cancel", summary=N_("Stop the questions of a command in progress"), permission=Permission.HELP, hidden=True
)
def cancel(req: Request, ctx: Context) -> Reply:
    cancelled = conversation.cancel(ctx.uow, req.origin)
    return Reply(text=_("Cancelled.") if cancelled else _("There is nothing to cancel."))


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
