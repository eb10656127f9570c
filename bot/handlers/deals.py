"""/deal: open deals, move them through the pipeline, list them."""

from __future__ import annotations

from bot.args import Kind, arg, opt, rest
from bot.context import Context
from bot.handlers.common import (
    custom_field_inputs,
    custom_field_rows,
    deal_close_text,
    deal_item,
    edited_inputs,
    fmt_datetime,
    form_with_fields,
)
from bot.hookspecs import hookimpl
from bot.messages import Button, Field, Form, FormInput, InputKind, Reply, Request, Section, Tone
from bot.paging import PAGE_OPTION, more_button, page_number, position
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import clock, events
from crm_core.models import DealStage, FieldEntity
from crm_core.money import format_money, parse_amount
from crm_core.services import custom_fields, customers, deals

group = CommandGroup()
STAGES = tuple(s.value for s in DealStage)


def _deal_reply(deal, ctx: Context, note: str | None = None, tone: Tone = Tone.INFO) -> Reply:
    tz = ctx.caller.timezone
    fields: tuple[Field, ...] = (
        Field("Customer", f"{deal.customer.name} (#{deal.customer_id})"),
        Field("Stage", deal.stage.value),
        Field("Amount", format_money(deal.amount_cents, deal.currency)),
        Field("Probability", f"{deal.probability}%"),
        Field("Expected close", deal_close_text(deal, tz)),
        Field("Owner", deal.owner.name if deal.owner else "unassigned"),
    )
    if deal.closed_at:
        fields += (Field("Closed", fmt_datetime(deal.closed_at, tz)),)
    if deal.lost_reason and deal.stage is DealStage.LOST:
        fields += (Field("Lost because", deal.lost_reason, short=False),)
    fields += custom_field_rows(ctx.uow, FieldEntity.DEAL, deal.id)
    buttons: tuple[Button, ...] = (
        Button("Edit", f"/deal edit {deal.id}", opens_form=True),
        Button("Open customer", f"/customer #{deal.customer_id}"),
    )
    if deal.stage.is_open:
        buttons = (Button("Change stage", f"/deal stage {deal.id}", opens_form=True), *buttons)
    return Reply(title=f"Deal #{deal.id}: {deal.title}", text=note, fields=fields, buttons=buttons, tone=tone)


@group.command(
    "deal",
    summary="Show a deal",
    permission=Permission.DEALS_READ,
    params=[arg("id", Kind.INT, label="Deal #")],
)
def show_deal(req: Request, ctx: Context) -> Reply:
    return _deal_reply(deals.get_deal(ctx.uow, req.args["id"]), ctx)


_NEW_DEAL = [
    arg("customer", label="Customer", hint="name, email or #id"),
    rest("title", Kind.TEXT, label="Title", max_length=200),
    opt("amount", Kind.MONEY, label="Amount", hint="e.g. 12000, 12.5k or 9,500.00 USD"),
    opt("close", Kind.DATE, label="Expected close", hint="YYYY-MM-DD"),
    opt("stage", Kind.CHOICE, choices=STAGES[:4], label="Stage"),
]


