"""``/segments``: saved customer filters (read only). A segment with its current ``count``, and its
members in cursor pages, through ``crm_core.services.segments`` as ``/segment show`` does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import selectinload

from bot.api import customers as customer_api
from bot.api.auth import Principal, need, unit_of_work
from bot.api.etags import with_etag
from bot.api.paging import Page, PageParams, page_params, paginate
from bot.roles import Permission
from crm_core.models import Customer, Segment
from crm_core.services import segments
from crm_core.uow import UnitOfWork

router = APIRouter(prefix="/segments", tags=["segments"])


class SegmentOut(BaseModel):
    name: str
    filter: str
    created_by_id: int | None
    created_at: datetime
    updated_at: datetime


class SegmentWithCount(SegmentOut):
    # How many customers match it now.
    count: int


def render(segment: Segment) -> SegmentOut:
    return SegmentOut.model_validate(segment, from_attributes=True)


@router.get("", response_model=Page[SegmentOut], summary="List segments")
def list_segments(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    _who: Principal = Depends(need(Permission.CAMPAIGNS_DRAFT)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    return paginate(
        uow.session, sa.select(Segment), Segment.id, page, request, response, lambda rows: [render(s) for s in rows]
    )


@router.get("/{name}", response_model=SegmentWithCount, summary="One segment with how many customers it has now")
def get_segment(
    name: str,
    response: Response,
    _who: Principal = Depends(need(Permission.CAMPAIGNS_DRAFT)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    segment = segments.get(uow, name)
    found = SegmentWithCount(**render(segment).model_dump(), count=segments.count(uow, segment))
    return with_etag(response, found)


@router.get(
    "/{name}/customers", response_model=Page[customer_api.CustomerOut], summary="The segment's customers, paged"
)
def segment_customers(
    name: str,
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    _who: Principal = Depends(need(Permission.CAMPAIGNS_DRAFT)),
    _reader: Principal = Depends(need(Permission.CUSTOMERS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    segment = segments.get(uow, name)
    statement = (
        sa.select(Customer)
        .options(selectinload(Customer.tag_rows))
        .where(Customer.id.in_(segments.customers_query(uow.session, segment)))
    )
    return paginate(
        uow.session, statement, Customer.id, page, request, response, lambda rows: customer_api.render_many(uow, rows)
    )
