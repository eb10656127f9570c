"""Search keys: a customer's phone digits reversed and email domain, a company's normalised name

/customer finds people by the last 6+ digits of their number (a prefix of the reversed digits),
by email domain (@acme.com) and by company name (a prefix of the normalised name), each on an
index (crm_core.search). Existing rows are filled in here with the same functions the models use.

Revision ID: 0017_search_keys
Revises: 0016_as_of
Create Date: 2026-12-02 14:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_core import text

revision = "0017_search_keys"
down_revision = "0016_as_of"
branch_labels = None
depends_on = None

_BATCH = 5000
# name -> (table, column); PostgreSQL indexes use text_pattern_ops so LIKE 'x%' can seek them.
_INDEXES = {
    "ix_customers_search_phone_rev": ("customers", "phone_rev"),
    "ix_customers_search_email_domain": ("customers", "email_domain"),
    "ix_companies_search_name": ("companies", "search_name"),
}


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_rev", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("email_domain", sa.String(length=255), nullable=True))
    with op.batch_alter_table("companies", schema=None) as batch_op:
        # A server default so existing rows get a value without rebuilding the table on SQLite.
        batch_op.add_column(sa.Column("search_name", sa.String(length=200), nullable=False, server_default=""))
    _backfill()
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, (table, column) in _INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {table} ({column}{' text_pattern_ops' if postgres else ''})")


def _backfill() -> None:
    bind = op.get_bind()
    customers = sa.table(
        "customers",
        sa.column("id", sa.Integer),
        sa.column("email", sa.String),
        sa.column("phone", sa.String),
        sa.column("phone_rev", sa.String),
        sa.column("email_domain", sa.String),
    )
    companies = sa.table(
        "companies", sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("search_name", sa.String)
    )
    rows = bind.execute(
        sa.select(customers.c.id, customers.c.email, customers.c.phone).where(
            sa.or_(customers.c.email.is_not(None), customers.c.phone.is_not(None))
        )
    ).all()
    updates = [
        {"row_id": row.id, "rev": text.phone_reversed(row.phone), "domain": text.email_domain(row.email)}
        for row in rows
    ]
    statement = (
        customers.update()
        .where(customers.c.id == sa.bindparam("row_id"))
        .values(phone_rev=sa.bindparam("rev"), email_domain=sa.bindparam("domain"))
    )
    for start in range(0, len(updates), _BATCH):
        bind.execute(statement, updates[start : start + _BATCH])
    names = [
        {"row_id": row.id, "key": text.normalize(row.name)}
        for row in bind.execute(sa.select(companies.c.id, companies.c.name))
    ]
    statement = (
        companies.update().where(companies.c.id == sa.bindparam("row_id")).values(search_name=sa.bindparam("key"))
    )
    for start in range(0, len(names), _BATCH):
        bind.execute(statement, names[start : start + _BATCH])


def downgrade() -> None:
    for name in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_column("search_name")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("email_domain")
        batch_op.drop_column("phone_rev")
