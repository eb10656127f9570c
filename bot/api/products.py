"""``/products``: the catalogue. List (cursor pages), get, create and PATCH through
``crm_core.services.products``; reading needs ``customers:read``, changing ``orders:write``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from bot.api import etags
from bot.api.auth import Principal, app_of, need, unit_of_work
from bot.api.etags import check_if_match, with_etag
from bot.api.paging import Page, PageParams, page_params, paginate
from bot.api.types import Id
from bot.roles import Permission
from crm_core.models import Product
from crm_core.services import products
from crm_core.uow import UnitOfWork

router = APIRouter(prefix="/products", tags=["products"])


class ProductOut(BaseModel):
    id: int
    sku: str
    name: str
    category: str | None
    price_cents: int
    currency: str
    active: bool
    created_at: datetime
    updated_at: datetime


class ProductPatch(BaseModel):
    """JSON merge patch: only the fields given change; null clears the category."""

    model_config = ConfigDict(extra="forbid")

    sku: str | None = Field(None, min_length=1, max_length=64)
    name: str | None = Field(None, min_length=1, max_length=300)
    category: str | None = Field(None, max_length=100)
    price_cents: int | None = Field(None, ge=0, le=products.MAX_PRICE)
    currency: str | None = Field(None, pattern=r"^[A-Za-z]{3}$")
    active: bool | None = None


class ProductIn(ProductPatch):
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=300)
    currency: str | None = Field(None, pattern=r"^[A-Za-z]{3}$", description="Default: the CRM's currency")


def render(product: Product) -> ProductOut:
    return ProductOut.model_validate(product, from_attributes=True)


def _one(uow: UnitOfWork, product_id: int, *, lock: bool = False) -> ProductOut:
    if lock:
        etags.lock(uow.session, Product, product_id)
    return render(products.get_product(uow, product_id))


@router.get("", response_model=Page[ProductOut], summary="List products")
def list_products(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    sku: str | None = Query(None, max_length=64),
    category: str | None = Query(None, max_length=100),
    active: bool | None = Query(None),
    _who: Principal = Depends(need(Permission.CUSTOMERS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    statement = sa.select(Product)
    if sku is not None:
        statement = statement.where(Product.sku == sku)
    if category is not None:
        statement = statement.where(Product.category == category)
    if active is not None:
        statement = statement.where(Product.active.is_(active))
    return paginate(uow.session, statement, Product.id, page, request, response, lambda rows: [render(p) for p in rows])


@router.get("/{product_id}", response_model=ProductOut, summary="One product (with an ETag)")
def get_product(
    product_id: Id,
    response: Response,
    _who: Principal = Depends(need(Permission.CUSTOMERS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    return with_etag(response, _one(uow, product_id))


@router.post("", response_model=ProductOut, status_code=201, summary="Add a product")
def create_product(
    body: ProductIn,
    request: Request,
    response: Response,
    _who: Principal = Depends(need(Permission.ORDERS_WRITE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    fields = body.model_dump(exclude_unset=True, exclude={"sku", "name"})
    if fields.get("currency") is None:
        fields["currency"] = app_of(request).settings.currency
    product = products.create_product(uow, body.sku, body.name, fields)
    response.headers["Location"] = str(request.url_for("get_product", product_id=product.id))
    return with_etag(response, _one(uow, product.id))


@router.patch("/{product_id}", response_model=ProductOut, summary="Change a product (JSON merge patch)")
def patch_product(
    product_id: Id,
    body: ProductPatch,
    response: Response,
    if_match: str | None = Header(None, description="The ETag you read: 412 if the product changed since"),
    _who: Principal = Depends(need(Permission.ORDERS_WRITE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    check_if_match(if_match, _one(uow, product_id, lock=True))
    changes = body.model_dump(exclude_unset=True)
    if changes:
        products.update_product(uow, product_id, changes)
    return with_etag(response, _one(uow, product_id))
