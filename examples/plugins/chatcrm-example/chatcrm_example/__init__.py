"""chatcrm-example: a complete chatcrm plugin, to copy from.

- ``/quote <customer> <product> <qty>`` prices from the order history (the customer's own last
  price, else the median of recent orders, else the list price), says which, and logs the quote
  on the customer (permission ``quotes.create``: sales and managers).
- The customer card gets a "Quotes" section with the last quotes given.
- ``on_event``: a won deal above ``CHATCRM_EXAMPLE_BIG_DEAL`` (default 10000, in the deal's
  currency) is announced to its owner by DM, once per event.
- ``GET /plugins/example/quote?customer=…&product=…&qty=…`` answers the same quote as JSON
  (``Authorization: Bearer $CHATCRM_EXAMPLE_TOKEN``; off when that is not set).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatcrm import (
    CommandGroup,
    Context,
    Field,
    Item,
    Kind,
    PermissionGrant,
    Reply,
    Request,
    Section,
    Tone,
    arg,
    hookimpl,
)

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from bot.bootstrap import App
    from crm_core.models import Customer

__version__ = "0.1.0"

PERMISSION = "quotes.create"
# Quotes are logged as notes starting with this, which is how the card finds them again.
QUOTE_PREFIX = "Quote: "
CARD_QUOTES = 3
# How many of a customer's latest notes the card looks through for quotes.
NOTES_SCANNED = 200

group = CommandGroup()


@group.command(
    "quote",
    summary="Price a product for a customer from the order history",
    permission=PERMISSION,
    params=[
        arg("customer", label="Customer", hint="name, email or #id"),
        arg("product", label="Product", hint="SKU or name"),
        arg("qty", Kind.INT, label="Quantity"),
    ],
    form_title="Quote",
)
def quote(req: Request, ctx: Context) -> Reply:
    from chatcrm_example import pricing
    from crm_core.models import InteractionKind
    from crm_core.services import customers, interactions
    from crm_core.services.market_basket import find_product

    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    product = find_product(ctx.uow, req.args["product"])
    given = pricing.price(ctx.uow, customer, product, req.args["qty"])
    interactions.log_interaction(
        ctx.uow, customer.id, f"{QUOTE_PREFIX}{given.summary()} ({given.source.explanation})", kind=InteractionKind.NOTE
    )
    based_on = f" ({given.based_on} order lines)" if given.source is pricing.PriceSource.RECENT_MEDIAN else ""
    return Reply(
        title=f"Quote for {customer.name}",
        text=f"Priced from {given.source.explanation}{based_on}.",
        fields=(
            Field("Product", f"{product.name} ({product.sku})"),
            Field("Quantity", f"{given.quantity:,}"),
            Field("Unit price", given.unit),
            Field("Total", given.total),
        ),
        footer=f"Logged on the card of #{customer.id}.",
        tone=Tone.SUCCESS,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]


@hookimpl
def register_permissions() -> list[PermissionGrant]:
    return [PermissionGrant(PERMISSION, "price products for customers with /quote", roles=["sales", "manager"])]


@hookimpl
def card_sections(customer: Customer, ctx: Context) -> Section | None:
    """The last quotes given to this customer; nothing if there are none.

    Note texts are encrypted at rest (chatcrm's field encryption), so the database cannot pick the
    quotes by their prefix: the customer's latest notes are read, newest first, and the quotes
    among them kept."""
    import sqlalchemy as sa

    from crm_core.models import Interaction

    if not ctx.can("customers.read"):
        return None
    latest = ctx.uow.session.execute(
        sa.select(Interaction.text, Interaction.occurred_at)
        .where(Interaction.customer_id == customer.id)
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(NOTES_SCANNED)
    )
    rows = [row for row in latest if (row.text or "").startswith(QUOTE_PREFIX)][:CARD_QUOTES]
    if not rows:
        return None
    return Section(
        title="Quotes",
        items=tuple(Item(row.text.removeprefix(QUOTE_PREFIX), row.occurred_at.strftime("%Y-%m-%d")) for row in rows),
    )


@hookimpl
def on_event(event, app: App) -> None:
    from chatcrm_example.big_deals import announce_big_deal

    if event.type == "deal.won":
        announce_big_deal(event, app)


@hookimpl
def register_jobs(settings) -> list:
    """Every morning at 09:00: remind reps of quotes that led to no order within a week."""
    from datetime import time

    from chatcrm import JobDefinition
    from chatcrm_example.quote_followups import DAYS_SETTING, remind_stale_quotes
    from crm_core.scheduling import Calendar

    return [
        JobDefinition(
            "example.quote_followups",
            remind_stale_quotes,
            "remind reps of quotes with no order a week later",
            trigger=Calendar(time(9, 0), settings.extra.get("CHATCRM_TIMEZONE", "UTC")),
            args={"days": int(settings.extra.get(DAYS_SETTING, "7"))},
            misfire_grace_seconds=6 * 3600,
        )
    ]


@hookimpl
def register_routes(app: App) -> list[BaseRoute]:
    from chatcrm_example.web import routes

    return routes(app)
