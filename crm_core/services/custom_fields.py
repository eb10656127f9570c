"""Custom field definitions and their values: parsing user text into typed, validated values."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from crm_core import db, i18n
from crm_core.errors import Conflict, ValidationError
from crm_core.i18n import _, ngettext
from crm_core.models import Customer, CustomFieldDefinition, CustomFieldValue, Deal, FieldEntity, FieldType, Ticket
from crm_core.uow import UnitOfWork

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
MAX_TEXT = 1000


_MODELS: dict[FieldEntity, type] = {FieldEntity.CUSTOMER: Customer, FieldEntity.DEAL: Deal, FieldEntity.TICKET: Ticket}


def core_keys(entity: FieldEntity) -> set[str]:
    """Names a custom field of ``entity`` may not take: the model's columns and relationships (``owner_id``
    and ``owner``, ``amount_cents`` and ``amount``), and its public properties (a customer's ``tags``).
    Read from the model, so a new column is reserved without anyone remembering to list it."""
    model = _MODELS[entity]
    keys: set[str] = set(sa.inspect(model).attrs.keys())
    # owner_id is set as owner=, amount_cents as amount=.
    keys |= {key.removesuffix("_id").removesuffix("_cents") for key in keys if key.endswith(("_id", "_cents"))}
    keys |= {name for name, value in vars(model).items() if isinstance(value, property) and not name.startswith("_")}
    return keys


@dataclass(frozen=True)
class FieldValue:
    definition: CustomFieldDefinition
    value: str | float | date

    @property
    def display(self) -> str:
        if isinstance(self.value, float):
            return f"{self.value:g}"
        if isinstance(self.value, date):
            return self.value.isoformat()
        return self.value

    @property
    def shown(self) -> str:
        """The value as a reader sees it: a date in their language's format (``display`` stays ISO,
        as one types it and as changes are recorded)."""
        if isinstance(self.value, date):
            return i18n.display_date(self.value)
        return self.display


def definitions(uow: UnitOfWork, entity: FieldEntity) -> list[CustomFieldDefinition]:
    return list(
        uow.session.scalars(
            sa.select(CustomFieldDefinition)
            .where(CustomFieldDefinition.entity == entity)
            .order_by(CustomFieldDefinition.key)
        )
    )


def define_field(
    uow: UnitOfWork,
    entity: FieldEntity,
    key: str,
    type_: FieldType,
    label: str | None = None,
    choices: list[str] | None = None,
    required: bool = False,
    personal: bool = False,
) -> CustomFieldDefinition:
    """A new field; ``personal`` marks its values as personal data (erased with the customer, encrypted
    in the audit log)."""
    key = key.strip().lower()
    if not _KEY.match(key):
        raise ValidationError(
            _(
                "{key} is not a field key: use lower-case letters, digits and _, starting with a letter",
                key=repr(key),
            ),
            field="key",
        )
    if key in core_keys(entity):
        raise ValidationError(
            _("{key} is a built-in field of a {entity}: pick another key", key=repr(key), entity=entity), field="key"
        )
    if type_ is FieldType.CHOICE:
        choices = [c.strip() for c in (choices or []) if c.strip()]
        if len(choices) < 2:
            raise ValidationError(_("a choice field needs at least two choices (choices=a|b|c)"), field="choices")
    elif choices:
        raise ValidationError(_("only choice fields take choices"), field="choices")
    exists = uow.session.scalars(
        sa.select(CustomFieldDefinition).where(CustomFieldDefinition.entity == entity, CustomFieldDefinition.key == key)
    ).first()
    if exists:
        raise Conflict(_("{entity} already has a field {key}", entity=entity, key=repr(key)))
    definition = CustomFieldDefinition(
        entity=entity,
        key=key,
        label=(label or key.replace("_", " ").capitalize())[:100],
        type=type_,
        choices=choices,
        required=required,
        personal=personal,
    )
    uow.session.add(definition)
    uow.session.flush()
    return definition


def parse_value(definition: CustomFieldDefinition, raw: str) -> str | float | date:
    """Turn what a user typed into the field's typed value, or raise ValidationError naming the field."""
    value = raw.strip()
    key = definition.key
    if definition.type is FieldType.NUMBER:
        try:
            number = float(value.replace(",", "")) if value else None
        except ValueError:
            number = None
        if number is None or number != number or number in (float("inf"), float("-inf")):
            raise ValidationError(
                _("{label} must be a number, not {value}", label=definition.label, value=repr(raw)), field=key
            )
        return number
    if definition.type is FieldType.DATE:
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValidationError(
                _("{label} must be a date like 2026-12-01, not {value}", label=definition.label, value=repr(raw)),
                field=key,
            ) from None
    if definition.type is FieldType.CHOICE:
        for choice in definition.choices or []:
            if choice.casefold() == value.casefold():
                return choice
        allowed = ", ".join(definition.choices or [])
        raise ValidationError(
            _("{label} must be one of: {allowed}", label=definition.label, allowed=allowed), field=key
        )
    if not value:
        raise ValidationError(_("{label} cannot be empty", label=definition.label), field=key)
    if len(value) > MAX_TEXT:
        raise ValidationError(
            _("{label} is longer than {limit} characters", label=definition.label, limit=MAX_TEXT), field=key
        )
    return value


