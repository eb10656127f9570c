"""Field encryption at rest: personal columns hold AES-GCM tokens, emails and phones blind indexes

- ``customers``: ``email_index``, ``phone_index`` and ``phone_tail`` (HMACs, crm_core.field_crypto)
  replace ``phone_key`` and ``phone_rev``, which held the digits in the clear; the plain index on
  ``email`` goes (an index over random tokens finds nothing).
- On PostgreSQL the encrypted columns become TEXT (a token is longer than its plaintext; SQLite
  does not enforce lengths, and rebuilding ``customers`` there would drop its search triggers).
- ``events.payload`` and ``outbox.payload`` hold their JSON documents encrypted (a JSON string);
  ``events.customer_id`` keeps the payload's customer id in the clear, for erasure to find them.
- ``custom_field_values.value_sealed`` holds the values of fields marked personal, encrypted, as
  text; their typed columns are emptied.
- ``encryption_keys`` records the key ids data were written with.
- Rows written before are encrypted here, with the key the migrating engine was given
  (crm_core.field_crypto.use_keys: ``chatcrm db upgrade`` and start-up give it). A database with
  personal data and no key refuses, in one line. The downgrade decrypts everything back.

Revision ID: 0023_field_encryption
Revises: 0022_chat_imports
Create Date: 2026-12-03 06:40:00
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from crm_core import field_crypto, text
from crm_core.key_rotation import Target, record_current_key, rotate_table
from crm_core.models.base import UTCDateTime

revision = "0023_field_encryption"
down_revision = "0022_chat_imports"
branch_labels = None
depends_on = None

# table -> (column -> (purpose, VARCHAR length it had)), as of this revision.
_ENCRYPTED: dict[str, dict[str, tuple[str, int | None]]] = {
    "customers": {"email": ("customers.email", 320), "phone": ("customers.phone", 40)},
    "customer_relationships": {"note": ("customer_relationships.note", 500)},
    "customer_chats": {"display_name": ("customer_chats.display_name", 200)},
    "tickets": {"subject": ("tickets.subject", 300)},
    "ticket_messages": {"text": ("ticket_messages.text", None)},
    "interactions": {"text": ("interactions.text", None)},
    "followups": {"text": ("followups.text", 1000)},
    "webhook_endpoints": {"secret": ("webhook_endpoints.secret", 100)},
    "inbound_events": {"payload": ("inbound_events.payload", None)},
    "events": {"payload": ("events.payload", None)},
    "outbox": {"payload": ("outbox.payload", None)},
}
_DOCUMENTS = {("events", "payload"), ("outbox", "payload")}
_INDEXES = ("email_index", "phone_index", "phone_tail")


def _indexes(keys: field_crypto.FieldKeys, plain: dict[str, str | None]) -> dict[str, str | None]:
    # Frozen here (not the model's function): what the blind indexes were at this revision.
    email, phone = plain.get("email"), plain.get("phone")
    return {
        "email_index": keys.blind("customers.email", text.normalize_email(email)),
        "phone_index": keys.blind("customers.phone", text.phone_key(phone)),
        "phone_tail": keys.blind("customers.phone_tail", text.phone_tail(phone)),
    }


def _event_customer(_keys: field_crypto.FieldKeys, plain: dict[str, str | None]) -> dict[str, Any]:
    payload = json.loads(plain["payload"] or "{}")
    customer = payload.get("customer_id") if isinstance(payload, dict) else None
    return {"customer_id": customer if isinstance(customer, int) else None}


def _targets() -> list[Target]:
    found = []
    for table, columns in _ENCRYPTED.items():
        purposes = {name: purpose for name, (purpose, _length) in columns.items()}
        documents = frozenset(name for name in columns if (table, name) in _DOCUMENTS)
        if table == "customers":
            found.append(Target(table, purposes, _indexes, {name: sa.String for name in _INDEXES}))
        elif table == "events":
            found.append(Target(table, purposes, _event_customer, {"customer_id": sa.Integer}, json_columns=documents))
        else:
            found.append(Target(table, purposes, json_columns=documents))
    return found


_VALUES = sa.table(
    "custom_field_values",
    sa.column("id", sa.Integer),
    sa.column("definition_id", sa.Integer),
    sa.column("value_text", sa.String),
    sa.column("value_number", sa.Float),
    sa.column("value_date", sa.Date),
    sa.column("value_sealed", sa.String),
)
_DEFINITIONS = sa.table(
    "custom_field_definitions", sa.column("id", sa.Integer), sa.column("type", sa.String), sa.column("personal")
)


def _personal_values(connection: sa.Connection, *, sealed: bool) -> list[Any]:
    personal = sa.select(_DEFINITIONS.c.id).where(_DEFINITIONS.c.personal == sa.true())
    where = [_VALUES.c.definition_id.in_(personal.scalar_subquery())]
    where.append(_VALUES.c.value_sealed.is_not(None) if sealed else _VALUES.c.value_sealed.is_(None))
    return list(
        connection.execute(
            sa.select(_VALUES, _DEFINITIONS.c.type)
            .join(_DEFINITIONS, _DEFINITIONS.c.id == _VALUES.c.definition_id)
            .where(*where)
        )
    )


def _seal_personal_values(connection: sa.Connection, keys: field_crypto.FieldKeys) -> None:
    updates = []
    for row in _personal_values(connection, sealed=False):
        value = next((v for v in (row.value_text, row.value_number, row.value_date) if v is not None), None)
        if value is None:
            continue
        plain = value.isoformat() if hasattr(value, "isoformat") else str(value)
        updates.append({"row_id": row.id, "sealed": keys.encrypt("custom_field_values.value_sealed", plain)})
    if updates:
        connection.execute(
            _VALUES.update()
            .where(_VALUES.c.id == sa.bindparam("row_id"))
            .values(value_sealed=sa.bindparam("sealed"), value_text=None, value_number=None, value_date=None),
            updates,
        )


def _unseal_personal_values(connection: sa.Connection, keys: field_crypto.FieldKeys | None) -> None:
    import datetime

    rows = _personal_values(connection, sealed=True)
    if rows and keys is None:
        raise field_crypto.FieldKeyError(
            "downgrading below 0023 decrypts the personal data and needs the CHATCRM_SECRET_KEY they were written with"
        )
    for row in rows:
        assert keys is not None
        plain = keys.decrypt("custom_field_values.value_sealed", row.value_sealed)
        typed: dict[str, Any] = {"value_text": None, "value_number": None, "value_date": None}
        if row.type == "number":
            typed["value_number"] = float(plain)
        elif row.type == "date":
            typed["value_date"] = datetime.date.fromisoformat(plain)
        else:
            typed["value_text"] = plain
        connection.execute(_VALUES.update().where(_VALUES.c.id == row.id).values(value_sealed=None, **typed))


def _has_personal_data(connection: sa.Connection) -> bool:
    if _personal_values(connection, sealed=False):
        return True
    for table, columns in _ENCRYPTED.items():
        where = sa.or_(*(sa.column(name).is_not(None) for name in columns))
        if connection.execute(sa.select(sa.literal(1)).select_from(sa.table(table)).where(where).limit(1)).first():
            return True
    return False


def _keys(connection: sa.Connection) -> field_crypto.FieldKeys | None:
    if field_crypto.has_keys(connection):
        return field_crypto.keys_for(connection)
    if _has_personal_data(connection):
        raise field_crypto.FieldKeyError(
            "migration 0023 encrypts the personal data already stored and needs CHATCRM_SECRET_KEY: set it "
            "(or run `chatcrm db upgrade`, which uses the SQLite database's key file) and try again"
        )
    return None


def upgrade() -> None:
    connection = op.get_bind()
    postgres = connection.dialect.name == "postgresql"
    op.create_table(
        "encryption_keys",
        sa.Column("key_id", sa.String(length=field_crypto.KEY_ID_LENGTH), nullable=False),
        sa.Column("first_used_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_encryption_keys")),
    )
    op.execute("DROP INDEX IF EXISTS ix_customers_search_phone_rev")
    op.drop_index("ix_customers_phone_key", table_name="customers")
    op.drop_index("ix_customers_email", table_name="customers")
    for name in ("phone_key", "phone_rev"):
        # SQLite (3.35+) drops a column in place; batch mode would rebuild the table and its triggers.
        op.execute(f"ALTER TABLE customers DROP COLUMN {name}")
    for name in _INDEXES:
        op.add_column("customers", sa.Column(name, sa.String(length=field_crypto.BLIND_LENGTH), nullable=True))
        op.create_index(f"ix_customers_{name}", "customers", [name])
    op.add_column("custom_field_values", sa.Column("value_sealed", sa.Text(), nullable=True))
    op.add_column("events", sa.Column("customer_id", sa.Integer(), nullable=True))
    op.create_index("ix_events_customer_id", "events", ["customer_id"])
    if postgres:
        for table, columns in _ENCRYPTED.items():
            for name, (_purpose, length) in columns.items():
                if length is not None:
                    op.alter_column(table, name, type_=sa.Text(), existing_type=sa.String(length))
    keys = _keys(connection)
    if keys is not None:
        for target in _targets():
            rotate_table(connection, keys, target)
        _seal_personal_values(connection, keys)
        record_current_key(connection, keys)


def downgrade() -> None:
    connection = op.get_bind()
    postgres = connection.dialect.name == "postgresql"
    keys = field_crypto.keys_for(connection) if field_crypto.has_keys(connection) else None
    for table, columns in _ENCRYPTED.items():
        documents = {name for name in columns if (table, name) in _DOCUMENTS}
        _decrypt_table(connection, keys, table, {name: purpose for name, (purpose, _) in columns.items()}, documents)
    _unseal_personal_values(connection, keys)
    op.execute("ALTER TABLE custom_field_values DROP COLUMN value_sealed")
    if postgres:
        for table, columns in _ENCRYPTED.items():
            for name, (_purpose, length) in columns.items():
                if length is not None:
                    op.alter_column(table, name, type_=sa.String(length), existing_type=sa.Text())
    for name in _INDEXES:
        op.drop_index(f"ix_customers_{name}", table_name="customers")
        op.execute(f"ALTER TABLE customers DROP COLUMN {name}")
    op.add_column("customers", sa.Column("phone_key", sa.String(length=9), nullable=True))
    op.add_column("customers", sa.Column("phone_rev", sa.String(length=40), nullable=True))
    customers = sa.table(
        "customers",
        sa.column("id", sa.Integer),
        sa.column("phone", sa.String),
        sa.column("phone_key", sa.String),
        sa.column("phone_rev", sa.String),
    )
    rows = connection.execute(sa.select(customers.c.id, customers.c.phone).where(customers.c.phone.is_not(None)))
    updates = [
        {"row_id": row.id, "key": text.phone_key(row.phone), "rev": text.phone_reversed(row.phone)} for row in rows
    ]
    if updates:
        connection.execute(
            customers.update()
            .where(customers.c.id == sa.bindparam("row_id"))
            .values(phone_key=sa.bindparam("key"), phone_rev=sa.bindparam("rev")),
            updates,
        )
    op.create_index("ix_customers_email", "customers", ["email"])
    op.create_index("ix_customers_phone_key", "customers", ["phone_key"])
    pattern_ops = " text_pattern_ops" if postgres else ""
    op.execute(f"CREATE INDEX ix_customers_search_phone_rev ON customers (phone_rev{pattern_ops})")
    op.drop_index("ix_events_customer_id", table_name="events")
    op.execute("ALTER TABLE events DROP COLUMN customer_id")
    op.drop_table("encryption_keys")


def _decrypt_table(
    connection: sa.Connection,
    keys: field_crypto.FieldKeys | None,
    table_name: str,
    columns: dict[str, str],
    documents: set[str],
) -> None:
    table = sa.table(
        table_name,
        sa.column("id", sa.Integer),
        *(sa.column(name, sa.JSON if name in documents else sa.String) for name in columns),
    )

    def stored(name: str) -> sa.ColumnElement[Any]:
        return sa.cast(table.c[name], sa.Text) if name in documents else table.c[name]

    def prefix(name: str) -> str:
        return ('"' if name in documents else "") + field_crypto.PREFIX

    is_token = sa.or_(*(sa.func.substr(stored(name), 1, len(prefix(name))) == prefix(name) for name in columns))
    rows = connection.execute(
        sa.select(table.c.id, *(stored(name).label(name) for name in columns)).where(is_token)
    ).all()
    if not rows:
        return
    if keys is None:
        raise field_crypto.FieldKeyError(
            "downgrading below 0023 decrypts the personal data and needs the CHATCRM_SECRET_KEY they were written with"
        )
    updates = [
        {
            "row_pk": row.id,
            **{
                f"plain_{name}": _plain(keys, purpose, row._mapping[name], name in documents)
                for name, purpose in columns.items()
            },
        }
        for row in rows
    ]
    connection.execute(
        table.update()
        .where(table.c.id == sa.bindparam("row_pk"))
        .values({name: sa.bindparam(f"plain_{name}") for name in columns}),
        updates,
    )


def _plain(keys: field_crypto.FieldKeys, purpose: str, stored: str | None, document: bool) -> Any:
    if stored is None:
        return None
    if not document:
        return keys.decrypt(purpose, stored)
    value = json.loads(stored)
    return json.loads(keys.decrypt(purpose, value)) if isinstance(value, str) else value
