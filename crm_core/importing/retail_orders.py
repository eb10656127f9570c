"""Orders, one row per order line: chatcrm's export columns (number, sku, description, quantity,
ordered_at, unit_price, customer, country) or the widely used retail export schema (the public
"Online Retail" data set), whose names are aliases:

    InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country

One order per invoice; the order number is its external id. Invoices starting with "C" and lines with negative quantities are
cancellations, recorded as such (they reduce lifetime value and are ignored by basket mining);
rows without a customer become anonymous orders. A malformed row is reported with its row
number and reason and skipped; the rest is imported. Invoices already in the database are left
alone, so importing the same file twice changes nothing. The whole import is one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa

from crm_core import clock, events, text
from crm_core.i18n import _
from crm_core.importing.columns import FieldSpec
from crm_core.importing.countries import country_code
from crm_core.importing.report import ImportReport, Progress
from crm_core.importing.rows import Mapper, Row
from crm_core.importing.table import ImportFailed
from crm_core.models import Customer, Order, OrderKind, Product
from crm_core.services import orders as order_service
from crm_core.uow import UnitOfWork

# chatcrm's field names, with the retail export's column names (and chatcrm's export's) as aliases.
FIELDS = (
    FieldSpec("number", ("InvoiceNo", "invoice", "order"), required=True),
    FieldSpec("sku", ("StockCode", "product"), required=True),
    FieldSpec("description", ("Description", "product_name")),
    FieldSpec("quantity", ("Quantity", "qty"), required=True),
    FieldSpec("ordered_at", ("InvoiceDate", "date", "order_date"), required=True),
    FieldSpec("unit_price", ("UnitPrice", "price"), required=True),
    FieldSpec("customer", ("CustomerID", "customer_id", "customer_ref")),
    FieldSpec("country", ("Country",)),
)
# A retail invoice (536365, C536379 for a cancellation) or a prefixed number (SO-000042, DEMO-000001);
# the retail data's "A563185" bad-debt adjustments are neither and are reported.
_INVOICE = re.compile(r"^(C?\d{1,20}|[A-Za-z][A-Za-z0-9]*[-/.][\w\-/.]{1,56})$")
_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
)
BATCH = order_service.BATCH
__all__ = ["ImportFailed", "import_retail_orders", "MAPPER"]


@dataclass
class _Invoice:
    number: str
    row: int
    ordered_at: datetime
    customer_ref: str | None
    country: str | None
    kind: OrderKind
    # (row, sku, quantity, unit price)
    lines: list[tuple[int, str, int, Decimal]] = field(default_factory=list)


@dataclass
class _Catalogue:
    """What the file says about each product: its latest real description and non-zero price."""

    names: dict[str, str] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)


def _parse_date(row: Row) -> datetime:
    value = row.values["ordered_at"]
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        # ISO 8601 with an offset, as chatcrm exports it (2010-12-01T08:26:00+00:00).
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(_("{value} is not a date", value=_number(row, "ordered_at"))) from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _cents(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _number(row: Row, field: str) -> str:
    return f"{row.columns[field]} {row.values[field]!r}"


def _customer_ref(row: Row) -> str | None:
    """The customer's external_ref: a retail CustomerID (17850 or 17850.0) becomes "retail:17850"; a
    value with a colon is an external_ref as chatcrm exports it ("retail:17850", "crm:42")."""
    value = row.values.get("customer", "")
    if not value:
        return None
    if re.fullmatch(r"\d+(\.0+)?", value):
        return "retail:" + value.split(".")[0]
    if ":" in value and len(value) <= 100:
        return value
    raise ValueError(_("{value} is not a customer number", value=_number(row, "customer")))


def _read(rows: Iterator[Row], report: ImportReport, catalogue: _Catalogue) -> dict[str, _Invoice]:
    invoices: dict[str, _Invoice] = {}
    for row in rows:
        row_number, values = row.number, row.values
        try:
            number = values["number"]
            if not _INVOICE.match(number):
                raise ValueError(_("{value} is not an order or cancellation number", value=_number(row, "number")))
            sku = values["sku"]
            if not sku:
                raise ValueError(_("{column} is empty", column=row.columns["sku"]))
            try:
                quantity = int(Decimal(values["quantity"]))
            except (InvalidOperation, ValueError):
                raise ValueError(_("{value} is not a number", value=_number(row, "quantity"))) from None
            if quantity == 0:
                raise ValueError(_("{column} is 0", column=row.columns["quantity"]))
            try:
                price = Decimal(values["unit_price"])
            except InvalidOperation:
                raise ValueError(_("{value} is not a number", value=_number(row, "unit_price"))) from None
            if price < 0 or not price.is_finite():
                raise ValueError(_("{column} {price} is negative", column=row.columns["unit_price"], price=price))
            ordered_at = _parse_date(row)
            customer_ref = _customer_ref(row)
            kind = OrderKind.CANCELLATION if number.startswith("C") or quantity < 0 else OrderKind.PURCHASE
            if number.startswith("C") and quantity > 0:
                raise ValueError(_("cancellation {number} has a positive quantity", number=number))
            invoice = invoices.get(number)
            if invoice is None:
                invoice = invoices[number] = _Invoice(
                    number, row_number, ordered_at, customer_ref, country_code(values.get("country")), kind
                )
            elif invoice.customer_ref != customer_ref:
                owner = invoice.customer_ref.removeprefix("retail:") if invoice.customer_ref else _("none")
                raise ValueError(_("invoice {number} already belongs to customer {owner}", number=number, owner=owner))
            elif invoice.kind != kind:
                raise ValueError(_("invoice {number} mixes purchases and returns", number=number))
            # One string per product code, not one per row: half a million rows stay small.
            sku = catalogue.codes.setdefault(sku, sku)
            description = values.get("description", "")
            if description and description.casefold() != "unknown":
                catalogue.names[sku] = description
            if price > 0:
                catalogue.prices[sku] = price
            invoice.lines.append((row_number, sku, quantity, price))
        except ValueError as exc:
            report.problem(row_number, str(exc), *_culprit(row, str(exc)))
    return {number: invoice for number, invoice in invoices.items() if invoice.lines}


def _culprit(row: Row, message: str) -> tuple[str, str]:
    """The column and value a problem message starts with, for the error report."""
    for name, column in row.columns.items():
        if message.startswith(column + " "):
            return column, row.values.get(name, "")
    return "", ""


def _ensure_customers(
    uow: UnitOfWork, refs: set[str], countries: dict[str, str | None], report: ImportReport
) -> dict[str, int]:
    """Customer id by external_ref, creating "Customer 17850" for a reference seen for the first time."""
    session = uow.session
    ids: dict[str, int] = {}
    keys = sorted(refs)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for external_ref, customer_id in session.execute(
            sa.select(Customer.external_ref, Customer.id).where(Customer.external_ref.in_(chunk))
        ):
            assert external_ref is not None, "matched by external_ref IN (...)"
            ids[external_ref] = customer_id
    now = clock.utcnow()
    new_rows = [
        {
            "kind": "person",
            "name": f"Customer {ref.removeprefix('retail:')}",
            **text.search_columns(f"Customer {ref.removeprefix('retail:')}"),
            "external_ref": ref,
            "country": countries.get(ref),
            "created_at": now,
            "updated_at": now,
            "lifetime_value_cents": 0,
            "order_count": 0,
        }
        for ref in sorted(refs - set(ids))
    ]
    if new_rows:
        inserted = session.execute(
            sa.insert(Customer).returning(Customer.external_ref, Customer.id, sort_by_parameter_order=True), new_rows
        )
        for external_ref, customer_id in inserted:
            assert external_ref is not None, "every new row has an external_ref"
            ids[external_ref] = customer_id
        report.count("created", "customers", len(new_rows))
    return ids


def _ensure_products(
    uow: UnitOfWork, invoices: list[_Invoice], catalogue: _Catalogue, currency: str, report: ImportReport
) -> dict[str, int]:
    session = uow.session
    ids = dict(session.execute(sa.select(Product.sku, Product.id)).all())
    now = clock.utcnow()
    skus = sorted({line[1] for invoice in invoices for line in invoice.lines} - set(ids))
    rows = [
        {
            "sku": sku,
            "name": catalogue.names.get(sku, sku)[:300],
            "price_cents": _cents(catalogue.prices.get(sku, Decimal(0))),
            "currency": currency,
            "active": True,
            "created_at": now,
            "updated_at": now,
        }
        for sku in skus
    ]
    if rows:
        for sku, product_id in session.execute(
            sa.insert(Product).returning(Product.sku, Product.id, sort_by_parameter_order=True), rows
        ):
            ids[sku] = product_id
        report.count("created", "products", len(rows))
    return ids


def import_retail_orders(
    uow: UnitOfWork,
    source: str | Path | TextIO,
    *,
    currency: str = "GBP",
    progress: Progress | None = None,
) -> ImportReport:
    """Import a retail order file in the caller's transaction; returns what happened."""
    from crm_core.importing.read_csv import csv_table
    from crm_core.importing.run import import_table
    from crm_core.importing.sources import open_table

    table = open_table(source) if isinstance(source, (str, Path)) else csv_table(source)
    return import_table(uow, "orders", table, progress=progress, options={"currency": currency})


