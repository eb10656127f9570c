"""Domain events: the events table, listener cursors and dead letters

Revision ID: 0010_events
Revises: 0009_task_names
Create Date: 2026-12-02 10:40:38.061054
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_events"
down_revision = "0009_task_names"
branch_labels = None
depends_on = None

EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("entity_type", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=100), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        # SQLite: ids are never reused after the last rows are pruned (AUTOINCREMENT).
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_entity", ["entity_type", "entity_id", "id"], unique=False)
        batch_op.create_index("ix_events_occurred_at", ["occurred_at"], unique=False)

    op.create_table(
        "event_listeners",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("last_event_id", EVENT_ID, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_event_listeners")),
    )

    op.create_table(
        "event_dead_letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("listener", sa.String(length=200), nullable=False),
        sa.Column("event_id", EVENT_ID, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("reference", sa.String(length=16), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_dead_letters")),
        sa.UniqueConstraint("listener", "event_id", name=op.f("uq_event_dead_letters_listener_event_id")),
    )
    with op.batch_alter_table("event_dead_letters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_dead_letters_event_id"), ["event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("event_dead_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_dead_letters_event_id"))
    op.drop_table("event_dead_letters")
    op.drop_table("event_listeners")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_occurred_at")
        batch_op.drop_index("ix_events_entity")
    op.drop_table("events")
