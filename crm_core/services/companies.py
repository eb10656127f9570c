"""Companies: the organisations customers belong to. Found by name case-insensitively (``name_key``),
so "ACME corp" and "Acme Corp" are one company; created on the fly when a customer names a new one."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import cast

import sqlalchemy as sa

from crm_core import db, text
from crm_core.clock import utcnow
from crm_core.errors import Conflict, NotFound, ValidationError
from crm_core.i18n import _
from crm_core.iso_countries import is_country_code
from crm_core.models import Company
from crm_core.models.base import row_values
from crm_core.uow import UnitOfWork

MAX_NAME = 200
_DOMAIN = re.compile(r"^(?=.{1,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
FIELDS = ("name", "domain", "country")


def name_key(name: str) -> str:
    """Which company a name means: "ACME corp" and "Acme Corp" are one."""
    return name.strip().casefold()


def get_company(uow: UnitOfWork, company_id: int) -> Company:
    company = uow.session.get(Company, company_id)
    if company is None:
        raise NotFound(_("there is no company #{id}", id=company_id))
    return company


def find_or_create(uow: UnitOfWork, name: str) -> Company:
    """The company called ``name`` (any case), created if there is none yet."""
    company = uow.session.scalars(sa.select(Company).where(Company.name_key == name_key(name))).one_or_none()
    if company is None:
        company = Company(name=name.strip(), name_key=name_key(name))
        uow.session.add(company)
        uow.session.flush()
    return company


def find_or_create_many(uow: UnitOfWork, names: Iterable[str]) -> dict[str, tuple[int, str]]:
    """``find_or_create`` for many names at once, for an import: (id, stored name) by ``name_key(name)``.
    One query finds the companies there are; the missing ones are inserted in one statement, past the
    per-row audit listener (the import's own audit entry covers them)."""
    wanted: dict[str, str] = {}
    for name in names:
        wanted.setdefault(name_key(name), name.strip())  # the first spelling names a new company
    if not wanted:
        return {}
    session = uow.session
    found: dict[str, tuple[int, str]] = {
        row.name_key: (row.id, row.name)
        for row in session.execute(
            sa.select(Company.id, Company.name, Company.name_key).where(
                db.one_of(session, Company.name_key, list(wanted))
            )
        )
    }
    missing = [row_values(Company, name=name, name_key=key) for key, name in wanted.items() if key not in found]
    if missing:
        table = cast(sa.Table, Company.__table__)
        now = utcnow()
        for row, company_id in zip(missing, db.new_ids(session, table, len(missing)), strict=True):
            row.update(id=company_id, created_at=now, updated_at=now)
            found[row["name_key"]] = (company_id, row["name"])
        session.connection().execute(sa.insert(table), missing)
    return found


def _parse(changes: Mapping[str, str | None]) -> dict[str, str | None]:
    """Validated column values; every problem reported at once."""
    values: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for key, raw in changes.items():
        value = (raw or "").strip()
        try:
            text.check_text(value, key, field=key)
            if key == "name":
                if not value:
                    raise ValidationError(_("a company needs a name"), field="name")
                if len(value) > MAX_NAME:
                    raise ValidationError(_("the name is longer than {limit} characters", limit=MAX_NAME), field="name")
                values["name"] = value
            elif key == "domain":
                value = value.lower().removeprefix("www.")
                if value and not _DOMAIN.match(value):
                    raise ValidationError(
                        _("{value} is not a domain name (e.g. acme.example)", value=repr(value)), field="domain"
                    )
                values["domain"] = value or None
            elif key == "country":
                if value and not is_country_code(value):
                    raise ValidationError(
                        _("{value} is not an ISO 3166 country code (e.g. DE)", value=repr(value)), field="country"
                    )
                values["country"] = value.upper() or None
            else:
                raise ValidationError(
                    _("unknown field {key} (fields: {known})", key=repr(key), known=", ".join(FIELDS)), field=key
                )
        except ValidationError as exc:
            errors[exc.field or key] = exc.message
    if errors:
        raise ValidationError("; ".join(errors.values()), field=next(iter(errors)), errors=errors)
    return values


def _check_unique(uow: UnitOfWork, name: str, company_id: int | None) -> None:
    clash = uow.session.scalars(
        sa.select(Company).where(Company.name_key == name_key(name), Company.id != (company_id or -1))
    ).first()
    if clash is not None:
        raise Conflict(_("there is already a company called {name} (#{id})", name=clash.name, id=clash.id))


def create_company(uow: UnitOfWork, name: str, fields: Mapping[str, str | None] | None = None) -> Company:
    values = _parse({"name": name, **(fields or {})})
    _check_unique(uow, values["name"] or name, None)
    company = Company(name_key=name_key(values["name"] or name), **values)
    uow.session.add(company)
    uow.session.flush()
    return company


def update_company(uow: UnitOfWork, company_id: int, changes: Mapping[str, str | None]) -> Company:
    company = get_company(uow, company_id)
    values = _parse(changes)
    if values.get("name"):
        _check_unique(uow, values["name"] or "", company.id)
        company.name_key = name_key(values["name"] or "")
    for key, value in values.items():
        setattr(company, key, value)
    uow.session.flush()
    return company
