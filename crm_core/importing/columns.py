"""Which source column feeds which CRM field: the user's mapping first, then columns named like a field.

Names match loosely (case, spaces, "-" and "_" ignored: "E-mail" is email, "External Ref" is
external_ref), and each field has a few common aliases (a retail export's "InvoiceNo" is an
order's number). When a required field has no column the message lists the columns there are,
and says when they look like one column holding several (a ";"-separated file read with ",").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from crm_core.i18n import _, pgettext
from crm_core.importing.table import ImportFailed, Table


@dataclass(frozen=True)
class FieldSpec:
    name: str
    aliases: tuple[str, ...] = ()
    required: bool = False


def _key(name: str) -> str:
    return re.sub(r"[\W_]+", "", name.casefold())


def _listing(header: Sequence[str]) -> str:
    shown = ", ".join(repr(h) for h in header[:30])
    return shown + (", " + _("… ({count} in all)", count=len(header)) if len(header) > 30 else "")


def _shown(sep: str) -> str:
    return repr(sep)[1:-1]


def _separator_hint(table: Table) -> str:
    if table.suspect_separator:
        return _(
            "; the file seems to be separated by '{sep}': drop --sep or give --sep '{sep}'",
            sep=_shown(table.suspect_separator),
        )
    if len(table.header) == 1:
        for sep in ";\t|,":
            if sep in table.header[0]:
                return _("; the file seems to be separated by '{sep}': give --sep '{sep}'", sep=_shown(sep))
    return ""


def _entity(singular: str) -> str:
    """What an import brings in ("customer", a mapper's ``singular``), as the reader says it."""
    names = {
        "customer": pgettext("import of", "customer"),
        "company": pgettext("import of", "company"),
        "deal": pgettext("import of", "deal"),
        "product": pgettext("import of", "product"),
        "order": pgettext("import of", "order"),
    }
    return names.get(singular, singular)


def resolve(table: Table, fields: Sequence[FieldSpec], mapping: Mapping[str, str], entity: str) -> dict[str, int]:
    """Field name -> index of its column in ``table.header``; ImportFailed when a mapping or required field fails."""
    by_key: dict[str, int] = {}
    for index, column in enumerate(table.header):
        by_key.setdefault(_key(column), index)
    known = {spec.name: spec for spec in fields}
    columns: dict[str, int] = {}
    for field, column in mapping.items():
        if field not in known:
            raise ImportFailed(
                _(
                    "--map {field}=…: '{field}' is not a {entity} field (fields: {fields})",
                    field=field,
                    entity=_entity(entity),
                    fields=", ".join(known),
                )
            )
        if _key(column) not in by_key:
            raise ImportFailed(
                _(
                    "--map {field}={column}: the source has no column '{column}'; the columns are: {columns}{hint}",
                    field=field,
                    column=column,
                    columns=_listing(table.header),
                    hint=_separator_hint(table),
                )
            )
        columns[field] = by_key[_key(column)]
    taken = set(columns.values())
    for spec in fields:
        if spec.name in columns:
            continue
        for name in (spec.name, *spec.aliases):
            found = by_key.get(_key(name))
            if found is not None and found not in taken:
                columns[spec.name] = found
                taken.add(found)
                break
    for spec in fields:
        if spec.required and spec.name not in columns:
            raise ImportFailed(
                _(
                    "no column matches '{field}'; the columns are: {columns}{hint} (or map one: --map {field}=COLUMN)",
                    field=spec.name,
                    columns=_listing(table.header),
                    hint=_separator_hint(table),
                )
            )
    return columns
