"""Typed custom fields: definitions per entity (customer, deal, ticket) and their validated values."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.clock import utcnow
from crm_core.field_crypto import Encrypted
from crm_core.models.base import Base, enum_column


class FieldType(enum.StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    CHOICE = "choice"


class FieldEntity(enum.StrEnum):
    CUSTOMER = "customer"
    DEAL = "deal"
    TICKET = "ticket"


class CustomFieldDefinition(Base):
    __tablename__ = "custom_field_definitions"
    __table_args__ = (sa.UniqueConstraint("entity", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[FieldEntity] = mapped_column(enum_column(FieldEntity))
    key: Mapped[str] = mapped_column(sa.String(50))
    label: Mapped[str] = mapped_column(sa.String(100))
    type: Mapped[FieldType] = mapped_column(enum_column(FieldType))
    choices: Mapped[list[str] | None] = mapped_column(sa.JSON)
    required: Mapped[bool] = mapped_column(default=False)
    # Personal data (a birthday, a home address): erased with the customer, encrypted in the audit log.
    personal: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomFieldValue(Base):
    """One value of one field for one entity row; exactly one of the value columns is set.

    A value of a field marked personal goes into ``value_sealed``, encrypted at rest
    (crm_core.field_crypto), as text; the typed columns, which segments filter on, stay empty."""

    __tablename__ = "custom_field_values"
    __table_args__ = (
        sa.UniqueConstraint("definition_id", "entity_id"),
        sa.Index("ix_custom_field_values_text", "definition_id", "value_text"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(sa.ForeignKey("custom_field_definitions.id", ondelete="CASCADE"))
    entity_id: Mapped[int] = mapped_column(index=True)
    value_text: Mapped[str | None] = mapped_column(sa.String(1000))
    value_number: Mapped[float | None]
    value_date: Mapped[date | None]
    value_sealed: Mapped[str | None] = mapped_column(Encrypted("custom_field_values.value_sealed"))

    def value_as(self, field_type: FieldType) -> str | float | date | None:
        """The value, typed as its field is (a sealed value is stored as text)."""
        sealed = self.value_sealed
        if field_type is FieldType.NUMBER:
            return float(sealed) if sealed is not None else self.value_number
        if field_type is FieldType.DATE:
            return date.fromisoformat(sealed) if sealed is not None else self.value_date
        return sealed if sealed is not None else self.value_text
