"""``/campaigns``: campaigns' status and report (read only; start, pause and cancel stay in chat,
where a manager confirms). The figures are ``crm_core.campaigns.reporting``'s, as ``/campaign status``
and ``/campaign report`` show them."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from bot.api.auth import Principal, need, unit_of_work
from bot.api.paging import Page, PageParams, page_params, paginate
from bot.roles import Permission
from crm_core.campaigns import reporting, service
from crm_core.models import Campaign
from crm_core.uow import UnitOfWork

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

Status = Literal["draft", "scheduled", "sending", "paused", "done", "cancelled"]


class CampaignOut(BaseModel):
    id: int
    name: str
    status: Status
    segment: str
    template: str
    language: str
    starts_at: datetime | None
    repeat: str | None
    trigger_event: str | None
    trigger_delay_minutes: int | None
    started_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Counts(BaseModel):
    recipients: int
    pending: int
    sent: int
    failed: int
    blocked: int
    opted_out: int
    cancelled: int
    opted_out_after: int
    # Orders and revenue attributed to the campaign (last touch, 14 days); none in a status. Revenue is in
    # cents per currency as the orders hold it ({"EUR": 120000, "GBP": 5000}), never added across currencies.
    orders: int
    revenue: dict[str, int]


class RunOut(BaseModel):
    number: int
    scheduled_for: datetime
    status: str
    counts: Counts


class CampaignReport(CampaignOut):
    total: Counts
    runs: list[RunOut]


def render(campaign: Campaign) -> CampaignOut:
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        status=campaign.status.value,  # type: ignore[arg-type]
        segment=service.segment_name(campaign),
        template=campaign.template,
        language=campaign.language,
        starts_at=campaign.starts_at,
        repeat=campaign.repeat,
        trigger_event=campaign.trigger_event,
        trigger_delay_minutes=campaign.trigger_delay_minutes,
        started_at=campaign.started_at,
        created_at=campaign.created_at,
        updated_at=campaign.updated_at,
    )


def _report(uow: UnitOfWork, name: str, *, attribution: bool) -> CampaignReport:
    campaign = service.get(uow, name)
    report = reporting.campaign_report(uow.session, campaign, attribution=attribution)
    return CampaignReport(
        **render(campaign).model_dump(),
        total=Counts(**asdict(report.total)),
        runs=[
            RunOut(number=r.number, scheduled_for=r.scheduled_for, status=r.status, counts=Counts(**asdict(r.counts)))
            for r in report.runs
        ],
    )


@router.get("", response_model=Page[CampaignOut], summary="List campaigns")
def list_campaigns(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    _who: Principal = Depends(need(Permission.CAMPAIGNS_DRAFT)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    return paginate(
        uow.session, sa.select(Campaign), Campaign.id, page, request, response, lambda rows: [render(c) for c in rows]
    )


@router.get("/{name}", response_model=CampaignReport, summary="A campaign's status: its runs and delivery counts")
def campaign_status(
    name: str,
    _who: Principal = Depends(need(Permission.CAMPAIGNS_DRAFT)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    return _report(uow, name, attribution=False)


@router.get(
    "/{name}/report", response_model=CampaignReport, summary="A campaign's report: delivery, opt-outs, orders, revenue"
)
def campaign_report(
    name: str,
    _who: Principal = Depends(need(Permission.CAMPAIGNS_DRAFT)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    return _report(uow, name, attribution=True)
