"""/note: log a note, call, email or meeting against a customer; /history: read them all, paged."""

from __future__ import annotations

from bot.args import Kind, arg, opt, rest
from bot.context import Context
from bot.handlers.common import clip, counted_position, fmt_datetime, interaction_kind_label
from bot.hookspecs import hookimpl
from bot.messages import Button, Item, Reply, Request, Section, Tone
from bot.paging import PAGE_OPTION, more_button, page_number
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import i18n
from crm_core.i18n import N_, _, ngettext, pgettext
from crm_core.models import Interaction, InteractionKind
from crm_core.services import customers, interactions

group = CommandGroup()


@group.command(
    "note",
    summary=N_("Log a note (or call, email, meeting) on a customer"),
    permission=Permission.NOTES_WRITE,
    params=[
        arg("customer", label=N_("Customer"), hint=N_("name, email or #id")),
        rest("text", label=N_("Note")),
        opt(
            "kind",
            Kind.CHOICE,
            choices=tuple(k.value for k in InteractionKind if k != InteractionKind.CHAT),
            label=N_("Kind"),
        ),
    ],
    form_title=N_("Log a note"),
)
def add_note(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    kind = InteractionKind(req.args.get("kind", InteractionKind.NOTE))
    interactions.log_interaction(ctx.uow, customer.id, req.args["text"], kind=kind)
    return Reply(
        text=_logged(kind, customer.name, customer.id),
        buttons=(Button(_("Open card"), f"/customer #{customer.id}"),),
        tone=Tone.SUCCESS,
    )


@group.command(
    "history",
    read_only=True,
    summary=N_("A customer's whole interaction log, newest first (notes, calls, emails, meetings, chat)"),
    permission=Permission.CUSTOMERS_READ,
    params=[
        arg("customer", label=N_("Customer"), hint=N_("name, email or #id")),
        opt("kind", label=N_("Kind"), hint=N_("note|call|email|meeting|chat (or several: call,note)")),
        opt("since", label=N_("Since"), hint=interactions.SINCE_EXAMPLES),
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
            " · " + ", ".join(interaction_kind_label(k) for k in kinds) if kinds else "",
            " · " + _("since {time}", time=fmt_datetime(since, tz)) if since else "",
        ]
    )
    counted = ngettext("{count} interaction", "{count} interactions", page.total, count=i18n.format_number(page.total))
    return Reply(
        title=_("History of {name} (#{id})", name=customer.name, id=customer.id),
        sections=(
            Section(
                items=tuple(_history_item(i, tz) for i in page.items),
                empty=_("Nothing logged.") if page.number == 1 else _("No more."),
            ),
        ),
        buttons=(*more_button(req, page), Button(_("Open card"), f"/customer #{customer.id}")),
        footer=counted_position(page, counted) + narrowed,
    )


def _logged(kind: InteractionKind, name: str, customer_id: int) -> str:
    if kind is InteractionKind.CALL:
        return _("Call logged on {name} (#{id}).", name=name, id=customer_id)
    if kind is InteractionKind.EMAIL:
        return _("Email logged on {name} (#{id}).", name=name, id=customer_id)
    if kind is InteractionKind.MEETING:
        return _("Meeting logged on {name} (#{id}).", name=name, id=customer_id)
    return _("Note logged on {name} (#{id}).", name=name, id=customer_id)


def _history_item(interaction: Interaction, tz: str) -> Item:
    parts = [
        fmt_datetime(interaction.occurred_at, tz),
        interaction_kind_label(interaction.kind),
        interaction.user.name if interaction.user else pgettext("interaction by", "customer"),
        interaction.channel,
    ]
    if interaction.ticket_id:
        parts.append(_("ticket #{id}", id=interaction.ticket_id))
    return Item(text=clip(interactions.shown_text(interaction), 300), detail=" · ".join(parts))


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
