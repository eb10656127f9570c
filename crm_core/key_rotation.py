"""Moving the encrypted personal data to the current key: ``chatcrm keys rotate`` and ``keys status``.

Rotation re-encrypts every value of every ``Encrypted`` column that is not under the current key
(CHATCRM_SECRET_KEY's first), legacy plaintext included, recomputes the blind indexes of those
rows, and re-wraps the customers' data keys (crm_core.customer_keys) with the current key. It
walks each table in primary-key order, one transaction per batch, and only touches rows that
still need it: stopped half-way, it is simply run again. When every value has moved, the other
key ids are forgotten (crm_core.field_crypto: start-up then no longer asks for the old key).

The migration that introduced encryption (0023) runs the same walk over its own frozen list of
columns to encrypt the rows written before it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from crm_core import customer_keys, field_crypto
from crm_core.clock import utcnow
from crm_core.field_crypto import PREFIX, Encrypted, EncryptedJSON, FieldKeys
from crm_core.i18n import _, format_number
from crm_core.models.customers import CustomerKey
from crm_core.models.encryption import EncryptionKey

BATCH = 1000

# A table's derived columns (blind indexes) from the plaintext of its encrypted columns.
Derive = Callable[[FieldKeys, dict[str, str | None]], dict[str, str | None]]


# -- which keys the data were written with (crm_core.field_crypto) -------------------------------


def recorded_key_ids(connection: sa.Connection) -> list[str]:
    return list(connection.execute(sa.select(EncryptionKey.key_id)).scalars())


def record_current_key(connection: sa.Connection, keys: FieldKeys) -> None:
    """Note that data may now be written under the current key (once; concurrent starts race safely)."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(
        insert(EncryptionKey).values(key_id=keys.current.key_id, first_used_at=utcnow()).on_conflict_do_nothing()
    )


def forget_keys(connection: sa.Connection, key_ids: Sequence[str]) -> None:
    connection.execute(sa.delete(EncryptionKey).where(EncryptionKey.key_id.in_(list(key_ids))))


@dataclass(frozen=True)
class Target:
    """A table with encrypted columns: column -> purpose, which of them are JSON documents
    (``EncryptedJSON``), and the columns derived from their plaintext (name -> SQL type)."""

    table: str
    columns: dict[str, str]
    derive: Derive | None = None
    derived: dict[str, Any] = field(default_factory=dict)
    primary_key: str = "id"
    json_columns: frozenset[str] = frozenset()

    def stored_text(self, table: sa.TableClause, name: str) -> sa.ColumnElement[Any]:
        """The column as text: a JSON column's document text (a token is a JSON string, quoted)."""
        column = table.c[name]
        return sa.cast(column, sa.Text) if name in self.json_columns else column

    def token_prefix(self, name: str, prefix: str) -> str:
        return '"' + prefix if name in self.json_columns else prefix

    def plaintext(self, keys: FieldKeys, name: str, stored: str) -> str:
        """The plaintext of a stored value (a JSON column's: the document's text)."""
        if name not in self.json_columns:
            return keys.decrypt(self.columns[name], stored)
        document = json.loads(stored)
        if isinstance(document, str) and document.startswith(PREFIX):
            return keys.decrypt(self.columns[name], document)
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _customer_indexes(keys: FieldKeys, plain: dict[str, str | None]) -> dict[str, str | None]:
    from crm_core.models.customers import contact_indexes

    return contact_indexes(keys, plain.get("email"), plain.get("phone"))


CUSTOMER_INDEXES = {"email_index": sa.String, "phone_index": sa.String, "phone_tail": sa.String}


def _chat_id_indexes(columns: tuple[str, ...]) -> Derive:
    from crm_core.models import chat_ids

    def derive(keys: FieldKeys, plain: dict[str, str | None]) -> dict[str, str | None]:
        return chat_ids.indexes(keys, {name: plain.get(name) for name in columns})

    return derive


def targets() -> list[Target]:
    """Every table of the models with encrypted columns, found by their column type."""
    from crm_core.models import Base, chat_ids

    found = []
    for table in Base.metadata.sorted_tables:
        columns = {c.name: c.type.purpose for c in table.columns if isinstance(c.type, Encrypted | EncryptedJSON)}
        if not columns:
            continue
        documents = frozenset(c.name for c in table.columns if isinstance(c.type, EncryptedJSON))
        if table.name == "customers":
            found.append(Target(table.name, columns, _customer_indexes, CUSTOMER_INDEXES, json_columns=documents))
        elif table.name in chat_ids.INDEXED:
            # Chat ids (crm_core.models.chat_ids): their blind indexes are recomputed with them.
            ids = chat_ids.INDEXED[table.name]
            derived = {name + chat_ids.INDEX_SUFFIX: sa.String for name in ids}
            found.append(Target(table.name, columns, _chat_id_indexes(ids), derived, json_columns=documents))
        else:
            (primary_key,) = [c.name for c in table.primary_key.columns]
            found.append(Target(table.name, columns, primary_key=primary_key, json_columns=documents))
    return found


