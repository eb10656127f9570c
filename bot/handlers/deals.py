"""/deal: open deals, move them through the pipeline, list them."""

from __future__ import annotations

from dataclasses import replace

from bot.args import Kind, arg, opt, rest
from bot.context import Context
from bot.forms import form_input
from bot.handlers.common import (
    counted_position,
    custom_field_inputs,
    custom_field_rows,
    deal_close_text,
    deal_item,
    edited_inputs,
    fmt_datetime,
    form_with_fields,
    stage_label,
)
from bot.hookspecs import hookimpl
from bot.messages import Button, Field, Form, FormInput, InputKind, Reply, Request, Section, Tone
from bot.paging import PAGE_OPTION, more_button, page_number
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import clock, events, i18n
from crm_core.errors import ValidationError
from crm_core.i18n import N_, _, ngettext
from crm_core.models import DealStage, FieldEntity
from crm_core.money import format_money, parse_amount
from crm_core.services import custom_fields, customers, deals

group = CommandGroup()
STAGES = tuple(s.value for s in DealStage)
# A new deal starts in one of the open stages (a won or lost one is moved there with /deal stage).
_OPEN_STAGES = tuple(s for s in DealStage if s.is_open)
_AMOUNT_HINT = N_("e.g. 12000, 12.5k or 9,500.00 USD")


def _stage_arg(raw: str, allowed: tuple[DealStage, ...], label: str) -> DealStage:
    """The stage typed: an English word, its prefix or a Chinese alias (赢单); the args parser's
    choices would take only the English words, so stage parameters are text read here."""
    stage = deals.match_stage(raw, allowed)
    if stage is None:
        raise ValidationError(
            _(
                "{label} must be one of {choices}, not {value}",
                label=_(label),
                choices=", ".join(s.value for s in allowed),
                value=repr(raw),
            ),
            field="stage",
        )
    return stage


def _deal_reply(deal, ctx: Context, note: str | None = None, tone: Tone = Tone.INFO) -> Reply:
    tz = ctx.caller.timezone
    fields: tuple[Field, ...] = (
        Field(_("Customer"), f"{deal.customer.name} (#{deal.customer_id})"),
        Field(_("Stage"), stage_label(deal.stage)),
        Field(_("Amount"), format_money(deal.amount_cents, deal.currency)),
        Field(_("Probability"), i18n.format_percent(deal.probability / 100)),
        Field(_("Expected close"), deal_close_text(deal, tz)),
        Field(_("Owner"), deal.owner.name if deal.owner else _("unassigned")),
    )
    if deal.closed_at:
        fields += (Field(_("Closed"), fmt_datetime(deal.closed_at, tz)),)
    if deal.lost_reason and deal.stage is DealStage.LOST:
        fields += (Field(_("Lost because"), deal.lost_reason, short=False),)
    fields += custom_field_rows(ctx.uow, FieldEntity.DEAL, deal.id)
    buttons: tuple[Button, ...] = (
        Button(_("Edit"), f"/deal edit {deal.id}", opens_form=True),
        Button(_("Open customer"), f"/customer #{deal.customer_id}"),
    )
    if deal.stage.is_open:
        buttons = (Button(_("Change stage"), f"/deal stage {deal.id}", opens_form=True), *buttons)
    return Reply(
        title=_("Deal #{id}: {title}", id=deal.id, title=deal.title),
        text=note,
        fields=fields,
        buttons=buttons,
        tone=tone,
    )


@group.command(
    "deal",
    read_only=True,
    summary=N_("Show a deal"),
    permission=Permission.DEALS_READ,
    params=[arg("id", Kind.INT, label=N_("Deal #"))],
)
def show_deal(req: Request, ctx: Context) -> Reply:
    return _deal_reply(deals.get_deal(ctx.uow, req.args["id"]), ctx)


