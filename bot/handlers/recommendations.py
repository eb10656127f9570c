"""/recommend, /rules and /mine: what customers are likely to buy next, and why.

``/mine as_of=2011-12-09 window=365d`` mines a named stretch of an old history; without them it
mines the configured window up to now, or up to the newest order's day when the history stopped
earlier (crm_core.history).
"""

from __future__ import annotations

import dataclasses

from bot.args import Kind, arg, opt, rest
from bot.context import Context
from bot.hookspecs import hookimpl
from bot.messages import Button, Field, Item, Reply, Request, Section, Style, Tone
from bot.plugin_types import JobDefinition
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import history, i18n
from crm_core.errors import ValidationError
from crm_core.i18n import N_, _, ngettext
from crm_core.models import InteractionKind, RecommendationStatus
from crm_core.scheduling import Calendar, JobRun, parse_hhmm
from crm_core.services import customers, interactions, market_basket

group = CommandGroup()


def because_text(names: dict[int, str], because) -> str:
    items = [names.get(pid, f"#{pid}") for pid in because]
    if len(items) == 1:
        return items[0]
    return _("{items} and {last}", items=_(", ").join(items[:-1]), last=items[-1])


def _figure(value: float, digits: int) -> str:
    return i18n.format_number(value, digits=digits)


def suggestion_item(customer_id: int, suggestion: market_basket.Suggestion, names: dict[int, str]) -> Item:
    return Item(
        text=f"{names.get(suggestion.product_id, suggestion.product_id)}",
        detail=_(
            "because they bought {products} · confidence {confidence}, lift {lift}",
            products=because_text(names, suggestion.because),
            confidence=_figure(suggestion.confidence, 2),
            lift=_figure(suggestion.lift, 1),
        ),
        button=Button(_("Log as pitched"), f"/recommend pitched {customer_id} {suggestion.product_id}", Style.PRIMARY),
    )


