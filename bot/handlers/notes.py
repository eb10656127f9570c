"""/note: log a note, call, email or meeting against a customer; /history: read them all, paged."""

from __future__ import annotations

from bot.args import Kind, arg, opt, rest
from bot.context import Context
from bot.handlers.common import clip, fmt_datetime
from bot.hookspecs import hookimpl
from bot.messages import Button, Item, Reply, Request, Section, Tone
from bot.paging import PAGE_OPTION, more_button, page_number, position
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core.models import Interaction, InteractionKind
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


@group.command(
    "history",
    summary="A customer's whole interaction log, newest first (notes, calls, emails, meetings, chat)",
    permission=Permission.CUSTOMERS_READ,
    params=[
        arg("customer", label="Customer", hint="name, email or #id"),
        opt("kind", label="Kind", hint="|".join(k.value for k in InteractionKind) + " (or several: call,note)"),
        opt("since", label="Since", hint=interactions.SINCE_EXAMPLES),
        PAGE_OPTION,
    ],
)
def history(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    tz = ctx.caller.timezone
    kinds = interactions.parse_kinds(req.args["kind"]) if "kind" in req.args else []
    since = interactions.parse_since(req.args["since"], tz) if "since" in req.args else None
    page = interactions.history_page(ctx.uow, customer.id, page_number(req), kinds=kinds, since=since)
    narrowed = "".join(
        [
            f" · {', '.join(kinds)}" if kinds else "",
            f" · since {fmt_datetime(since, tz)}" if since else "",
        ]
    )
    return Reply(
        title=f"History of {customer.name} (#{customer.id})",
        sections=(
            Section(
                items=tuple(_history_item(i, tz) for i in page.items),
                empty="Nothing logged." if page.number == 1 else "No more.",
            ),
        ),
        buttons=(*more_button(req, page), Button("Open card", f"/customer #{customer.id}")),
        footer=position(page, "interaction(s)") + narrowed,
    )


def _history_item(interaction: Interaction, tz: str) -> Item:
    who = interaction.user.name if interaction.user else "customer"
    ticket = f" · ticket #{interaction.ticket_id}" if interaction.ticket_id else ""
    return Item(
        text=clip(interaction.text, 300),
        detail=f"{fmt_datetime(interaction.occurred_at, tz)} · {interaction.kind} · {who} · {interaction.channel}{ticket}",
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