_NEW_DEAL_START = [
    arg("customer", label=N_("Customer"), hint=N_("name, email or #id")),
    rest("title", Kind.TEXT, label=N_("Title"), max_length=200),
    opt("amount", Kind.MONEY, label=N_("Amount"), hint=_AMOUNT_HINT),
    opt("close", Kind.DATE, label=N_("Expected close"), hint="YYYY-MM-DD"),
]
_STAGE_LABEL = N_("Stage")
# Typed: text read by _stage_arg (Chinese aliases too); the form offers the English choices.
_NEW_DEAL = [*_NEW_DEAL_START, opt("stage", Kind.TEXT, label=_STAGE_LABEL, max_length=40)]
_NEW_DEAL_FORM = [*_NEW_DEAL_START, opt("stage", Kind.CHOICE, choices=STAGES[:4], label=_STAGE_LABEL)]


@group.command(
    "deal new",
    summary=N_("Open a deal for a customer (custom deal fields as field=value)"),
    permission=Permission.DEALS_WRITE,
    params=_NEW_DEAL,
    # Custom deal fields come as key=value; the service refuses keys that are not fields.
    extra_options=True,
    usage="<customer> <title> [amount=…] [close=YYYY-MM-DD] [stage=…] [field=value …]",
    form=form_with_fields(FieldEntity.DEAL, N_("New deal"), "/deal new", _NEW_DEAL_FORM),
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
        stage=_stage_arg(req.args["stage"], _OPEN_STAGES, _STAGE_LABEL) if "stage" in req.args else DealStage.LEAD,
        expected_close_on=deals.parse_close_date(req.args["close"]) if "close" in req.args else None,
        fields=req.extra,
    )
    return _deal_reply(
        deal, ctx, note=_("Deal #{id} opened for {customer}.", id=deal.id, customer=customer.name), tone=Tone.SUCCESS
    )


_NEW_STAGE_LABEL = N_("New stage")
_MOVE_PARAMS = [
    arg("id", Kind.INT, label=N_("Deal #")),
    arg("stage", Kind.TEXT, label=_NEW_STAGE_LABEL, hint="|".join(STAGES), max_length=40),
    rest("reason", Kind.TEXT, required=False, label=N_("Reason (for lost deals)"), max_length=500),
]


def _stage_form(req: Request, ctx: Context, fixed: dict[str, str]) -> Form:
    """The stage as a choice of the English stage words (what the command takes)."""
    inputs = [
        form_input(replace(p, kind=Kind.CHOICE, choices=STAGES, hint=None) if p.name == "stage" else p)
        for p in _MOVE_PARAMS
        if p.name not in fixed
    ]
    return Form(title=_("Change deal stage"), command="/deal stage", inputs=tuple(inputs), fixed=fixed)


@group.command(
    "deal stage",
    summary=N_("Move a deal to another stage (a reason is kept for lost deals)"),
    permission=Permission.DEALS_WRITE,
    params=_MOVE_PARAMS,
    usage="<id> <" + "|".join(STAGES) + "> [reason]",
    form=_stage_form,
)
def move_deal(req: Request, ctx: Context) -> Reply:
    before = deals.get_deal(ctx.uow, req.args["id"]).stage
    stage = _stage_arg(req.args["stage"], tuple(DealStage), _NEW_STAGE_LABEL)
    deal = deals.change_stage(ctx.uow, req.args["id"], stage, req.args.get("reason"))
    return _deal_reply(
        deal,
        ctx,
        note=_("Moved from {before} to {after}.", before=stage_label(before), after=stage_label(deal.stage)),
        tone=Tone.SUCCESS,
    )


def _edit_form(req: Request, ctx: Context, fixed: dict[str, str]) -> Form:
    deal = deals.get_deal(ctx.uow, int(fixed["id"].lstrip("#")))
    current = custom_fields.current_text(ctx.uow, FieldEntity.DEAL, deal.id)
    amount = f"{events.decimal_amount(deal.amount_cents)} {deal.currency}"
    return Form(
        title=_("Edit deal"),
        command="/deal edit",
        inputs=(
            FormInput(name="title", label=_("Title"), initial=deal.title),
            FormInput(name="amount", label=_("Amount"), initial=amount, hint=_(_AMOUNT_HINT)),
            FormInput(
                name="close",
                label=_("Expected close"),
                kind=InputKind.DATE,
                required=False,
                initial=deal.expected_close_on.isoformat() if deal.expected_close_on else None,
            ),
            FormInput(name="owner", label=_("Owner"), required=False, initial=deal.owner.name if deal.owner else None),
            *custom_field_inputs(ctx.uow, FieldEntity.DEAL, current),
        ),
        fixed={"id": str(deal.id)},
    )


