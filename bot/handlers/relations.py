"""/relation: link two customers with a typed, dated relationship, and end it.

Registered with the customer commands (``bot.handlers.customers``), whose card shows the
relationships from both sides; so it needs no entry point of its own.
"""

from __future__ import annotations

from bot.args import Kind, arg, opt, rest
from bot.context import Context
from bot.handlers.common import fmt_date
from bot.handlers.customers import card_reply
from bot.messages import Reply, Request, Tone
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core.i18n import N_, _
from crm_core.services import customers, relationships

group = CommandGroup()


@group.command(
    "relation",
    summary=N_("Relate two customers: the first is <type> of the other; both cards show it"),
    permission=Permission.CUSTOMERS_WRITE,
    params=[
        arg("customer", label=N_("Customer"), hint=N_("name, email or #id")),
        arg("type", Kind.CHOICE, choices=relationships.TYPES, label=N_("Type")),
        rest("other", Kind.TEXT, label=N_("Other customer"), hint=N_("name, email or #id"), max_length=200),
        opt("since", Kind.DATE, label=N_("Since"), hint=N_("YYYY-MM-DD, default today")),
    ],
    usage="<customer> <type> <other customer> [since=YYYY-MM-DD]",
    form_title=N_("Relate customers"),
)
def relate(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    other = customers.resolve_customer(ctx.uow, req.args["other"])
    type_ = relationships.parse_type(req.args["type"])
    since = relationships.parse_since(req.args["since"]) if "since" in req.args else None
    row = relationships.add_relationship(ctx.uow, customer.id, other.id, type_, started_on=since)
    seen = relationships.seen_from(row, customer.id)
    return card_reply(
        customers.get_card(ctx.uow, customer.id, timezone=ctx.caller.timezone),
        ctx,
        note=_(
            "{customer} is {relation} since {day} (relationship #{id}).",
            customer=customer.name,
            relation=relationships.describe(seen.phrase, other.name),
            day=fmt_date(row.started_on),
            id=row.id,
        ),
        tone=Tone.SUCCESS,
    )


@group.command(
    "relation end",
    summary=N_("End a relationship (it stays on record with its end date)"),
    permission=Permission.CUSTOMERS_WRITE,
    params=[arg("id", Kind.INT, label=N_("Relationship #"))],
)
def end(req: Request, ctx: Context) -> Reply:
    row = relationships.end_relationship(ctx.uow, req.args["id"])
    seen = relationships.seen_from(row, row.customer_id)
    return card_reply(
        customers.get_card(ctx.uow, row.customer_id, timezone=ctx.caller.timezone),
        ctx,
        note=_(
            "Ended relationship #{id}: {customer} {relation} ({start} – {end}).",
            id=row.id,
            customer=row.customer.name,
            relation=relationships.describe(seen.phrase, seen.other.name),
            start=fmt_date(row.started_on),
            end=fmt_date(row.ended_on),
        ),
        tone=Tone.SUCCESS,
    )
