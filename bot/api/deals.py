"""``/deals``: list (cursor pages), get, create, and PATCH of the stage, through
``crm_core.services.deals`` as ``/deal new`` and ``/deal stage`` do (same validation, same events)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from bot.api import etags
from bot.api.auth import Principal, app_of, need, unit_of_work
from bot.api.etags import check_if_match, with_etag
from bot.api.paging import Page, PageParams, page_params, paginate
from bot.api.types import Id
from bot.roles import Permission
from crm_core.errors import ValidationError
from crm_core.models import Deal, DealStage
from crm_core.services import deals
from crm_core.uow import UnitOfWork

router = APIRouter(prefix="/deals", tags=["deals"])

Stage = Literal["lead", "qualified", "proposal", "negotiation", "won", "lost"]
OpenStage = Literal["lead", "qualified", "proposal", "negotiation"]


class DealOut(BaseModel):
    id: int
    title: str
    customer_id: int
    customer: str
    owner_id: int | None
    stage: Stage
    amount_cents: int
    currency: str
    probability: int
    expected_close_on: date | None
    closed_at: datetime | None
    lost_reason: str | None
    created_at: datetime
    updated_at: datetime


class DealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Id
    title: str = Field(min_length=1, max_length=200)
    amount_cents: int = Field(0, ge=0, le=10**15)
    currency: str | None = Field(None, pattern=r"^[A-Za-z]{3}$", description="Default: the CRM's currency")
    # A deal starts open, as in chat; close it with a PATCH of its stage.
    stage: OpenStage = "lead"
    expected_close_on: date | None = None


class DealPatch(BaseModel):
    """Moves the deal to another stage, validated as ``/deal stage`` is."""

    model_config = ConfigDict(extra="forbid")

    stage: Stage
    lost_reason: str | None = Field(None, max_length=500, description="Kept for a deal moved to lost")


def render(deal: Deal) -> DealOut:
    return DealOut(
        id=deal.id,
        title=deal.title,
        customer_id=deal.customer_id,
        customer=deal.customer.name,
        owner_id=deal.owner_id,
        stage=deal.stage.value,  # type: ignore[arg-type]
        amount_cents=deal.amount_cents,
        currency=deal.currency,
        probability=deal.probability,
        expected_close_on=deal.expected_close_on,
        closed_at=deal.closed_at,
        lost_reason=deal.lost_reason,
        created_at=deal.created_at,
        updated_at=deal.updated_at,
    )


def _one(uow: UnitOfWork, deal_id: int, *, lock: bool = False) -> DealOut:
    if lock:
        etags.lock(uow.session, Deal, deal_id)
    return render(deals.get_deal(uow, deal_id))


@router.get("", response_model=Page[DealOut], summary="List deals")
def list_deals(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    stage: Stage | None = Query(None),
    customer_id: Id | None = Query(None),
    owner_id: Id | None = Query(None),
    open: bool | None = Query(None, description="true: open deals only; false: closed only"),
    _who: Principal = Depends(need(Permission.DEALS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    statement = sa.select(Deal)
    if stage is not None:
        statement = statement.where(Deal.stage == DealStage(stage))
    if customer_id is not None:
        statement = statement.where(Deal.customer_id == customer_id)
    if owner_id is not None:
        statement = statement.where(Deal.owner_id == owner_id)
    closed = [DealStage.WON, DealStage.LOST]
    if open is True:
        statement = statement.where(Deal.stage.not_in(closed))
    elif open is False:
        statement = statement.where(Deal.stage.in_(closed))
    return paginate(uow.session, statement, Deal.id, page, request, response, lambda rows: [render(d) for d in rows])


@router.get("/{deal_id}", response_model=DealOut, summary="One deal (with an ETag)")
def get_deal(
    deal_id: Id,
    response: Response,
    _who: Principal = Depends(need(Permission.DEALS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    return with_etag(response, _one(uow, deal_id))


@router.post("", response_model=DealOut, status_code=201, summary="Open a deal")
def create_deal(
    body: DealIn,
    request: Request,
    response: Response,
    _who: Principal = Depends(need(Permission.DEALS_WRITE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    deal = deals.create_deal(
        uow,
        body.customer_id,
        body.title,
        amount_cents=body.amount_cents,
        currency=body.currency or app_of(request).settings.currency,
        stage=DealStage(body.stage),
        expected_close_on=body.expected_close_on,
    )
    response.headers["Location"] = str(request.url_for("get_deal", deal_id=deal.id))
    return with_etag(response, _one(uow, deal.id))


@router.patch("/{deal_id}", response_model=DealOut, summary="Move a deal to another stage")
def patch_deal(
    deal_id: Id,
    body: DealPatch,
    response: Response,
    if_match: str | None = Header(None, description="The ETag you read: 412 if the deal changed since"),
    _who: Principal = Depends(need(Permission.DEALS_WRITE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    check_if_match(if_match, _one(uow, deal_id, lock=True))
    if body.lost_reason is not None and body.stage != "lost":
        raise ValidationError("lost_reason goes with stage lost", field="lost_reason")
    deals.change_stage(uow, deal_id, DealStage(body.stage), body.lost_reason)
    return with_etag(response, _one(uow, deal_id))
