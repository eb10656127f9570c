"""Import orders in the widely used retail export schema (the public "Online Retail" data set):

    InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country

One order per invoice. Invoices starting with "C" and lines with negative quantities are
cancellations, recorded as such (they reduce lifetime value and are ignored by basket mining);
rows without a customer become anonymous orders. A malformed row is reported with its row
number and reason and skipped; the rest is imported. Invoices already in the database are left
alone, so importing the same file twice changes nothing. The whole import is one transaction.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

import sqlalchemy as sa

from crm_core import clock, events, text
from crm_core.importing.countries import country_code
from crm_core.importing.report import ImportReport, Progress
from crm_core.models import Customer, Order, OrderKind, Product
from crm_core.services import orders as order_service
from crm_core.uow import UnitOfWork

COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")
_INVOICE = re.compile(r"^C?\d{1,20}$")
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
BATCH = order_service.BATCH


class ImportFailed(Exception):
    """The file as a whole cannot be imported (wrong columns, unreadable)."""


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


def _parse_date(raw: str) -> datetime:
    value = raw.strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"InvoiceDate {raw!r} is not a date")


def _parse_customer(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if re.fullmatch(r"\d+(\.0+)?", value):
        return value.split(".")[0]
    raise ValueError(f"CustomerID {raw!r} is not a customer number")


def _cents(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _read(
    source: TextIO, report: ImportReport, catalogue: _Catalogue, progress: Progress | None, total: int | None
) -> dict[str, _Invoice]:
    reader = csv.reader(source)
    try:
        header = [h.strip().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        raise ImportFailed("the file is empty") from None
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ImportFailed(f"the file lacks the column(s) {', '.join(missing)} (expected: {', '.join(COLUMNS)})")
    index = {name: header.index(name) for name in COLUMNS}
    invoices: dict[str, _Invoice] = {}
    for row_number, row in enumerate(reader, start=2):
        report.rows += 1
        if progress and report.rows % 20000 == 0:
            progress(report.rows, total)
        if not any(cell.strip() for cell in row):
            report.rows -= 1
            continue
        try:
            if len(row) < len(header):
                raise ValueError(f"has {len(row)} fields, the header has {len(header)}")
            number = row[index["InvoiceNo"]].strip()
            if not _INVOICE.match(number):
                raise ValueError(f"InvoiceNo {number!r} is not an order or cancellation number")
            sku = row[index["StockCode"]].strip()
            if not sku:
                raise ValueError("StockCode is empty")
            try:
                quantity = int(Decimal(row[index["Quantity"]].strip()))
            except (InvalidOperation, ValueError):
                raise ValueError(f"Quantity {row[index['Quantity']]!r} is not a number") from None
            if quantity == 0:
                raise ValueError("Quantity is 0")
            try:
                price = Decimal(row[index["UnitPrice"]].strip())
            except InvalidOperation:
                raise ValueError(f"UnitPrice {row[index['UnitPrice']]!r} is not a number") from None
            if price < 0 or not price.is_finite():
                raise ValueError(f"UnitPrice {price} is negative")
            ordered_at = _parse_date(row[index["InvoiceDate"]])
            customer_ref = _parse_customer(row[index["CustomerID"]])
            kind = OrderKind.CANCELLATION if number.startswith("C") or quantity < 0 else OrderKind.PURCHASE
            if number.startswith("C") and quantity > 0:
                raise ValueError(f"cancellation {number} has a positive quantity")
            invoice = invoices.get(number)
            if invoice is None:
                invoice = invoices[number] = _Invoice(
                    number, row_number, ordered_at, customer_ref, country_code(row[index["Country"]]), kind
                )
            elif invoice.customer_ref != customer_ref:
                raise ValueError(f"invoice {number} already belongs to customer {invoice.customer_ref or 'none'}")
            elif invoice.kind != kind:
                raise ValueError(f"invoice {number} mixes purchases and returns")
            # One string per product code, not one per row: half a million rows stay small.
            sku = catalogue.codes.setdefault(sku, sku)
            description = row[index["Description"]].strip()
            if description and description.casefold() != "unknown":
                catalogue.names[sku] = description
            if price > 0:
                catalogue.prices[sku] = price
            invoice.lines.append((row_number, sku, quantity, price))
        except ValueError as exc:
            report.problem(row_number, str(exc))
    return {number: invoice for number, invoice in invoices.items() if invoice.lines}


def _ensure_customers(
    uow: UnitOfWork, refs: set[str], countries: dict[str, str | None], report: ImportReport
) -> dict[str, int]:
    session = uow.session
    wanted = {f"retail:{ref}": ref for ref in refs}
    ids: dict[str, int] = {}
    keys = sorted(wanted)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for external_ref, customer_id in session.execute(
            sa.select(Customer.external_ref, Customer.id).where(Customer.external_ref.in_(chunk))
        ):
            assert external_ref is not None, "matched by external_ref IN (...)"
            ids[wanted[external_ref]] = customer_id
    now = clock.utcnow()
    new_rows = [
        {
            "kind": "person",
            "name": f"Customer {ref}",
            **text.search_columns(f"Customer {ref}"),
            "external_ref": f"retail:{ref}",
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
            ids[wanted[external_ref]] = customer_id
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


def _encoding_and_lines(path: Path) -> tuple[str, int]:
    """UTF-8 unless the file does not decode as such (older retail exports are Latin-1), and its line count."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return "utf-8-sig", sum(1 for _ in handle)
    except UnicodeDecodeError:
        with path.open(encoding="latin-1", newline="") as handle:
            return "latin-1", sum(1 for _ in handle)


def open_text(path: Path) -> TextIO:
    encoding, _lines = _encoding_and_lines(path)
    return path.open(encoding=encoding, newline="")


def import_retail_orders(
    uow: UnitOfWork,
    source: str | Path | TextIO,
    *,
    currency: str = "GBP",
    progress: Progress | None = None,
) -> ImportReport:
    """Import a retail order file in the caller's transaction; returns what happened."""
    report = ImportReport()
    catalogue = _Catalogue()
    if isinstance(source, (str, Path)):
        path = Path(source)
        encoding, lines = _encoding_and_lines(path)
        with path.open(encoding=encoding, newline="") as handle:
            invoices = _read(handle, report, catalogue, progress, max(lines - 1, 0))
        name = path.name
    else:
        invoices = _read(source, report, catalogue, progress, None)
        name = getattr(source, "name", "stream")
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
        if progress:
            progress(report.rows, report.rows)
    order_service.refresh_customer_stats(uow, customer_ids.values())
    # Bulk inserts bypass the per-row audit listener; the import itself is one audited action.
    order_service.audit_bulk(
        uow, name, {"rows": report.rows, "created": report.created, "skipped_rows": len(report.problems)}
    )
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
    return report