def _import_rows(uow: UnitOfWork, rows: Iterator[Row], report: ImportReport, options: dict[str, Any]) -> None:
    currency = options.get("currency") or "GBP"
    name = options.get("source_name", "import")
    catalogue = _Catalogue()
    invoices = _read(rows, report, catalogue)
    session = uow.session
    numbers = sorted(invoices)
    existing: set[str] = set()
    for start in range(0, len(numbers), 500):
        existing.update(session.scalars(sa.select(Order.number).where(Order.number.in_(numbers[start : start + 500]))))
    fresh = [invoices[n] for n in numbers if n not in existing]
    if existing:
        report.count("unchanged", "orders", len(existing))
    refs = {i.customer_ref for i in fresh if i.customer_ref}
    countries = {i.customer_ref: i.country for i in fresh if i.customer_ref}
    customer_ids = _ensure_customers(uow, refs, countries, report)
    product_ids = _ensure_products(uow, fresh, catalogue, currency, report)
    fresh.sort(key=lambda i: (i.ordered_at, i.number))
    for start in range(0, len(fresh), BATCH):
        batch = fresh[start : start + BATCH]
        order_service.insert_many(
            uow,
            [
                order_service.NewOrder(
                    number=invoice.number,
                    customer_id=customer_ids.get(invoice.customer_ref) if invoice.customer_ref else None,
                    kind=invoice.kind,
                    ordered_at=invoice.ordered_at,
                    currency=currency,
                    country=invoice.country,
                    lines=[
                        order_service.NewLine(product_ids[sku], quantity, _cents(price), _cents(price * quantity))
                        for _row, sku, quantity, price in invoice.lines
                    ],
                )
                for invoice in batch
            ],
            source="import",
        )
        report.count("created", "orders", sum(1 for i in batch if i.kind is OrderKind.PURCHASE))
        report.count("created", "cancellations", sum(1 for i in batch if i.kind is OrderKind.CANCELLATION))
        report.count("created", "order lines", sum(len(i.lines) for i in batch))
    order_service.refresh_customer_stats(uow, customer_ids.values())
    # One event for the whole import, not one per order: a 500,000-row file would otherwise
    # flood every listener with tens of thousands of events that all say "an order came in".
    events.emit(
        uow,
        "order.imported",
        entity_type="order_import",
        entity_id=name[:100],
        payload={
            "source": name,
            "currency": currency,
            "rows": report.rows,
            "orders": report.created.get("orders", 0),
            "cancellations": report.created.get("cancellations", 0),
            "order_lines": report.created.get("order lines", 0),
            "customers": report.created.get("customers", 0),
            "products": report.created.get("products", 0),
            "already_there": report.unchanged.get("orders", 0),
            "skipped_rows": len(report.problems),
            "first_ordered_at": fresh[0].ordered_at.isoformat() if fresh else None,
            "last_ordered_at": fresh[-1].ordered_at.isoformat() if fresh else None,
        },
    )


MAPPER = Mapper("orders", "order", lambda uow: FIELDS, _import_rows)
