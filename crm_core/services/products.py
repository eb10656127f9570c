"""Products: the catalogue orders refer to (by id, or by SKU from other systems)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from crm_core import db, text
from crm_core.errors import Conflict, NotFound, ValidationError
from crm_core.i18n import _
from crm_core.models import Product
from crm_core.uow import UnitOfWork

MAX_NAME = 300
MAX_PRICE = 10**13
_SKU = re.compile(r"^[^\s].{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
FIELDS = ("sku", "name", "category", "price_cents", "currency", "active")


def get_product(uow: UnitOfWork, product_id: int) -> Product:
    product = uow.session.get(Product, product_id)
    if product is None:
        raise NotFound(_("there is no product #{id}", id=product_id))
    return product


def ids_by_sku(uow: UnitOfWork, skus: set[str]) -> dict[str, int]:
    """Product ids of the SKUs that exist (in chunks, within every database's parameter limit)."""
    wanted = sorted(skus)
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            uow.session.execute(
                sa.select(Product.sku, Product.id).where(db.one_of(uow.session, Product.sku, chunk))
            ).all()
        )
    return found


def _parse(changes: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, raw in changes.items():
        try:
            if key in ("sku", "name", "category", "currency"):
                value = text.check_text(str(raw or "").strip(), key, field=key)
                if key == "sku" and not _SKU.match(value):
                    raise ValidationError(_("a SKU is 1 to 64 characters"), field="sku")
                if key == "name" and not 1 <= len(value) <= MAX_NAME:
                    raise ValidationError(_("a product name is 1 to {limit} characters", limit=MAX_NAME), field="name")
                if key == "currency":
                    value = value.upper()
                    if not _CURRENCY.match(value):
                        raise ValidationError(_("currency is a three-letter code such as EUR"), field="currency")
                if key == "category" and len(value) > 100:
                    raise ValidationError(_("a category is at most 100 characters"), field="category")
                values[key] = value or None if key == "category" else value
            elif key == "price_cents":
                if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= MAX_PRICE:
                    raise ValidationError(_("price_cents is a whole number of cents, 0 or more"), field="price_cents")
                values[key] = raw
            elif key == "active":
                if not isinstance(raw, bool):
                    raise ValidationError(_("active is true or false"), field="active")
                values[key] = raw
            else:
                raise ValidationError(
                    _("unknown field {key} (fields: {known})", key=repr(key), known=", ".join(FIELDS)), field=key
                )
        except ValidationError as exc:
            errors[exc.field or key] = exc.message
    if errors:
        raise ValidationError("; ".join(errors.values()), field=next(iter(errors)), errors=errors)
    return values


def _check_unique_sku(uow: UnitOfWork, sku: str, product_id: int | None) -> None:
    clash = uow.session.scalars(sa.select(Product).where(Product.sku == sku, Product.id != (product_id or -1))).first()
    if clash is not None:
        raise Conflict(_("product #{id} ({name}) already has the SKU {sku}", id=clash.id, name=clash.name, sku=sku))


def create_product(uow: UnitOfWork, sku: str, name: str, fields: Mapping[str, Any] | None = None) -> Product:
    values = _parse({"sku": sku, "name": name, **(fields or {})})
    _check_unique_sku(uow, values["sku"], None)
    product = Product(**{"price_cents": 0, "active": True, **values})
    uow.session.add(product)
    uow.session.flush()
    return product


def update_product(uow: UnitOfWork, product_id: int, changes: Mapping[str, Any]) -> Product:
    product = get_product(uow, product_id)
    values = _parse(changes)
    if "sku" in values:
        _check_unique_sku(uow, values["sku"], product.id)
    for key, value in values.items():
        setattr(product, key, value)
    uow.session.flush()
    return product
