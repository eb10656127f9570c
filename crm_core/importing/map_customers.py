"""Customers: columns named like CRM fields (name, email, phone, company, country, language, timezone,
owner, tags, kind, a custom field key) or mapped; external_ref is the id in the source system.

A row updates the customer with the same external_ref or, failing that, the same email, and
creates one otherwise; every row is validated like a chat edit, in a savepoint of its own, so a
bad row leaves nothing of itself behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from crm_core import contacts
from crm_core.errors import CrmError
from crm_core.importing.columns import FieldSpec
from crm_core.importing.report import ImportReport
from crm_core.importing.rows import Mapper, Row, reject
from crm_core.models import Customer, FieldEntity
from crm_core.services import custom_fields, customers
from crm_core.uow import UnitOfWork

EXTERNAL_ALIASES = ("external_id", "external id", "ext_id")


def _fields(uow: UnitOfWork) -> list[FieldSpec]:
    specs = [FieldSpec("name", ("full name", "customer", "customer name"), required=True)]
    specs += [FieldSpec(f, ("e-mail", "mail") if f == "email" else ()) for f in customers.CORE_FIELDS if f != "name"]
    specs.append(FieldSpec("external_ref", EXTERNAL_ALIASES))
    specs += [FieldSpec(d.key) for d in custom_fields.definitions(uow, FieldEntity.CUSTOMER)]
    return specs


def _existing(uow: UnitOfWork, external_ref: str | None, email: str | None) -> Customer | None:
    session = uow.session
    if external_ref:
        found = session.scalars(sa.select(Customer).where(Customer.external_ref == external_ref)).first()
        if found:
            return found
    if email:
        return session.scalars(sa.select(Customer).where(contacts.email_is(session, email))).first()
    return None


def import_rows(uow: UnitOfWork, rows: Iterator[Row], report: ImportReport, options: dict[str, Any]) -> None:
    for row in rows:
        fields = row.given()
        external_ref = fields.pop("external_ref", None)
        try:
            # A savepoint per row: a row that fails validation half way leaves nothing behind.
            with uow.session.begin_nested():
                customer = _existing(uow, external_ref, fields.get("email"))
                if customer is None:
                    created = customers.create_customer(uow, fields.pop("name", ""), fields)
                    created.external_ref = external_ref
                    report.count("created", "customers")
                    continue
                changes = customers.changed_fields(uow, customer, fields)
                if external_ref and customer.external_ref != external_ref:
                    customer.external_ref = external_ref
                if changes:
                    customers.update_customer(uow, customer.id, changes)
                    report.count("updated", "customers")
                else:
                    report.count("unchanged", "customers")
        except CrmError as exc:
            reject(report, row, exc)


MAPPER = Mapper("customers", "customer", _fields, import_rows)
