"""Customers' chat ids encrypted at rest, looked up through blind indexes

- Every column holding a customer's platform id or chat id (see ``_CHAT_IDS``) holds an AES-GCM
  token (crm_core.field_crypto, purpose ``chat_id`` for all of them: crm_core.models.chat_ids)
  and gets ``<column>_index``, the HMAC of the id under the blind-index key.
- ``customer_chats`` is unique on (platform, external_id_index) instead of (platform, external_id).
- On PostgreSQL the id columns become TEXT (a token is longer than the id).
- Existing rows are encrypted, and their indexes filled, with the key the migrating engine was
  given, as 0023 does: a database with chat ids and no key refuses, in one line. The downgrade
  decrypts them back.

Revision ID: 0024_chat_id_encryption
Revises: 0023_field_encryption
Create Date: 2026-12-03 09:50:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from crm_core import field_crypto
from crm_core.key_rotation import Target, record_current_key, rotate_table

revision = "0024_chat_id_encryption"
down_revision = "0023_field_encryption"
branch_labels = None
depends_on = None

PURPOSE = "chat_id"
# table -> chat-id column -> the VARCHAR length it had, as of this revision.
_CHAT_IDS: dict[str, dict[str, int]] = {
    "customer_chats": {"external_id": 64, "conversation": 64},
}
# Index columns that get a database index (the others are covered by a unique constraint).
_LOOKED_UP = {("customer_chats", "conversation_index")}
_OLD_UNIQUE = ("uq_customer_chats_platform_external_id", ["platform", "external_id"])
_NEW_UNIQUE = ("uq_customer_chats_platform_external_id_index", ["platform", "external_id_index"])


def _derive(columns: dict[str, int]) -> Any:
    # Frozen here (not the models' function): what the blind indexes are at this revision.
    def derive(keys: field_crypto.FieldKeys, plain: dict[str, str | None]) -> dict[str, str | None]:
        return {f"{name}_index": keys.blind(PURPOSE, plain.get(name)) for name in columns}

    return derive


def _keys(connection: sa.Connection) -> field_crypto.FieldKeys | None:
    if field_crypto.has_keys(connection):
        return field_crypto.keys_for(connection)
    for table, columns in _CHAT_IDS.items():
        where = sa.or_(*(sa.column(name).is_not(None) for name in columns))
        if connection.execute(sa.select(sa.literal(1)).select_from(sa.table(table)).where(where).limit(1)).first():
            raise field_crypto.FieldKeyError(
                "migration 0024 encrypts the chat ids already stored and needs CHATCRM_SECRET_KEY: set it "
                "(or run `chatcrm db upgrade`, which uses the SQLite database's key file) and try again"
            )
    return None


def _swap_unique(drop: tuple[str, list[str]], create: tuple[str, list[str]]) -> None:
    # SQLite changes a constraint by rebuilding the table (customer_chats has no triggers to lose).
    with op.batch_alter_table("customer_chats") as batch:
        batch.drop_constraint(drop[0], type_="unique")
        batch.create_unique_constraint(create[0], create[1])


def upgrade() -> None:
    connection = op.get_bind()
    postgres = connection.dialect.name == "postgresql"
    for table, columns in _CHAT_IDS.items():
        for name, length in columns.items():
            op.add_column(table, sa.Column(f"{name}_index", sa.String(field_crypto.BLIND_LENGTH), nullable=True))
            if (table, f"{name}_index") in _LOOKED_UP:
                op.create_index(f"ix_{table}_{name}_index", table, [f"{name}_index"])
            if postgres:
                op.alter_column(table, name, type_=sa.Text(), existing_type=sa.String(length))
    keys = _keys(connection)
    if keys is not None:
        for table, columns in _CHAT_IDS.items():
            target = Target(
                table,
                {name: PURPOSE for name in columns},
                _derive(columns),
                {f"{name}_index": sa.String for name in columns},
            )
            rotate_table(connection, keys, target)
        record_current_key(connection, keys)
    _swap_unique(_OLD_UNIQUE, _NEW_UNIQUE)


def downgrade() -> None:
    _swap_unique(_NEW_UNIQUE, _OLD_UNIQUE)
    connection = op.get_bind()
    keys = field_crypto.keys_for(connection) if field_crypto.has_keys(connection) else None
    postgres = connection.dialect.name == "postgresql"
    for table, columns in _CHAT_IDS.items():
        _decrypt(connection, keys, table, list(columns))
        for name, length in columns.items():
            if (table, f"{name}_index") in _LOOKED_UP:
                op.drop_index(f"ix_{table}_{name}_index", table_name=table)
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}_index")
            if postgres:
                op.alter_column(table, name, type_=sa.String(length), existing_type=sa.Text())


def _decrypt(
    connection: sa.Connection, keys: field_crypto.FieldKeys | None, table_name: str, columns: list[str]
) -> None:
    table = sa.table(table_name, sa.column("id", sa.Integer), *(sa.column(name, sa.String) for name in columns))
    prefix = field_crypto.PREFIX
    sealed = sa.or_(*(sa.func.substr(table.c[name], 1, len(prefix)) == prefix for name in columns))
    rows = connection.execute(sa.select(table).where(sealed)).all()
    if not rows:
        return
    if keys is None:
        raise field_crypto.FieldKeyError(
            "downgrading below 0024 decrypts the chat ids and needs the CHATCRM_SECRET_KEY they were written with"
        )
    opened = []
    for row in rows:
        stored = row._mapping
        plain = {
            f"plain_{name}": None if stored[name] is None else keys.decrypt(PURPOSE, stored[name]) for name in columns
        }
        opened.append({"row_pk": row.id, **plain})
    connection.execute(
        table.update()
        .where(table.c.id == sa.bindparam("row_pk"))
        .values({name: sa.bindparam(f"plain_{name}") for name in columns}),
        opened,
    )
