"""Tables and rows in a database-neutral form: what a backup holds and how it is checksummed.

A table is described by its name, primary key and columns, each column with a neutral kind
(int, float, bool, str, datetime, date, json). The same description reads the source and writes
the target, whichever database each is, so SQLite and PostgreSQL values meet in one form:

- datetime: ISO 8601 in UTC with microseconds (``2026-01-02T03:04:05.000000Z``);
- json: the document's canonical text (sorted keys, no spaces), or null for SQL NULL, so JSON
  ``null`` and SQL NULL stay apart;
- every row is one line, the JSON array of its values in column order.

A table's checksum is the sum of the rows' SHA-256 digests modulo 2^256: independent of row
order (SQLite and PostgreSQL sort text differently) and computed in one pass over a stream.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from crm_core.models.base import UTCDateTime

_MOD = 1 << 256


@dataclass(frozen=True)
class TableSpec:
    name: str
    primary_key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "primary_key": list(self.primary_key), "columns": [list(c) for c in self.columns]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableSpec:
        return cls(data["name"], tuple(data["primary_key"]), tuple((name, kind) for name, kind in data["columns"]))

    def table(self) -> sa.Table:
        """A Core table of these columns, typed so each database converts values the same way."""
        return _table(self)


@functools.lru_cache(maxsize=512)
def _table(spec: TableSpec) -> sa.Table:
    # One Table object per spec: SQLAlchemy caches compiled statements per table object, and
    # building a new one for every read made each statement compile afresh.
    return sa.Table(
        spec.name,
        sa.MetaData(),
        *(sa.Column(name, _TYPES[kind](), primary_key=name in spec.primary_key) for name, kind in spec.columns),
    )


def _kind(column_type: sa.types.TypeEngine) -> str:
    if isinstance(column_type, sa.types.TypeDecorator) and not isinstance(column_type, UTCDateTime):
        # An encrypted column (crm_core.field_crypto) is copied as stored, ciphertext and all: the
        # backup is encrypted itself, and the same key opens the values in a restored database.
        column_type = column_type.impl_instance
    if isinstance(column_type, sa.JSON):
        return "json"
    if isinstance(column_type, UTCDateTime | sa.DateTime):
        return "datetime"
    if isinstance(column_type, sa.Date):
        return "date"
    if isinstance(column_type, sa.Boolean):
        return "bool"
    if isinstance(column_type, sa.Float):
        return "float"
    if isinstance(column_type, sa.Integer):
        return "int"
    if isinstance(column_type, sa.LargeBinary):
        return "bytes"
    # Strings, texts and the portable enums (VARCHAR holding the value).
    return "str"


_TYPES: dict[str, Any] = {
    "int": sa.BigInteger,
    "float": sa.Double,
    "bool": sa.Boolean,
    "str": sa.Text,
    "datetime": UTCDateTime,
    "date": sa.Date,
    # Base64 in the line (customers' wrapped data keys, stored API answers).
    "bytes": sa.LargeBinary,
    # none_as_null: Python None is SQL NULL; JSON null is written as sa.JSON.NULL (see decode).
    "json": lambda: sa.JSON(none_as_null=True),
}


def specs_of(metadata: sa.MetaData) -> list[TableSpec]:
    """Every table of the models, parents before children (the order a restore loads them in)."""
    return [
        TableSpec(
            table.name,
            tuple(column.name for column in table.primary_key.columns),
            tuple((column.name, _kind(column.type)) for column in table.columns),
        )
        for table in metadata.sorted_tables
    ]


def select_rows(spec: TableSpec) -> sa.Select:
    """The table's rows in primary-key order; JSON read as its stored text (see module doc)."""
    table = spec.table()
    columns = [sa.cast(table.c[name], sa.Text) if kind == "json" else table.c[name] for name, kind in spec.columns]
    return sa.select(*columns).order_by(*(table.c[name] for name in spec.primary_key))


def encode(spec: TableSpec, row: Sequence[Any]) -> str:
    """One row as its canonical line (without the newline)."""
    return json.dumps(
        [_encode_value(kind, value) for (_, kind), value in zip(spec.columns, row, strict=True)],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _encode_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if kind == "date":
        return value.isoformat()
    if kind == "json":
        return json.dumps(json.loads(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if kind == "float":
        return float(value)
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode()
    return str(value)


def decode(spec: TableSpec, line: str | bytes) -> dict[str, Any]:
    """A row line back to the values to insert."""
    values = json.loads(line)
    return {name: _decode_value(kind, value) for (name, kind), value in zip(spec.columns, values, strict=True)}


def _decode_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "json":
        document = json.loads(value)
        return sa.JSON.NULL if document is None else document
    if kind == "bytes":
        return base64.b64decode(value)
    return value


class Checksum:
    """Row count and order-independent SHA-256 sum of one table's canonical lines."""

    def __init__(self) -> None:
        self.rows = 0
        self._sum = 0

    def add(self, line: str | bytes) -> None:
        data = line.encode() if isinstance(line, str) else line
        self._sum = (self._sum + int.from_bytes(hashlib.sha256(data).digest(), "big")) % _MOD
        self.rows += 1

    @property
    def hexdigest(self) -> str:
        return self._sum.to_bytes(32, "big").hex()


def table_checksum(connection: sa.Connection, spec: TableSpec, batch: int = 5000) -> Checksum:
    """Count and checksum a table as it is in the database (restore verifies with this)."""
    checksum = Checksum()
    result = connection.execution_options(yield_per=batch).execute(select_rows(spec))
    for row in result:
        checksum.add(encode(spec, row))
    return checksum
