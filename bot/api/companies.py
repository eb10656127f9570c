"""``/companies``: list (name search, cursor pages), get, create and PATCH, through
``crm_core.services.companies`` (the same company a customer's ``company=`` names)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from bot.api import etags
from bot.api.auth import Principal, need, unit_of_work
from bot.api.etags import check_if_match, with_etag
from bot.api.paging import Page, PageParams, page_params, paginate
from bot.api.types import Id
from bot.roles import Permission
from crm_core import text
from crm_core.models import Company
from crm_core.services import companies
from crm_core.uow import UnitOfWork

router = APIRouter(prefix="/companies", tags=["companies"])


class CompanyOut(BaseModel):
    id: int
    name: str
    domain: str | None
    country: str | None
    created_at: datetime
    updated_at: datetime


class CompanyPatch(BaseModel):
    """JSON merge patch: only the fields given change; null clears one (a name cannot be cleared)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    domain: str | None = Field(None, max_length=200, description="e.g. acme.example")
    country: str | None = Field(None, max_length=2, description="ISO 3166 code: DE, GB, US")


class CompanyIn(CompanyPatch):
    name: str = Field(min_length=1, max_length=200)


def render(company: Company) -> CompanyOut:
    return CompanyOut.model_validate(company, from_attributes=True)


def _one(uow: UnitOfWork, company_id: int, *, lock: bool = False) -> CompanyOut:
    if lock:
        etags.lock(uow.session, Company, company_id)
    return render(companies.get_company(uow, company_id))


@router.get("", response_model=Page[CompanyOut], summary="List companies")
def list_companies(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    q: str | None = Query(None, max_length=200, description="Names starting with this (any case)"),
    _who: Principal = Depends(need(Permission.CUSTOMERS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    statement = sa.select(Company)
    if q:
        statement = statement.where(Company.name_key.like(text.like_escape(q.strip().casefold()) + "%", escape="\\"))
    return paginate(uow.session, statement, Company.id, page, request, response, lambda rows: [render(c) for c in rows])


@router.get("/{company_id}", response_model=CompanyOut, summary="One company (with an ETag)")
def get_company(
    company_id: Id,
    response: Response,
    _who: Principal = Depends(need(Permission.CUSTOMERS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    return with_etag(response, _one(uow, company_id))


@router.post("", response_model=CompanyOut, status_code=201, summary="Create a company")
def create_company(
    body: CompanyIn,
    request: Request,
    response: Response,
    _who: Principal = Depends(need(Permission.CUSTOMERS_WRITE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    fields = body.model_dump(exclude_unset=True, exclude={"name"})
    company = companies.create_company(uow, body.name, fields)
    response.headers["Location"] = str(request.url_for("get_company", company_id=company.id))
    return with_etag(response, _one(uow, company.id))


@router.patch("/{company_id}", response_model=CompanyOut, summary="Change a company (JSON merge patch)")
def patch_company(
    company_id: Id,
    body: CompanyPatch,
    response: Response,
    if_match: str | None = Header(None, description="The ETag you read: 412 if the company changed since"),
    _who: Principal = Depends(need(Permission.CUSTOMERS_WRITE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    check_if_match(if_match, _one(uow, company_id, lock=True))
    changes = body.model_dump(exclude_unset=True)
    if changes:
        companies.update_company(uow, company_id, changes)
    return with_etag(response, _one(uow, company_id))