@contextlib.contextmanager
def _transaction(bind: Engine | sa.Connection) -> Iterator[sa.Connection]:
    # An engine: a transaction per batch. A connection (a migration's): the caller's transaction.
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            yield connection
    else:
        yield bind


def _light_table(target: Target) -> sa.TableClause:
    # Raw strings in and out: this module encrypts by hand, whatever the models' types say.
    columns: list[sa.ColumnClause[Any]] = [sa.column(target.primary_key, sa.Integer)]
    columns += [sa.column(name, sa.JSON if name in target.json_columns else sa.String) for name in target.columns]
    columns += [sa.column(name, kind) for name, kind in target.derived.items()]
    return sa.table(target.table, *columns)


def rotate_table(
    bind: Engine | sa.Connection,
    keys: FieldKeys,
    target: Target,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> int:
    """Re-encrypt the rows of one table not yet under the current key; returns how many."""
    table = _light_table(target)
    pk = table.c[target.primary_key]
    prefix = keys.current.prefix
    stale = sa.or_(
        *(
            sa.and_(
                table.c[name].is_not(None),
                sa.func.substr(target.stored_text(table, name), 1, len(target.token_prefix(name, prefix)))
                != target.token_prefix(name, prefix),
            )
            for name in target.columns
        )
    )
    changed = [*target.columns, *target.derived]
    update = (
        table.update()
        .where(pk == sa.bindparam("row_pk"))
        .values({name: sa.bindparam(f"new_{name}") for name in changed})
    )
    done = 0
    last: int | None = None
    while True:
        with _transaction(bind) as connection:
            query = sa.select(pk, *(target.stored_text(table, name).label(name) for name in target.columns)).where(
                stale
            )
            if last is not None:
                query = query.where(pk > last)
            # FOR UPDATE (PostgreSQL; SQLite's writer holds the database): a row changed by the running
            # app between this read and the write below would otherwise get its old value back.
            rows = connection.execute(query.order_by(pk).limit(batch).with_for_update()).all()
            if not rows:
                return done
            updates = []
            for row in rows:
                stored = row._mapping
                plain = {
                    name: None if stored[name] is None else target.plaintext(keys, name, stored[name])
                    for name in target.columns
                }
                values: dict[str, Any] = {"row_pk": stored[target.primary_key]}
                for name, purpose in target.columns.items():
                    value = plain[name]
                    values[f"new_{name}"] = None if value is None else keys.encrypt(purpose, value)
                if target.derive:
                    values.update({f"new_{k}": v for k, v in target.derive(keys, plain).items()})
                updates.append(values)
            connection.execute(update, updates)
        done += len(rows)
        last = rows[-1][0]
        if progress:
            progress(target.table, done)


@dataclass
class RotationReport:
    key_id: str
    rows: dict[str, int] = field(default_factory=dict)
    data_keys: int = 0
    forgotten: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """What the rotation did, in the current language (the CLI's: CHATCRM_LANGUAGE)."""
        per_table = ", ".join(f"{table} {format_number(count)}" for table, count in self.rows.items() if count)
        lines = [
            _(
                "Re-encrypted {rows} rows under key id {key_id} ({tables}); re-wrapped {data_keys} customer data keys.",
                rows=format_number(sum(self.rows.values())),
                key_id=self.key_id,
                tables=per_table or _("none"),
                data_keys=format_number(self.data_keys),
            )
        ]
        if self.forgotten:
            lines.append(
                _(
                    "No data is left under key id {key_ids}: that key may now be removed from CHATCRM_SECRET_KEY "
                    "(keep it while you may restore a backup made with it).",
                    key_ids=", ".join(self.forgotten),
                )
            )
        return "\n".join(lines)


def rotate(
    engine: Engine,
    secrets: Sequence[bytes],
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> RotationReport:
    """Move every encrypted value, blind index and customer data key to the current key."""
    keys = field_crypto.keys_for(engine)
    report = RotationReport(keys.current.key_id)
    with engine.begin() as connection:
        record_current_key(connection, keys)
    for target in targets():
        report.rows[target.table] = rotate_table(engine, keys, target, batch, progress)
    report.data_keys = customer_keys.rewrap_all(engine, customer_keys.Keyring(secrets), batch)
    with engine.begin() as connection:
        others = [key_id for key_id in recorded_key_ids(connection) if key_id != keys.current.key_id]
        if others:
            forget_keys(connection, others)
        report.forgotten = others
    return report


def check_keys(engine: Engine, secrets: Sequence[bytes]) -> None:
    """Stop with one clear line when stored data are under a key that is not configured; otherwise
    record the current key. Called once at start-up, after the schema is up to date.

    A recorded key id without a key is forgotten if nothing is under it any more (a database that
    was only ever opened with another key, and never written to): only then does looking cost a
    scan, on the way to the error.
    """
    keys = field_crypto.keys_for(engine)
    with engine.begin() as connection:
        missing = [key_id for key_id in recorded_key_ids(connection) if key_id not in keys.by_id]
        if missing:
            used = [key_id for key_id in missing if _holds_values(connection, key_id)]
            if used or not _data_keys_open(connection, secrets):
                raise field_crypto.FieldKeyError(field_crypto.missing_key_message(used or missing))
            forget_keys(connection, missing)
        record_current_key(connection, keys)


def _holds_values(connection: sa.Connection, key_id: str) -> bool:
    for target in targets():
        table = _light_table(target)
        for name in target.columns:
            prefix = target.token_prefix(name, f"{PREFIX}{key_id}$")
            column = target.stored_text(table, name)
            found = sa.select(sa.literal(1)).where(sa.func.substr(column, 1, len(prefix)) == prefix).limit(1)
            if connection.execute(found).first():
                return True
    return False


def _data_keys_open(connection: sa.Connection, secrets: Sequence[bytes]) -> bool:
    """Whether a customer's data key (the audit log's, crm_core.customer_keys) opens with these keys:
    a customer with a name only has no encrypted column, yet an audited one has a data key."""
    row = connection.execute(
        sa.select(CustomerKey.customer_id, CustomerKey.wrapped_key).order_by(CustomerKey.customer_id).limit(1)
    ).first()
    if row is None:
        return True
    try:
        customer_keys.Keyring(secrets).rewrapped(row.customer_id, bytes(row.wrapped_key))
    except customer_keys.KeyUnavailable:
        return False
    return True


@dataclass(frozen=True)
class ColumnStatus:
    name: str
    # key id -> values under it; "" for values in the clear (written before encryption).
    counts: dict[str, int]


def status(engine: Engine) -> list[ColumnStatus]:
    """How many values of each encrypted column are under each key id (and in the clear)."""
    found = []
    with engine.connect() as connection:
        for target in targets():
            table = _light_table(target)
            for name in target.columns:
                column = target.stored_text(table, name)
                prefix = target.token_prefix(name, PREFIX)
                is_token = sa.func.substr(column, 1, len(prefix)) == prefix
                key_id = sa.case(
                    (is_token, sa.func.substr(column, len(prefix) + 1, field_crypto.KEY_ID_LENGTH)), else_=""
                ).label("key_id")
                rows = connection.execute(
                    sa.select(key_id, sa.func.count()).where(table.c[name].is_not(None)).group_by(key_id)
                ).all()
                found.append(ColumnStatus(f"{target.table}.{name}", {row[0]: row[1] for row in rows}))
    return found


def describe_status(key_ids: Sequence[str], columns: Sequence[ColumnStatus]) -> str:
    """``chatcrm keys status``: the configured keys (the first is current), then each encrypted column's
    values by key, in the current language."""
    current = key_ids[0]
    if len(key_ids) > 1:
        lines = [
            _(
                "Current key id {key_id} (the first of CHATCRM_SECRET_KEY); also configured: {others}.",
                key_id=current,
                others=", ".join(key_ids[1:]),
            )
        ]
    else:
        lines = [_("Current key id {key_id} (the first of CHATCRM_SECRET_KEY).", key_id=current)]
    behind = 0
    for column in columns:
        parts = [
            _("{count} in the clear", count=format_number(count))
            if key_id == ""
            else _("{count} under {key_id}", count=format_number(count), key_id=key_id)
            for key_id, count in sorted(column.counts.items())
        ]
        behind += sum(count for key_id, count in column.counts.items() if key_id != current)
        counts = ", ".join(parts) or _("empty")
        lines.append(f"  {column.name}: {counts}")
    if behind:
        lines.append(
            _("{count} values are not under the current key: run `chatcrm keys rotate`.", count=format_number(behind))
        )
    else:
        lines.append(_("Every value is under the current key."))
    return "\n".join(lines)
