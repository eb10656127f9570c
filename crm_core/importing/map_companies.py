"""Companies: name (required), domain, country, and external_ref (the id in the source system).

A row updates the company with the same external_ref or, failing that, the same name (names are
unique regardless of case), and creates one otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from crm_core import text
from crm_core.errors import Conflict, CrmError, ValidationError
from crm_core.i18n import _
from crm_core.importing.columns import FieldSpec
from crm_core.importing.countries import country_code
from crm_core.importing.report import ImportReport
from crm_core.importing.rows import Mapper, Row, reject
from crm_core.models import Company
from crm_core.uow import UnitOfWork

FIELDS = (
    FieldSpec("name", ("company", "company name", "account"), required=True),
    FieldSpec("domain", ("website", "web")),
    FieldSpec("country"),
    FieldSpec("external_ref", ("external_id", "external id")),
)
MAX_NAME = 200


def _values(row: Row) -> dict[str, str | None]:
    given = row.given()
    name = text.check_text(given.get("name", ""), "name", field="name")
    if not name:
        raise ValidationError(_("a company needs a name"), field="name")
    if len(name) > MAX_NAME:
        raise ValidationError(_("the name is longer than {limit} characters", limit=MAX_NAME), field="name")
    values: dict[str, str | None] = {"name": name}
    if "domain" in given:
        domain = given["domain"].lower().removeprefix("https://").removeprefix("http://").strip("/")
        if " " in domain or "." not in domain or len(domain) > 200:
            raise ValidationError(_("'{value}' is not a domain (e.g. acme.com)", value=given["domain"]), field="domain")
        values["domain"] = domain
    if "country" in given:
        code = country_code(given["country"])
        if code is None:
            raise ValidationError(
                _("'{value}' is not a country (e.g. DE, GB, US)", value=given["country"]), field="country"
            )
        values["country"] = code
    return values


def import_rows(uow: UnitOfWork, rows: Iterator[Row], report: ImportReport, options: dict[str, Any]) -> None:
    session = uow.session
    for row in rows:
        external_ref = row.values.get("external_ref") or None
        try:
            with session.begin_nested():
                values = _values(row)
                key = str(values["name"]).casefold()
                company = None
                if external_ref:
                    company = session.scalars(sa.select(Company).where(Company.external_ref == external_ref)).first()
                namesake = session.scalars(sa.select(Company).where(Company.name_key == key)).first()
                if company is None:
                    company = namesake
                elif namesake is not None and namesake.id != company.id:
                    raise Conflict(_("another company is already called {name}", name=values["name"]))
                if company is None:
                    session.add(Company(name_key=key, external_ref=external_ref, **values))
                    session.flush()
                    report.count("created", "companies")
                    continue
                changes = {k: v for k, v in values.items() if getattr(company, k) != v}
                if external_ref and company.external_ref != external_ref:
                    changes["external_ref"] = external_ref
                if not changes:
                    report.count("unchanged", "companies")
                    continue
                for field, value in changes.items():
                    setattr(company, field, value)
                company.name_key = company.name.casefold()
                session.flush()
                report.count("updated", "companies")
        except CrmError as exc:
            reject(report, row, exc)


MAPPER = Mapper("companies", "company", lambda uow: FIELDS, import_rows)
