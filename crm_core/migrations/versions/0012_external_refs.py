"""Companies and deals get an external_ref: their id in the system they were imported from

Revision ID: 0012_external_refs
Revises: 0011_api_tokens
Create Date: 2026-12-03 09:00:00

Re-running a migration (``chatcrm import companies|deals``) finds the record it created the first
time by this id and updates it instead of adding a duplicate; customers have had one since 0001,
orders and products are matched by their number and SKU.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_external_refs"
down_revision = "0011_api_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("companies", "deals"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("external_ref", sa.String(length=100), nullable=True))
            batch_op.create_unique_constraint(batch_op.f(f"uq_{table}_external_ref"), ["external_ref"])


def downgrade() -> None:
    for table in ("deals", "companies"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f"uq_{table}_external_ref"), type_="unique")
            batch_op.drop_column("external_ref")