@group.command(
    "recommend",
    summary=N_("Products a customer is likely to buy next, with the reason"),
    permission=Permission.CUSTOMERS_READ,
    params=[rest("customer", Kind.TEXT, label=N_("Customer"), max_length=200)],
)
def recommend(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    run = market_basket.latest_run(ctx.uow)
    if run is None:
        return Reply(
            text=_("No purchase patterns have been mined yet. They are mined nightly; an admin can run /mine."),
            tone=Tone.WARNING,
        )
    suggestions = market_basket.recommend(ctx.uow, customer.id)
    names = market_basket.product_names(
        ctx.uow, [s.product_id for s in suggestions] + [p for s in suggestions for p in s.because]
    )
    buttons = tuple(
        Button(
            _("Not relevant: {product}", product=names.get(s.product_id, s.product_id))[:75],
            f"/recommend dismiss {customer.id} {s.product_id}",
            Style.DANGER,
        )
        for s in suggestions
    )
    return Reply(
        title=_("Suggestions for {name}", name=customer.name),
        sections=(
            Section(
                items=tuple(suggestion_item(customer.id, s, names) for s in suggestions),
                empty=_("Nothing to suggest: no rule fits what they bought in the last 180 days."),
            ),
        ),
        buttons=buttons,
        footer=_(
            "From {rules} rules mined over {orders} orders of {window} (run #{id}).",
            rules=i18n.format_number(run.n_rules),
            orders=i18n.format_number(run.n_baskets),
            window=market_basket.run_window(run),
            id=run.id,
        ),
    )


def _feedback(req: Request, ctx: Context, status: RecommendationStatus) -> Reply:
    customer = customers.get_customer(ctx.uow, req.args["customer_id"])
    product_name = market_basket.product_names(ctx.uow, [req.args["product_id"]]).get(req.args["product_id"])
    if product_name is None:
        return Reply(text=_("There is no product #{id}.", id=req.args["product_id"]), tone=Tone.ERROR, private=True)
    market_basket.record_feedback(ctx.uow, customer.id, req.args["product_id"], status)
    if status is RecommendationStatus.PITCHED:
        interactions.log_interaction(
            # Kept in the words of the rep who logged it (their language), like a note they typed.
            ctx.uow,
            customer.id,
            _("Pitched {product} (recommended)", product=product_name),
            kind=InteractionKind.NOTE,
        )
        return Reply(
            text=_("Logged: {product} pitched to {customer}.", product=product_name, customer=customer.name),
            tone=Tone.SUCCESS,
        )
    return Reply(
        text=_("{product} will not be suggested for {customer} again.", product=product_name, customer=customer.name),
        tone=Tone.SUCCESS,
    )


_FEEDBACK_PARAMS = [
    arg("customer_id", Kind.INT, label=N_("Customer #")),
    arg("product_id", Kind.INT, label=N_("Product #")),
]


@group.command(
    "recommend pitched",
    summary=N_("Log a suggested product as pitched"),
    hidden=True,
    permission=Permission.NOTES_WRITE,
    params=_FEEDBACK_PARAMS,
)
def pitched(req: Request, ctx: Context) -> Reply:
    return _feedback(req, ctx, RecommendationStatus.PITCHED)


@group.command(
    "recommend dismiss",
    summary=N_("Never suggest this product for this customer"),
    hidden=True,
    permission=Permission.NOTES_WRITE,
    params=_FEEDBACK_PARAMS,
)
def dismiss(req: Request, ctx: Context) -> Reply:
    return _feedback(req, ctx, RecommendationStatus.NOT_RELEVANT)


@group.command(
    "rules",
    read_only=True,
    summary=N_("Top rules of which products sell together (optionally involving one product)"),
    permission=Permission.CUSTOMERS_READ,
    params=[rest("product", Kind.TEXT, required=False, label=N_("Product (SKU or name)"), max_length=200)],
    usage="[product]",
)
def rules(req: Request, ctx: Context) -> Reply:
    run = market_basket.latest_run(ctx.uow)
    if run is None:
        return Reply(text=_("No purchase patterns have been mined yet. An admin can run /mine."), tone=Tone.WARNING)
    product = market_basket.find_product(ctx.uow, req.args["product"]) if req.args.get("product") else None
    found = market_basket.rules_for_product(ctx.uow, product.id if product else None)
    names = market_basket.product_names(
        ctx.uow, [r.consequent_id for r in found] + [p for r in found for p in r.antecedent]
    )
    items = tuple(
        Item(
            text=f"{because_text(names, r.antecedent)} → {names.get(r.consequent_id)}",
            detail=ngettext(
                "confidence {confidence} · lift {lift} · support {support} ({count} order)",
                "confidence {confidence} · lift {lift} · support {support} ({count} orders)",
                r.count,
                confidence=_figure(r.confidence, 2),
                lift=_figure(r.lift, 1),
                support=_figure(r.support, 3),
                count=i18n.format_number(r.count),
            ),
        )
        for r in found
    )
    return Reply(
        title=_("Rules involving {product}", product=product.name) if product else _("Top rules"),
        sections=(Section(items=items, empty=_("No rule involves it.")),),
        footer=_(
            "Run #{id}: {rules} rules from {orders} orders of {window}.",
            id=run.id,
            rules=i18n.format_number(run.n_rules),
            orders=i18n.format_number(run.n_baskets),
            window=market_basket.run_window(run),
        ),
    )


@group.command(
    "mine",
    summary=N_("Mine the order history for rules now (admin)"),
    permission=Permission.MINING_RUN,
    params=[
        opt("as_of", Kind.DATE, label=N_("As of (last day)"), hint="2011-12-09"),
        opt("window", label=N_("Window"), hint="365d"),
    ],
)
def mine(req: Request, ctx: Context) -> Reply:
    settings = market_basket.MiningSettings.from_env(ctx.settings.extra)
    if req.args.get("window"):
        settings = dataclasses.replace(settings, window_days=history.parse_window(req.args["window"]))
    as_of = history.parse_day(req.args["as_of"]) if req.args.get("as_of") else None
    try:
        run = market_basket.run_mining(ctx.uow, settings, trigger="chat", as_of=as_of)
    except (MemoryError, ImportError) as exc:
        # The local engine's refusal of a history too big for this machine (it names the Spark
        # engine), or the Spark engine without its extra: the admin's to act on, nothing stored.
        raise ValidationError(str(exc)) from exc
    return Reply(
        title=_("Mining run #{id}", id=run.id),
        text=_(
            "Mined {orders} orders of {window}.",
            orders=i18n.format_number(run.n_baskets),
            window=market_basket.run_window(run),
        ),
        fields=(
            Field(_("Orders (baskets)"), i18n.format_number(run.n_baskets)),
            Field(_("Frequent itemsets"), i18n.format_number(run.n_itemsets)),
            Field(_("Rules"), i18n.format_number(run.n_rules)),
            Field(_("Duration"), _("{seconds} s", seconds=_figure(run.duration_ms / 1000, 2))),
            Field(
                _("Thresholds"),
                _(
                    "support {support}, confidence {confidence}, lift {lift}, max length {max_len}, window {days} days",
                    support=run.min_support,
                    confidence=run.min_confidence,
                    lift=run.min_lift,
                    max_len=run.max_len,
                    days=run.window_days,
                ),
                short=False,
            ),
        ),
        tone=Tone.SUCCESS,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]


def mine_nightly(run: JobRun) -> None:
    """Mine the order history and post each rep their customers' recommendations."""
    # Imported here: the miner's numeric stack is loaded by the job, not by every process start.
    from crm_core.services.recommendation_digest import nightly_task

    nightly_task(run)


@hookimpl
def register_jobs(settings) -> list[JobDefinition]:
    env = settings.extra
    return [
        JobDefinition(
            "mining.nightly",
            mine_nightly,
            "mine association rules from the orders and post recommendations to reps",
            trigger=Calendar(parse_hhmm(env.get("CHATCRM_MINING_AT", "02:00")), env.get("CHATCRM_TIMEZONE", "UTC")),
            misfire_grace_seconds=6 * 3600,
        )
    ]
