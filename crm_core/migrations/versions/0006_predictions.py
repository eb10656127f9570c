"""Churn model runs and per-customer scores (churn risk, RFM).

Revision ID: 0006_predictions
Revises: 0005_scheduler
Create Date: 2026-11-24 01:00:46.780568
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_predictions"
down_revision = "0005_scheduler"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("train_cutoff", sa.DateTime(timezone=True), nullable=True),
        sa.Column("test_cutoff", sa.DateTime(timezone=True), nullable=True),
        sa.Column("algorithm", sa.String(length=60), nullable=True),
        sa.Column("train_size", sa.Integer(), nullable=False),
        sa.Column("test_size", sa.Integer(), nullable=False),
        sa.Column("roc_auc", sa.Double(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_runs")),
    )
    with op.batch_alter_table("model_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_runs_kind"), ["kind"], unique=False)

    op.create_table(
        "customer_scores",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("churn_risk", sa.Double(), nullable=True),
        sa.Column("churn_run_id", sa.Integer(), nullable=True),
        sa.Column("recency_score", sa.Integer(), nullable=True),
        sa.Column("frequency_score", sa.Integer(), nullable=True),
        sa.Column("monetary_score", sa.Integer(), nullable=True),
        sa.Column("rfm_segment", sa.String(length=30), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["churn_run_id"],
            ["model_runs.id"],
            name=op.f("fk_customer_scores_churn_run_id_model_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_scores_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_scores")),
    )
    with op.batch_alter_table("customer_scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_scores_rfm_segment"), ["rfm_segment"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customer_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_scores_rfm_segment"))

    op.drop_table("customer_scores")
    with op.batch_alter_table("model_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_runs_kind"))

    op.drop_table("model_runs")
