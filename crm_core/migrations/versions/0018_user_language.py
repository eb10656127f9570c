"""A user's language is their own choice or nothing: users.language becomes nullable

Until now every user got "en" by default and nobody could change it, so the stored "en" says
nothing about the user. NULL now means "not chosen": the dispatcher then takes the platform's hint
(Telegram's language_code, Slack's locale) and CHATCRM_LANGUAGE (crm_core.i18n.resolve_language).

Revision ID: 0018_user_language
Revises: 0017_search_keys
Create Date: 2026-12-02 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_user_language"
down_revision = "0017_search_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("language", existing_type=sa.String(8), nullable=True)
    op.execute(sa.text("UPDATE users SET language = NULL"))


def downgrade() -> None:
    op.execute(sa.text("UPDATE users SET language = 'en' WHERE language IS NULL"))
    with op.batch_alter_table("users") as batch:
        batch.alter_column("language", existing_type=sa.String(8), nullable=False)
