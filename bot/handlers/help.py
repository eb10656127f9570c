"""/help: the commands the caller's role may use, with their usage."""

from __future__ import annotations

from bot.args import rest
from bot.context import Context
from bot.hookspecs import hookimpl
from bot.messages import Field, Item, Reply, Request, Section
from bot.roles import Permission
from bot.router import CommandGroup

group = CommandGroup()


@group.command(
    "help",
    summary="What you can do here",
    permission=Permission.HELP,
    params=[rest("topic", required=False, label="Command", max_length=100)],
    usage="[command]",
)
def show_help(req: Request, ctx: Context) -> Reply:
    topic = (req.args.get("topic") or "").strip().lstrip("/").lower()
    visible = ctx.router.visible_to(ctx.caller.role)
    if topic:
        matching = [c for c in visible if c.name == topic or c.path[0] == topic]
        if matching:
            return Reply(
                title=f"/{topic}",
                sections=tuple(Section(title=c.usage, text=c.summary) for c in matching),
            )
    items = tuple(Item(text=c.usage, detail=c.summary) for c in visible)
    footer = None
    if ctx.caller.role is None:
        footer = "You have no role yet, so you can only see this help. Ask a chatcrm admin to give you one (/role)."
    return Reply(
        title="chatcrm commands",
        fields=(Field("You", f"{ctx.caller.name} · {ctx.caller.role or 'no role'}"),),
        sections=(Section(items=items),),
        footer=footer or "Commands also work as /crm <command>. Arguments with spaces go in quotes.",
        private=True,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
