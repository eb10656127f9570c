"""Products: sku (required, the external id), name, category, price, currency, active.

A row updates the product with the same SKU and creates one otherwise (a new product needs a name).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from crm_core import text
from crm_core.errors import CrmError, ValidationError
from crm_core.i18n import _
from crm_core.importing.columns import FieldSpec
from crm_core.importing.report import ImportReport
from crm_core.importing.rows import Mapper, Row, reject
from crm_core.models import Product
from crm_core.money import parse_amount
from crm_core.uow import UnitOfWork

FIELDS = (
    FieldSpec("sku", ("StockCode", "code", "product code", "product_id"), required=True),
    FieldSpec("name", ("Description", "product", "title")),
    FieldSpec("category"),
    FieldSpec("price", ("UnitPrice", "unit price", "price_cents")),
    FieldSpec("currency"),
    FieldSpec("active"),
)
_TRUE = {"1", "true", "yes", "y", "active"}
_FALSE = {"0", "false", "no", "n", "inactive"}


def _values(row: Row) -> dict[str, Any]:
    given = row.given()
    values: dict[str, Any] = {}
    sku = given.get("sku", "")
    if not sku or len(sku) > 64:
        raise ValidationError(_("a product needs a SKU of at most 64 characters"), field="sku")
    for field, limit in (("name", 300), ("category", 100)):
        if field in given:
            values[field] = text.check_text(given[field], field, field=field)[:limit]
    if "price" in given:
        cents, currency = parse_amount(given["price"], field="price")
        values["price_cents"] = cents
        if currency:
            values["currency"] = currency
    if "currency" in given:
        currency = given["currency"].upper()
        if len(currency) != 3 or not currency.isalpha():
            raise ValidationError(
                _("'{value}' is not a currency code (e.g. EUR)", value=given["currency"]), field="currency"
            )
        values["currency"] = currency
    if "active" in given:
        flag = given["active"].lower()
        if flag not in _TRUE | _FALSE:
            raise ValidationError(_("active is yes or no, not '{value}'", value=given["active"]), field="active")
        values["active"] = flag in _TRUE
    return values


def import_rows(uow: UnitOfWork, rows: Iterator[Row], report: ImportReport, options: dict[str, Any]) -> None:
    session = uow.session
    currency = options.get("currency") or "EUR"
    for row in rows:
        try:
            with session.begin_nested():
                values = _values(row)
                sku = row.values["sku"]
                product = session.scalars(sa.select(Product).where(Product.sku == sku)).first()
                if product is None:
                    if not values.get("name"):
                        raise ValidationError(_("a new product needs a name"), field="name")
                    session.add(Product(sku=sku, **{"currency": currency, **values}))
                    session.flush()
                    report.count("created", "products")
                    continue
                changes = {k: v for k, v in values.items() if getattr(product, k) != v}
                for field, value in changes.items():
                    setattr(product, field, value)
                session.flush()
                report.count("updated" if changes else "unchanged", "products")
        except CrmError as exc:
            reject(report, row, exc)


MAPPER = Mapper("products", "product", lambda uow: FIELDS, import_rows)
