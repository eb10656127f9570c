"""Deals: title and customer (required), amount, currency, stage, close date, probability, owner and
external_ref (the id in the source system).

The customer is found by customer_ref (its external_ref), customer_email, or the customer column
(an external_ref, an email or a name that names one customer). A row updates the deal with the
same external_ref, moving its stage through the deal service so the stage history stays true,
and creates one otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from crm_core import contacts
from crm_core.errors import CrmError, NotFound, ValidationError
from crm_core.i18n import _
from crm_core.importing.columns import FieldSpec
from crm_core.importing.report import ImportReport
from crm_core.importing.rows import Mapper, Row, reject
from crm_core.models import Customer, Deal
from crm_core.money import parse_amount
from crm_core.services import customers, deals, users
from crm_core.uow import UnitOfWork

FIELDS = (
    FieldSpec("title", ("deal", "name", "deal name", "subject"), required=True),
    FieldSpec("customer", ("customer name", "contact", "account")),
    FieldSpec("customer_ref", ("customer_external_ref", "customer external id")),
    FieldSpec("customer_email", ("email",)),
    FieldSpec("amount", ("value", "amount_cents")),
    FieldSpec("currency"),
    FieldSpec("stage", ("status",)),
    FieldSpec("close", ("expected_close_on", "close date", "close_date")),
    FieldSpec("probability"),
    FieldSpec("owner"),
    FieldSpec("external_ref", ("external_id", "external id")),
)


def _customer(uow: UnitOfWork, given: dict[str, str]) -> Customer:
    session = uow.session
    if ref := given.get("customer_ref"):
        found = session.scalars(sa.select(Customer).where(Customer.external_ref == ref)).first()
        if found:
            return found
    if email := given.get("customer_email"):
        found = session.scalars(sa.select(Customer).where(contacts.email_is(session, email))).first()
        if found:
            return found
    if reference := given.get("customer"):
        found = session.scalars(sa.select(Customer).where(Customer.external_ref == reference)).first()
        return found or customers.resolve_customer(uow, reference)
    raise ValidationError(_("no customer given (customer, customer_ref or customer_email)"), field="customer")


def _values(uow: UnitOfWork, given: dict[str, str], default_currency: str) -> dict[str, Any]:
    values: dict[str, Any] = {"title": given["title"]}
    if "amount" in given:
        values["amount_cents"], currency = parse_amount(given["amount"])
        values["currency"] = currency or default_currency
    if "currency" in given:
        currency = given["currency"].upper()
        if len(currency) != 3 or not currency.isalpha():
            raise ValidationError(
                _("'{value}' is not a currency code (e.g. EUR)", value=given["currency"]), field="currency"
            )
        values["currency"] = currency
    if "stage" in given:
        values["stage"] = deals.parse_stage(given["stage"])
    if "close" in given:
        values["expected_close_on"] = deals.parse_close_date(given["close"])
    if "probability" in given:
        values["probability"] = deals.parse_probability(given["probability"])
    if "owner" in given:
        try:
            values["owner_id"] = users.find_user(uow, given["owner"]).id
        except NotFound as exc:
            raise ValidationError(exc.message, field="owner") from None
    return values


def _update(uow: UnitOfWork, deal: Deal, values: dict[str, Any]) -> bool:
    stage = values.pop("stage", None)
    changed = False
    for field, value in values.items():
        if getattr(deal, field) != value:
            setattr(deal, field, value)
            changed = True
    if stage is not None and stage != deal.stage:
        deals.change_stage(uow, deal.id, stage)
        changed = True
    uow.session.flush()
    return changed


def import_rows(uow: UnitOfWork, rows: Iterator[Row], report: ImportReport, options: dict[str, Any]) -> None:
    session = uow.session
    currency = options.get("currency") or "EUR"
    for row in rows:
        given = row.given()
        external_ref = given.get("external_ref")
        try:
            with session.begin_nested():
                if not given.get("title"):
                    raise ValidationError(_("a deal needs a title"), field="title")
                customer = _customer(uow, given)
                values = _values(uow, given, currency)
                deal = None
                if external_ref:
                    deal = session.scalars(sa.select(Deal).where(Deal.external_ref == external_ref)).first()
                if deal is None:
                    created = deals.create_deal(uow, customer.id, values.pop("title"), **values)
                    created.external_ref = external_ref
                    session.flush()
                    report.count("created", "deals")
                    continue
                values["customer_id"] = customer.id
                report.count("updated" if _update(uow, deal, values) else "unchanged", "deals")
        except CrmError as exc:
            reject(report, row, exc)


MAPPER = Mapper("deals", "deal", lambda uow: FIELDS, import_rows)