def values_for(uow: UnitOfWork, entity: FieldEntity, entity_id: int) -> list[FieldValue]:
    """One record's custom field values (a card), with a statement built once."""
    rows = uow.session.execute(_values_for_statement(), {"entity": entity, "entity_id": entity_id}).all()
    return _field_values(rows).get(entity_id, [])


@functools.cache
def _values_for_statement() -> sa.Select[CustomFieldDefinition, CustomFieldValue]:
    # Built once: every customer card reads it, and building a SELECT of two entities costs about as
    # much Python time as running it.
    return (
        sa.select(CustomFieldDefinition, CustomFieldValue)
        .join(CustomFieldValue, CustomFieldValue.definition_id == CustomFieldDefinition.id)
        .where(
            CustomFieldDefinition.entity == sa.bindparam("entity", type_=CustomFieldDefinition.entity.type),
            CustomFieldValue.entity_id == sa.bindparam("entity_id", type_=CustomFieldValue.entity_id.type),
        )
        .order_by(CustomFieldDefinition.key)
    )


def values_for_many(uow: UnitOfWork, entity: FieldEntity, entity_ids: Sequence[int]) -> dict[int, list[FieldValue]]:
    """The custom field values of several records in one query (a page of an API list), by record id."""
    if not entity_ids:
        return {}
    rows = uow.session.execute(
        sa.select(CustomFieldDefinition, CustomFieldValue)
        .join(CustomFieldValue, CustomFieldValue.definition_id == CustomFieldDefinition.id)
        .where(
            CustomFieldDefinition.entity == entity,
            db.one_of(uow.session, CustomFieldValue.entity_id, list(entity_ids)),
        )
        .order_by(CustomFieldDefinition.key)
    ).all()
    return _field_values(rows)


def _field_values(rows: Iterable[Any]) -> dict[int, list[FieldValue]]:
    """(definition, value row) pairs as the values of each record, by record id (empty values left out)."""
    result: dict[int, list[FieldValue]] = {}
    for definition, row in rows:
        value = row.value_as(definition.type)
        if value is not None:
            result.setdefault(row.entity_id, []).append(FieldValue(definition, value))
    return result


def set_value(
    uow: UnitOfWork, definition: CustomFieldDefinition, entity_id: int, value: str | float | date | None
) -> None:
    """Store an already-parsed value; ``None`` clears it."""
    row = uow.session.scalars(
        sa.select(CustomFieldValue).where(
            CustomFieldValue.definition_id == definition.id, CustomFieldValue.entity_id == entity_id
        )
    ).one_or_none()
    if value is None:
        if row is not None:
            uow.session.delete(row)
        return
    if row is None:
        row = CustomFieldValue(definition_id=definition.id, entity_id=entity_id)
        uow.session.add(row)
    for column, stored in value_columns(value, personal=definition.personal).items():
        setattr(row, column, stored)


def value_columns(value: str | float | date, *, personal: bool = False) -> dict[str, str | float | date | None]:
    """A parsed value as the value columns of its row: exactly one of them is set. A personal
    field's value is encrypted at rest, as text (see CustomFieldValue), never in the typed,
    filterable columns."""
    if personal:
        sealed = value.isoformat() if isinstance(value, date) else str(value)
        return {"value_sealed": sealed, "value_text": None, "value_number": None, "value_date": None}
    return {
        "value_sealed": None,
        "value_text": value if isinstance(value, str) else None,
        "value_number": value if isinstance(value, float) else None,
        "value_date": value if isinstance(value, date) else None,
    }


