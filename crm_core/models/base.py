"""Declarative base, shared column types and naming conventions for every model."""

from __future__ import annotations

import enum
import types
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_core.clock import utcnow

# Stable constraint names so Alembic migrations can refer to them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timestamps are aware UTC in Python on both databases.

    PostgreSQL keeps ``timestamptz``; SQLite has no timezone support, so the value is stored as
    naive UTC and the zone is put back on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_column(enum_cls: type[enum.StrEnum], **kwargs: Any) -> sa.Enum:
    """A portable enum: VARCHAR holding the enum's values, validated on the Python side.

    No CHECK constraint: adding a value later would otherwise mean rebuilding SQLite tables.
    """
    return sa.Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=20,
        values_callable=lambda cls: [member.value for member in cls],
        name=enum_cls.__name__.lower(),
        validate_strings=True,
        **kwargs,
    )


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}

    # Models set this to False when a row is bookkeeping rather than CRM data
    # (the audit log itself, outbox and inbox rows): those are not audited.
    __audited__ = True


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def row_values(model: type[Base], **values: Any) -> dict[str, Any]:
    """The columns an ORM insert of ``model(**values)`` would write, by column name, derived ones included:
    each value goes through the model's own validator for its attribute, if it has one (a customer's
    search keys, normalised email and phone keys), as on every ORM write, so a bulk writer that inserts
    or updates through Core derives nothing itself. The validators are called on a plain object that
    collects what they derive, not on a model instance: instrumented attributes cost a bulk import a
    third of its time. Columns neither given nor derived are left out (their defaults apply on insert)."""
    mapper = sa.inspect(model)
    derived = types.SimpleNamespace()
    given = {}
    for key, value in values.items():
        validator = mapper.validators.get(key)
        if validator is not None:
            # SQLAlchemy's stubs type the first item as a name; it is the validator function itself.
            method, options = cast(tuple[Callable[..., Any], dict[str, Any]], validator)
            value = (
                method(derived, key, value, False) if options.get("include_removes") else method(derived, key, value)
            )
        given[key] = value
    given |= vars(derived)
    return {attr.columns[0].name: given[attr.key] for attr in mapper.column_attrs if attr.key in given}
