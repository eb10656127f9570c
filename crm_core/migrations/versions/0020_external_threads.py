"""Ticket threads in staff conversations: external_threads

A ticket can have a thread of its own in a staff conversation on a chat platform (Slack's
CHATCRM_SLACK_SUPPORT_CHANNEL): the customer's messages are posted there, and a staff reply in it
is about that ticket. One row per ticket and conversation, holding the platform's id of the
thread's first message once it was sent.

Revision ID: 0020_external_threads
Revises: 0019_cjk_search
Create Date: 2026-12-03 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_external_threads"
down_revision = "0019_cjk_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "external_threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("conversation", sa.String(length=64), nullable=False),
        sa.Column("thread_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_external_threads_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_threads")),
        sa.UniqueConstraint(
            "ticket_id", "platform", "conversation", name=op.f("uq_external_threads_ticket_id_platform_conversation")
        ),
        sa.UniqueConstraint(
            "platform", "conversation", "thread_id", name=op.f("uq_external_threads_platform_conversation_thread_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("external_threads")
