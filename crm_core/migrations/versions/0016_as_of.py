"""Mining and model runs record their "as of" end and why it was chosen

Revision ID: 0016_as_of
Revises: 0015_data_subject_requests
Create Date: 2026-12-04 09:00:00

A migrated history that stopped years ago is analysed as of its newest order (or a day an admin
names), not as of today; the run keeps that end (``as_of``) and its source (``now``, ``given``,
``newest order``) so its report can say which days it looked at.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_as_of"
down_revision = "0015_data_subject_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("mining_runs", "model_runs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("as_of", sa.DateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column("as_of_source", sa.String(length=20), nullable=True))


def downgrade() -> None:
    for table in ("model_runs", "mining_runs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("as_of_source")
            batch_op.drop_column("as_of")