@group.command(
    "deal new",
    summary="Open a deal for a customer (custom deal fields as field=value)",
    permission=Permission.DEALS_WRITE,
    params=_NEW_DEAL,
    # Custom deal fields come as key=value; the service refuses keys that are not fields.
    extra_options=True,
    usage="<customer> <title> [amount=…] [close=YYYY-MM-DD] [stage=…] [field=value …]",
    form=form_with_fields(FieldEntity.DEAL, "New deal", "/deal new", _NEW_DEAL),
)
def new_deal(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    amount, currency = parse_amount(req.args["amount"]) if "amount" in req.args else (0, None)
    deal = deals.create_deal(
        ctx.uow,
        customer.id,
        req.args["title"],
        amount_cents=amount,
        currency=currency or ctx.settings.currency,
        stage=DealStage(req.args.get("stage", DealStage.LEAD)),
        expected_close_on=deals.parse_close_date(req.args["close"]) if "close" in req.args else None,
        fields=req.extra,
    )
    return _deal_reply(deal, ctx, note=f"Deal #{deal.id} opened for {customer.name}.", tone=Tone.SUCCESS)


@group.command(
    "deal stage",
    summary="Move a deal to another stage (a reason is kept for lost deals)",
    permission=Permission.DEALS_WRITE,
    params=[
        arg("id", Kind.INT, label="Deal #"),
        arg("stage", Kind.CHOICE, choices=STAGES, label="New stage"),
        rest("reason", Kind.TEXT, required=False, label="Reason (for lost deals)", max_length=500),
    ],
    form_title="Change deal stage",
)
def move_deal(req: Request, ctx: Context) -> Reply:
    before = deals.get_deal(ctx.uow, req.args["id"]).stage
    deal = deals.change_stage(ctx.uow, req.args["id"], DealStage(req.args["stage"]), req.args.get("reason"))
    return _deal_reply(deal, ctx, note=f"Moved from {before} to {deal.stage}.", tone=Tone.SUCCESS)


def _edit_form(req: Request, ctx: Context, fixed: dict[str, str]) -> Form:
    deal = deals.get_deal(ctx.uow, int(fixed["id"].lstrip("#")))
    current = custom_fields.current_text(ctx.uow, FieldEntity.DEAL, deal.id)
    amount = f"{events.decimal_amount(deal.amount_cents)} {deal.currency}"
    return Form(
        title="Edit deal",
        command="/deal edit",
        inputs=(
            FormInput(name="title", label="Title", initial=deal.title),
            FormInput(name="amount", label="Amount", initial=amount, hint="e.g. 12000, 12.5k or 9,500.00 USD"),
            FormInput(
                name="close",
                label="Expected close",
                kind=InputKind.DATE,
                required=False,
                initial=deal.expected_close_on.isoformat() if deal.expected_close_on else None,
            ),
            FormInput(name="owner", label="Owner", required=False, initial=deal.owner.name if deal.owner else None),
            *custom_field_inputs(ctx.uow, FieldEntity.DEAL, current),
        ),
        fixed={"id": str(deal.id)},
    )


@group.command(
    "deal edit",
    summary="Change a deal's title, amount, expected close, owner or custom fields (close= clears the date)",
    permission=Permission.DEALS_WRITE,
    params=[arg("id", Kind.INT, label="Deal #")],
    extra_options=True,
    usage="<id> [title=…] [amount=…] [close=YYYY-MM-DD] [owner=me|<user>|nobody] [field=value …]",
    form=_edit_form,
)
def edit_deal(req: Request, ctx: Context) -> Reply:
    deal = deals.get_deal(ctx.uow, req.args["id"])
    changes: dict[str, str | None] = dict(req.extra)
    if req.form_values is not None:
        changes = edited_inputs(_edit_form(req, ctx, {"id": str(deal.id)}), changes)
        if not changes:
            return _deal_reply(deal, ctx, note="Nothing changed.")
    changed = deals.update_deal(ctx.uow, deal.id, changes)
    note = f"Updated {', '.join(changed)}." if changed else "Nothing changed."
    return _deal_reply(deal, ctx, note=note, tone=Tone.SUCCESS)


@group.command(
    "deal list",
    summary="List deals: yours (default), all open, overdue (open past their close date), all, or a customer's",
    permission=Permission.DEALS_READ,
    params=[
        rest("scope", Kind.TEXT, required=False, label="mine | open | overdue | all | <customer>", max_length=200),
        opt("stage", Kind.CHOICE, choices=STAGES),
        PAGE_OPTION,
    ],
    usage="[mine|open|overdue|all|<customer>] [stage=…] [page=…]",
)
def list_deals(req: Request, ctx: Context) -> Reply:
    scope = (req.args.get("scope") or "mine").strip()
    stage = DealStage(req.args["stage"]) if "stage" in req.args else None
    open_only = stage is None and scope.lower() != "all"
    number = page_number(req)
    today = clock.today_in(ctx.caller.timezone)
    if scope.lower() == "mine":
        if ctx.caller.user_id is None:
            return Reply(text="You have no CRM user, so no deals of your own. Try /deal list open.", tone=Tone.WARNING)
        found = deals.deal_page(
            ctx.uow, number, owner_id=ctx.caller.user_id, stage=stage, open_only=open_only, today=today
        )
        title = "Your open deals" if open_only else "Your deals"
    elif scope.lower() in ("open", "all"):
        found = deals.deal_page(ctx.uow, number, stage=stage, open_only=open_only, today=today)
        title = "Open deals" if open_only else "All deals"
    elif scope.lower() == "overdue":
        found = deals.deal_page(ctx.uow, number, stage=stage, overdue_only=True, today=today)
        title = "Overdue deals (open past their close date)"
    else:
        customer = customers.resolve_customer(ctx.uow, scope)
        found = deals.deal_page(ctx.uow, number, customer_id=customer.id, stage=stage, open_only=False, today=today)
        title = f"Deals of {customer.name}"
    if stage is not None:
        title += f" in {stage}"
    # Count and amounts cover every matching deal, not only this page.
    page = found.page
    late = f" · {found.overdue} overdue" if found.overdue else ""
    total_text = " + ".join(format_money(cents, cur) for cur, cents in sorted(found.totals.items()))
    return Reply(
        title=title,
        sections=(
            Section(
                items=tuple(deal_item(d, ctx.caller.timezone, with_customer=True) for d in page.items),
                empty="No deals.",
            ),
        ),
        buttons=more_button(req, page),
        footer=f"{position(page, 'deal(s)')} · {total_text} in total{late}" if page.total else None,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
