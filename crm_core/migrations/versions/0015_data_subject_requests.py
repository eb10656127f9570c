"""Data subject requests: per-customer data keys, personal custom fields, erased customers

Revision ID: 0015_data_subject_requests
Revises: 0014_webhooks
Create Date: 2026-12-10 09:00:00

- ``customer_keys``: one data key per customer, wrapped with a key derived from
  CHATCRM_SECRET_KEY; personal values in the audit log are encrypted with it, and erasing the
  customer deletes the row (crypto-shredding). No foreign key: a merged or deleted customer's
  history must stay readable; only an erasure destroys a key.
- ``custom_field_definitions.personal``: values of such fields are personal data (erased,
  encrypted in the audit log).
- ``customers.erased_at``: when the customer's personal data was erased (the record stays, under a
  pseudonym, so orders and figures still add up).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_data_subject_requests"
down_revision = "0014_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_keys",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_keys")),
    )
    # Plain ADD COLUMN (no batch): SQLite keeps the customers table, its FTS triggers and indexes.
    op.add_column(
        "custom_field_definitions",
        sa.Column("personal", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("customers", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Native DROP COLUMN (SQLite 3.35+): a batch copy of customers would lose its FTS triggers.
    op.drop_column("customers", "erased_at")
    op.drop_column("custom_field_definitions", "personal")
    op.drop_table("customer_keys")
