"""Import a customer list from any CSV, with a column mapping.

By default a column is taken when its header names a CRM field (name, email, phone, company,
country, language, timezone, owner, tags, a custom field key, or external_ref for an id in the
source system); ``mapping`` maps CRM fields to other headers (``{"name": "Full Name"}``). A row
updates the customer with the same external_ref or, failing that, the same email, and creates
one otherwise. Every row is validated like a chat edit; a bad row is reported and skipped
without leaving anything of itself behind.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import sqlalchemy as sa

from crm_core import text
from crm_core.errors import CrmError
from crm_core.importing.report import ImportReport, Progress
from crm_core.importing.retail_orders import ImportFailed, open_text
from crm_core.models import Customer, FieldEntity
from crm_core.services import custom_fields, customers
from crm_core.uow import UnitOfWork


def _columns(header: list[str], mapping: Mapping[str, str], known: set[str]) -> dict[str, int]:
    lowered = {h.strip().casefold(): i for i, h in enumerate(header)}
    columns: dict[str, int] = {}
    for field, column in mapping.items():
        if field not in known:
            raise ImportFailed(
                f"--map {field}=…: {field!r} is not a customer field (fields: {', '.join(sorted(known))})"
            )
        if column.strip().casefold() not in lowered:
            raise ImportFailed(f"--map {field}={column}: the file has no column {column!r}")
        columns[field] = lowered[column.strip().casefold()]
    for field in known - set(columns):
        if field in lowered:
            columns[field] = lowered[field]
    if "name" not in columns:
        raise ImportFailed("no column gives the customer's name: add one called 'name' or map it (--map name=COLUMN)")
    return columns


def _existing(uow: UnitOfWork, external_ref: str | None, email: str | None) -> Customer | None:
    session = uow.session
    if external_ref:
        found = session.scalars(sa.select(Customer).where(Customer.external_ref == external_ref)).first()
        if found:
            return found
    if email:
        return session.scalars(sa.select(Customer).where(Customer.email == text.normalize_email(email))).first()
    return None


def import_customers(
    uow: UnitOfWork,
    source: str | Path | TextIO,
    mapping: Mapping[str, str] | None = None,
    *,
    progress: Progress | None = None,
) -> ImportReport:
    report = ImportReport()
    if isinstance(source, (str, Path)):
        with open_text(Path(source)) as handle:
            return _import_rows(uow, handle, mapping, report, progress)
    return _import_rows(uow, source, mapping, report, progress)


def _import_rows(
    uow: UnitOfWork, handle: TextIO, mapping: Mapping[str, str] | None, report: ImportReport, progress: Progress | None
) -> ImportReport:
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFailed("the file is empty") from None
    known = set(customers.CORE_FIELDS) | {"external_ref"}
    known |= {d.key for d in custom_fields.definitions(uow, FieldEntity.CUSTOMER)}
    columns = _columns(header, mapping or {}, known)
    for row_number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        report.rows += 1
        values = {field: row[i].strip() if i < len(row) else "" for field, i in columns.items()}
        external_ref = values.pop("external_ref", "") or None
        fields = {k: v for k, v in values.items() if v}
        try:
            # A savepoint per row: a row that fails validation half way leaves nothing behind.
            with uow.session.begin_nested():
                customer = _existing(uow, external_ref, fields.get("email"))
                if customer is None:
                    created = customers.create_customer(uow, fields.pop("name", ""), fields)
                    created.external_ref = external_ref
                    report.count("created", "customers")
                else:
                    changes = customers.changed_fields(uow, customer, fields)
                    if changes:
                        customers.update_customer(uow, customer.id, changes)
                        report.count("updated", "customers")
                    else:
                        report.count("unchanged", "customers")
        except CrmError as exc:
            report.problem(row_number, exc.message)
        if progress and report.rows % 1000 == 0:
            progress(report.rows, None)
    return report
