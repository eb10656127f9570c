"""Mining runs, mined rules and recommendations.

Revision ID: 0007_mining
Revises: 0006_predictions
Create Date: 2026-11-24 02:03:10.778294
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_mining"
down_revision = "0006_predictions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mining_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("min_support", sa.Double(), nullable=False),
        sa.Column("min_confidence", sa.Double(), nullable=False),
        sa.Column("min_lift", sa.Double(), nullable=True),
        sa.Column("max_len", sa.Integer(), nullable=True),
        sa.Column("n_baskets", sa.Integer(), nullable=False),
        sa.Column("n_itemsets", sa.Integer(), nullable=False),
        sa.Column("n_rules", sa.Integer(), nullable=False),
        sa.Column("n_recommendations", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mining_runs")),
    )
    op.create_table(
        "mined_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("antecedent", sa.JSON(), nullable=False),
        sa.Column("consequent_id", sa.Integer(), nullable=False),
        sa.Column("support", sa.Double(), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("lift", sa.Double(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consequent_id"], ["products.id"], name=op.f("fk_mined_rules_consequent_id_products"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["mining_runs.id"], name=op.f("fk_mined_rules_run_id_mining_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mined_rules")),
    )
    with op.batch_alter_table("mined_rules", schema=None) as batch_op:
        batch_op.create_index("ix_mined_rules_run_consequent", ["run_id", "consequent_id"], unique=False)

    op.create_table(
        "recommendations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("because", sa.JSON(), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("lift", sa.Double(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("posted", "pitched", "not_relevant", name="recommendationstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("acted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acted_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acted_by_id"], ["users.id"], name=op.f("fk_recommendations_acted_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_recommendations_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_recommendations_owner_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_recommendations_product_id_products"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["mining_runs.id"], name=op.f("fk_recommendations_run_id_mining_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommendations")),
    )
    with op.batch_alter_table("recommendations", schema=None) as batch_op:
        batch_op.create_index("ix_recommendations_customer_product", ["customer_id", "product_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recommendations_posted_at"), ["posted_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recommendations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recommendations_posted_at"))
        batch_op.drop_index("ix_recommendations_customer_product")

    op.drop_table("recommendations")
    with op.batch_alter_table("mined_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_mined_rules_run_consequent")

    op.drop_table("mined_rules")
    op.drop_table("mining_runs")