def clear_values(uow: UnitOfWork, entity: FieldEntity, entity_id: int) -> None:
    """Remove every custom field value of a record being deleted (they have no foreign key to it)."""
    for row in uow.session.scalars(
        sa.select(CustomFieldValue)
        .join(CustomFieldDefinition, CustomFieldValue.definition_id == CustomFieldDefinition.id)
        .where(CustomFieldDefinition.entity == entity, CustomFieldValue.entity_id == entity_id)
    ):
        uow.session.delete(row)


# -- values given with key=value on create and edit (customers, deals, tickets) -------------------------

# Typed values that mean "clear this field" on an edit.
EMPTY_VALUES = frozenset({"", "-", "none"})
Parsed = dict[int, tuple[CustomFieldDefinition, str | float | date | None]]


def parse_changes(
    uow: UnitOfWork, entity: FieldEntity, changes: Mapping[str, str | None], *, options: Iterable[str] = ()
) -> Parsed:
    """The custom field values in ``changes`` (key -> text as typed; empty clears), parsed and typed.

    A key that is neither a custom field of ``entity`` nor one of the command's own ``options`` is an
    error naming it and listing what is allowed; every bad value is reported at once (``errors``)."""
    definitions_by_key = {d.key: d for d in definitions(uow, entity)}
    parsed: Parsed = {}
    errors: dict[str, str] = {}
    for raw_key, raw_value in changes.items():
        key = raw_key.strip().lower()
        definition = definitions_by_key.get(key)
        if definition is None:
            allowed = ", ".join(f"{name}=" for name in [*options, *definitions_by_key]) or _("none")
            errors[key] = _("unknown option {key}= (options: {allowed})", key=key, allowed=allowed)
            continue
        value = (raw_value or "").strip()
        try:
            parsed[definition.id] = (
                definition,
                None if value.lower() in EMPTY_VALUES else parse_value(definition, value),
            )
        except ValidationError as exc:
            errors[key] = exc.message
    if errors:
        raise ValidationError("; ".join(errors.values()), field=next(iter(errors)), errors=errors)
    return parsed


def check_required(
    uow: UnitOfWork,
    entity: FieldEntity,
    parsed: Parsed,
    *,
    creating: bool,
    known: Sequence[CustomFieldDefinition] | None = None,
) -> None:
    """Required fields: a new record must give each of them; an edit may not clear one. ``known``: the
    entity's definitions when the caller has read them already (an import, once for every row)."""
    known = definitions(uow, entity) if known is None else known
    missing = [d for d in known if d.required and (parsed[d.id][1] is None if d.id in parsed else creating)]
    if not missing:
        return
    if creating:
        errors = {d.key: _("{label} is required ({key}=…)", label=d.label, key=d.key) for d in missing}
        names = ", ".join(f"{d.label} ({d.key}=…)" for d in missing)
        message = ngettext(
            "required field missing: {names}", "required fields missing: {names}", len(missing), names=names
        )
    else:
        errors = {d.key: _("{label} is required and cannot be cleared", label=d.label) for d in missing}
        message = "; ".join(errors.values())
    raise ValidationError(message, field=missing[0].key, errors=errors)


def apply_changes(uow: UnitOfWork, parsed: Parsed, entity_id: int) -> None:
    """Store parsed values for the record ``entity_id`` (None clears)."""
    for definition, value in parsed.values():
        set_value(uow, definition, entity_id, value)


def current_text(uow: UnitOfWork, entity: FieldEntity, entity_id: int) -> dict[str, str]:
    """Every custom field value of the record as text, by key (as a form shows it)."""
    return {v.definition.key: v.display for v in values_for(uow, entity, entity_id)}


def changed(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, dict[str, str | None]]:
    """field -> {old, new} for what differs between two ``current_text``-style snapshots."""
    return {
        key: {"old": before.get(key) or None, "new": after.get(key) or None}
        for key in sorted(before.keys() | after.keys())
        if before.get(key, "") != after.get(key, "")
    }
