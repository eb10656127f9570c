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
from crm_core.models.base import UTCDateTime

revision = "0024_chat_id_encryption"
down_revision = "0023_field_encryption"
branch_labels = None
depends_on = None

PURPOSE = "chat_id"
# table -> chat-id column -> the VARCHAR length it had, as of this revision.
_CHAT_IDS: dict[str, dict[str, int]] = {
    "customer_chats": {"external_id": 64, "conversation": 64},
    "customer_consents": {"conversation": 100},
    "campaign_recipients": {"conversation": 100},
    "outbox": {"conversation": 100},
}
# Indexes on a chat id that move to its blind index: name -> (table, columns before, columns after).
_INDEXES = {
    "ix_customer_chats_conversation_index": ("customer_chats", None, ["conversation_index"]),
    "ix_customer_consents_address": (
        "customer_consents",
        ["platform", "conversation"],
        ["platform", "conversation_index"],
    ),
    "ix_outbox_recipient": (
        "outbox",
        ["platform", "conversation", "status"],
        ["platform", "conversation_index", "status"],
    ),
}
_OLD_UNIQUE = ("uq_customer_chats_platform_external_id", ["platform", "external_id"])
_NEW_UNIQUE = ("uq_customer_chats_platform_external_id_index", ["platform", "external_id_index"])
# blocked_recipients was keyed by (platform, conversation): it gets an id and is rebuilt.
_BLOCKED = "blocked_recipients"


def _blind(keys: field_crypto.FieldKeys, chat_id: str | None) -> str | None:
    # Frozen here (not the models' function): the blind index at this revision, "g" first for groups.
    mac = keys.blind(PURPOSE, chat_id)
    if mac is None or chat_id is None or not chat_id.startswith("-"):
        return mac
    return "g" + mac[1:]


def _derive(columns: dict[str, int]) -> Any:
    def derive(keys: field_crypto.FieldKeys, plain: dict[str, str | None]) -> dict[str, str | None]:
        return {f"{name}_index": _blind(keys, plain.get(name)) for name in columns}

    return derive


def _keys(connection: sa.Connection) -> field_crypto.FieldKeys | None:
    if field_crypto.has_keys(connection):
        return field_crypto.keys_for(connection)
    for table, columns in [*_CHAT_IDS.items(), (_BLOCKED, {"conversation": 100})]:
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


_BLOCKED_ROW = sa.table(
    _BLOCKED,
    sa.column("platform"),
    sa.column("conversation"),
    sa.column("reason"),
    sa.column("blocked_at", UTCDateTime()),
)


def _rebuild_blocked(keyed: bool, rows: list[dict[str, Any]], postgres: bool) -> None:
    """blocked_recipients again, with an id and the blind index (``keyed``) or as it was, holding ``rows``."""
    op.drop_table(_BLOCKED)
    conversation = sa.Text() if keyed and postgres else sa.String(length=100)
    columns: list[Any] = [
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("conversation", conversation, nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("blocked_at", UTCDateTime(), nullable=False),
    ]
    if keyed:
        columns += [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("conversation_index", sa.String(length=field_crypto.BLIND_LENGTH), nullable=True),
            sa.PrimaryKeyConstraint("id", name="pk_blocked_recipients"),
            sa.UniqueConstraint(
                "platform", "conversation_index", name="uq_blocked_recipients_platform_conversation_index"
            ),
        ]
    else:
        columns.append(sa.PrimaryKeyConstraint("platform", "conversation", name="pk_blocked_recipients"))
    table = op.create_table(_BLOCKED, *columns)
    if rows:
        op.bulk_insert(table, rows)


def upgrade() -> None:
    connection = op.get_bind()
    postgres = connection.dialect.name == "postgresql"
    keys = _keys(connection)
    for name, (table, before, _after) in _INDEXES.items():
        if before:
            op.drop_index(name, table_name=table)
    for table, columns in _CHAT_IDS.items():
        for name, length in columns.items():
            op.add_column(table, sa.Column(f"{name}_index", sa.String(field_crypto.BLIND_LENGTH), nullable=True))
            if postgres:
                op.alter_column(table, name, type_=sa.Text(), existing_type=sa.String(length))
    blocked = [dict(row._mapping) for row in connection.execute(sa.select(_BLOCKED_ROW))]
    if keys is not None:
        for table, columns in _CHAT_IDS.items():
            target = Target(
                table,
                {name: PURPOSE for name in columns},
                _derive(columns),
                {f"{name}_index": sa.String for name in columns},
            )
            rotate_table(connection, keys, target)
        for row in blocked:
            plain = keys.decrypt(PURPOSE, row["conversation"])
            row.update(conversation=keys.encrypt(PURPOSE, plain), conversation_index=_blind(keys, plain))
        record_current_key(connection, keys)
    _rebuild_blocked(True, blocked, postgres)
    for name, (table, _before, after) in _INDEXES.items():
        op.create_index(name, table, after)
    _swap_unique(_OLD_UNIQUE, _NEW_UNIQUE)


def downgrade() -> None:
    _swap_unique(_NEW_UNIQUE, _OLD_UNIQUE)
    connection = op.get_bind()
    keys = field_crypto.keys_for(connection) if field_crypto.has_keys(connection) else None
    postgres = connection.dialect.name == "postgresql"
    for name, (table, _before, _after) in _INDEXES.items():
        op.drop_index(name, table_name=table)
    blocked = [dict(row._mapping) for row in connection.execute(sa.select(_BLOCKED_ROW))]
    for row in blocked:
        row["conversation"] = _open(keys, row["conversation"])
    _rebuild_blocked(False, blocked, postgres)
    for table, columns in _CHAT_IDS.items():
        _decrypt(connection, keys, table, list(columns))
        for name, length in columns.items():
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}_index")
            if postgres:
                op.alter_column(table, name, type_=sa.String(length), existing_type=sa.Text())
    for name, (table, before, _after) in _INDEXES.items():
        if before:
            op.create_index(name, table, before)


def _open(keys: field_crypto.FieldKeys | None, stored: str | None) -> str | None:
    if stored is None or not stored.startswith(field_crypto.PREFIX):
        return stored
    if keys is None:
        raise field_crypto.FieldKeyError(
            "downgrading below 0024 decrypts the chat ids and needs the CHATCRM_SECRET_KEY they were written with"
        )
    return keys.decrypt(PURPOSE, stored)


def _decrypt(
    connection: sa.Connection, keys: field_crypto.FieldKeys | None, table_name: str, columns: list[str]
) -> None:
    table = sa.table(table_name, sa.column("id", sa.Integer), *(sa.column(name, sa.String) for name in columns))
    prefix = field_crypto.PREFIX
    sealed = sa.or_(*(sa.func.substr(table.c[name], 1, len(prefix)) == prefix for name in columns))
    opened = [
        {"row_pk": row.id, **{f"plain_{name}": _open(keys, row._mapping[name]) for name in columns}}
        for row in connection.execute(sa.select(table).where(sealed))
    ]
    if opened:
        connection.execute(
            table.update()
            .where(table.c.id == sa.bindparam("row_pk"))
            .values({name: sa.bindparam(f"plain_{name}") for name in columns}),
            opened,
        )
