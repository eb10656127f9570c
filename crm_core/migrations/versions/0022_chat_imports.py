"""Imports started from chat (/import customers with an uploaded file): chat_imports

The uploaded file waits in ``content`` for the job that imports it (emptied once it ran); the outcome
(counts, the error report CSV) stays for the summary and ``/import report``.

Revision ID: 0022_chat_imports
Revises: 0021_message_attachments
Create Date: 2026-12-03 02:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_chat_imports"
down_revision = "0021_message_attachments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("file_name", sa.String(200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("platform", sa.String(20), nullable=False),
        sa.Column("conversation", sa.String(200), nullable=False),
        sa.Column("thread", sa.String(100), nullable=True),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("report", sa.LargeBinary(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_chat_imports_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_imports")),
    )


def downgrade() -> None:
    op.drop_table("chat_imports")
