"""Durable inbox and interactive outbox lane: inbound_events keep the raw delivery and its
processing state; outbox rows get a priority (interactive before bulk) and what to record after
sending.

Revision ID: 0013_durable_inbox
Revises: 0012_external_refs
Create Date: 2026-12-02 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_durable_inbox"
down_revision = "0012_external_refs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload", sa.Text(), nullable=True))
        # Rows written before this revision were taken in and handled in one transaction: done.
        batch_op.add_column(sa.Column("status", sa.String(length=20), nullable=False, server_default="done"))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
        batch_op.create_index("ix_inbound_events_pending", ["status", "lease_until"], unique=False)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("after", sa.JSON(), nullable=True))
        batch_op.create_index("ix_outbox_lane", ["priority", "status", "not_before"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_lane")
        batch_op.drop_column("after")
        batch_op.drop_column("priority")
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_events_pending")
        batch_op.drop_column("last_error")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("attempts")
        batch_op.drop_column("status")
        batch_op.drop_column("payload")