@group.command(
    "deal edit",
    summary=N_("Change a deal's title, amount, expected close, owner or custom fields (close= clears the date)"),
    permission=Permission.DEALS_WRITE,
    params=[arg("id", Kind.INT, label=N_("Deal #"))],
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
            return _deal_reply(deal, ctx, note=_("Nothing changed."))
    changed = deals.update_deal(ctx.uow, deal.id, changes)
    note = _("Updated {fields}.", fields=", ".join(changed)) if changed else _("Nothing changed.")
    return _deal_reply(deal, ctx, note=note, tone=Tone.SUCCESS)


@group.command(
    "deal list",
    read_only=True,
    summary=N_("List deals: yours (default), all open, overdue (open past their close date), all, or a customer's"),
    permission=Permission.DEALS_READ,
    params=[
        rest("scope", Kind.TEXT, required=False, label=N_("mine | open | overdue | all | <customer>"), max_length=200),
        opt("stage", Kind.TEXT, label=_STAGE_LABEL, max_length=40),
        PAGE_OPTION,
    ],
    usage="[mine|open|overdue|all|<customer>] [stage=…] [page=…]",
)
def list_deals(req: Request, ctx: Context) -> Reply:
    scope = (req.args.get("scope") or "mine").strip()
    stage = _stage_arg(req.args["stage"], tuple(DealStage), _STAGE_LABEL) if "stage" in req.args else None
    open_only = stage is None and scope.lower() != "all"
    number = page_number(req)
    today = clock.today_in(ctx.caller.timezone)
    if scope.lower() == "mine":
        if ctx.caller.user_id is None:
            return Reply(
                text=_("You have no CRM user, so no deals of your own. Try /deal list open."), tone=Tone.WARNING
            )
        found = deals.deal_page(
            ctx.uow, number, owner_id=ctx.caller.user_id, stage=stage, open_only=open_only, today=today
        )
        title = _("Your open deals") if open_only else _("Your deals")
    elif scope.lower() in ("open", "all"):
        found = deals.deal_page(ctx.uow, number, stage=stage, open_only=open_only, today=today)
        title = _("Open deals") if open_only else _("All deals")
    elif scope.lower() == "overdue":
        found = deals.deal_page(ctx.uow, number, stage=stage, overdue_only=True, today=today)
        title = _("Overdue deals (open past their close date)")
    else:
        customer = customers.resolve_customer(ctx.uow, scope)
        found = deals.deal_page(ctx.uow, number, customer_id=customer.id, stage=stage, open_only=False, today=today)
        title = _("Deals of {customer}", customer=customer.name)
    if stage is not None:
        title = _("{list} in {stage}", list=title, stage=stage_label(stage))
    # Count and amounts cover every matching deal, not only this page.
    page = found.page
    late = " · " + _("{count} overdue", count=i18n.format_number(found.overdue)) if found.overdue else ""
    total_text = " + ".join(format_money(cents, cur) for cur, cents in sorted(found.totals.items()))
    counted = ngettext("{count} deal", "{count} deals", page.total, count=i18n.format_number(page.total))
    return Reply(
        title=title,
        sections=(
            Section(
                items=tuple(deal_item(d, ctx.caller.timezone, with_customer=True) for d in page.items),
                empty=_("No deals."),
            ),
        ),
        buttons=more_button(req, page),
        footer=_("{position} · {amount} in total", position=counted_position(page, counted), amount=total_text) + late
        if page.total
        else None,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
