"""/note: log a note, call, email or meeting against a customer."""

from __future__ import annotations

from bot.args import Kind, arg, opt, rest
from bot.context import Context
from bot.hookspecs import hookimpl
from bot.messages import Button, Reply, Request, Tone
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core.models import InteractionKind
from crm_core.services import customers, interactions

group = CommandGroup()


@group.command(
    "note",
    summary="Log a note (or call, email, meeting) on a customer",
    permission=Permission.NOTES_WRITE,
    params=[
        arg("customer", label="Customer", hint="name, email or #id"),
        rest("text", label="Note"),
        opt("kind", Kind.CHOICE, choices=tuple(k.value for k in InteractionKind if k != InteractionKind.CHAT)),
    ],
    form_title="Log a note",
)
def add_note(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    kind = InteractionKind(req.args.get("kind", InteractionKind.NOTE))
    interactions.log_interaction(ctx.uow, customer.id, req.args["text"], kind=kind)
    return Reply(
        text=f"{kind.capitalize()} logged on {customer.name} (#{customer.id}).",
        buttons=(Button("Open card", f"/customer #{customer.id}"),),
        tone=Tone.SUCCESS,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
