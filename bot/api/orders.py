"""``/orders``: list (cursor pages) and get with lines; create one order, or many at once on
``/orders/bulk`` (up to 10,000 lines a request, a 10 MB body). Both are idempotent by the order
number another system gives: a number the CRM already has is not recorded again, so a retried
request changes nothing (the single POST answers 200 with the order as it is).

Both go through ``crm_core.services.orders.record_bulk``: every order checked before anything is
written, then multi-row INSERTs (the bulk insert the order file import uses), one audit entry and one
``order.imported`` event per request."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import selectinload

from bot.api.auth import Principal, app_of, need, unit_of_work
from bot.api.etags import with_etag
from bot.api.json_body import JsonBody, json_body, json_body_openapi
from bot.api.paging import Page, PageParams, page_params, paginate
from bot.api.types import Id
from bot.roles import Permission
from crm_core.errors import ValidationError
from crm_core.models import Order, OrderKind
from crm_core.services import orders
from crm_core.uow import UnitOfWork

router = APIRouter(prefix="/orders", tags=["orders"])
BULK_PATH = "/orders/bulk"

Kind = Literal["purchase", "cancellation"]
Number = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]


class LineOut(BaseModel):
    product_id: int
    sku: str
    quantity: int
    unit_price_cents: int
    line_total_cents: int


class OrderOut(BaseModel):
    id: int
    number: str
    customer_id: int | None
    kind: Kind
    ordered_at: datetime
    currency: str
    total_cents: int
    source: str
    lines: list[LineOut]


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: Id | None = Field(None, description="The product, by id…")
    sku: str | None = Field(None, min_length=1, max_length=64, description="…or by SKU (one of the two)")
    quantity: int = Field(ge=-(10**6), le=10**6, description="Negative in a cancellation")
    unit_price_cents: int | None = Field(None, ge=0, le=10**13, description="Default: the product's price")


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: Number = Field(description="Your order number: the CRM records each number once")
    customer_id: Id | None = Field(None, description="null: an anonymous order")
    kind: Kind = "purchase"
    ordered_at: AwareDatetime | None = Field(None, description="With a UTC offset; default: now")
    currency: str | None = Field(None, pattern=r"^[A-Za-z]{3}$", description="Default: the CRM's currency")
    lines: list[LineIn] = Field(min_length=1, max_length=orders.MAX_BULK_LINES)


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    orders: list[OrderIn] = Field(min_length=1, max_length=orders.MAX_BULK_LINES)


class BulkItem(BaseModel):
    number: str
    id: int
    # false: the CRM had this number already and left it alone.
    created: bool


class BulkOut(BaseModel):
    created: int
    unchanged: int
    lines_created: int
    orders: list[BulkItem]


def render(order: Order) -> OrderOut:
    return OrderOut(
        id=order.id,
        number=order.number,
        customer_id=order.customer_id,
        kind=order.kind.value,  # type: ignore[arg-type]
        ordered_at=order.ordered_at,
        currency=order.currency,
        total_cents=order.total_cents,
        source=order.source,
        lines=[
            LineOut(
                product_id=line.product_id,
                sku=line.product.sku,
                quantity=line.quantity,
                unit_price_cents=line.unit_price_cents,
                line_total_cents=line.line_total_cents,
            )
            for line in order.lines
        ],
    )


def _request(body: OrderIn) -> orders.OrderRequest:
    return orders.OrderRequest(
        number=body.number,
        customer_id=body.customer_id,
        kind=OrderKind(body.kind),
        ordered_at=body.ordered_at,
        currency=body.currency,
        # The validated lines as they are (orders.LineLike): no second object per line.
        lines=body.lines,
    )


@router.get("", response_model=Page[OrderOut], summary="List orders")
def list_orders(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    customer_id: Id | None = Query(None),
    number: str | None = Query(None, max_length=64),
    since: AwareDatetime | None = Query(None, description="Ordered at or after this time (with a UTC offset)"),
    _who: Principal = Depends(need(Permission.CUSTOMERS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    statement = sa.select(Order).options(selectinload(Order.lines))
    if customer_id is not None:
        statement = statement.where(Order.customer_id == customer_id)
    if number is not None:
        statement = statement.where(Order.number == number)
    if since is not None:
        statement = statement.where(Order.ordered_at >= since)
    return paginate(uow.session, statement, Order.id, page, request, response, lambda rows: [render(o) for o in rows])


@router.get("/{order_id}", response_model=OrderOut, summary="One order with its lines")
def get_order(
    order_id: Id,
    response: Response,
    _who: Principal = Depends(need(Permission.CUSTOMERS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    return with_etag(response, render(orders.get_order(uow, order_id)))


@router.post(
    "",
    response_model=OrderOut,
    status_code=201,
    summary="Record an order (200 with the order as it is if its number is known already)",
)
def create_order(
    body: OrderIn,
    request: Request,
    response: Response,
    _who: Principal = Depends(need(Permission.ORDERS_WRITE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    existing = orders.find_by_number(uow, body.number)
    if existing is None:
        result = _bulk(uow, request, [body])
        order = orders.get_order(uow, result.ids[body.number])
    else:
        response.status_code = 200
        order = existing
    response.headers["Location"] = str(request.url_for("get_order", order_id=order.id))
    return with_etag(response, render(order))


@router.post(
    "/bulk",
    response_model=BulkOut,
    summary="Record many orders at once (up to 10,000 lines; numbers the CRM knows are left alone)",
    # The body is read from its bytes (bot.api.json_body: a 1.3 MB body validates several times
    # faster), and declared here as FastAPI declares a `body: BulkIn` parameter.
    openapi_extra=json_body_openapi(BulkIn),
)
def create_orders(
    request: Request,
    body: JsonBody[BulkIn] = Depends(json_body(BulkIn)),
    _who: Principal = Depends(need(Permission.ORDERS_WRITE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    result = _bulk(uow, request, body.value.orders)
    return BulkOut(
        created=len(result.created),
        unchanged=len(result.ids) - len(result.created),
        lines_created=result.lines,
        orders=[BulkItem(number=n, id=i, created=n in result.created) for n, i in result.ids.items()],
    )


def _bulk(uow: UnitOfWork, request: Request, bodies: list[OrderIn]) -> orders.BulkResult:
    source = uow.actor.platform or "api"
    try:
        return orders.record_bulk(
            uow, [_request(b) for b in bodies], currency=app_of(request).settings.currency, source=source
        )
    except ValidationError as exc:
        if len(bodies) == 1 and exc.errors:
            # One order: name the fields as its body does (lines[0].sku, not orders[0].lines[0].sku).
            errors = {name.removeprefix("orders[0]."): message for name, message in exc.errors.items()}
            raise ValidationError(
                exc.message.removeprefix("orders[0]."), field=next(iter(errors)), errors=errors
            ) from None
        raise
