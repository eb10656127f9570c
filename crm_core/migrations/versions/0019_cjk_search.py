"""CJK search keys: the character pairs of Chinese/Japanese names join customers.search_keys

Names written without spaces ("阿克米科技有限公司") are one word to the word-based search, so a piece
from the middle of one ("科技") was not found, nor a name with one wrong character. Their character
pairs (crm_core.text.cjk_grams) now sit among the typo keys in ``search_keys``, on the indexes that
column already has (FTS5 on SQLite, the GIN array index on PostgreSQL): no schema change, only the
keys of existing rows with CJK in their name are recomputed here with the function the model uses.
Names without CJK keep exactly the keys they had.

Revision ID: 0019_cjk_search
Revises: 0018_user_language
Create Date: 2026-12-02 18:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_core import text

revision = "0019_cjk_search"
down_revision = "0018_user_language"
branch_labels = None
depends_on = None

_BATCH = 5000


def _customers() -> sa.TableClause:
    return sa.table(
        "customers", sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("search_keys", sa.Text)
    )


def _rewrite_keys(keys_of) -> None:
    bind = op.get_bind()
    customers = _customers()
    updates = [
        {"row_id": row.id, "keys": keys_of(row.name)}
        for row in bind.execute(sa.select(customers.c.id, customers.c.name))
        if text.has_cjk(row.name)
    ]
    # On SQLite the FTS5 update trigger re-indexes each row written here.
    statement = (
        customers.update().where(customers.c.id == sa.bindparam("row_id")).values(search_keys=sa.bindparam("keys"))
    )
    for start in range(0, len(updates), _BATCH):
        bind.execute(statement, updates[start : start + _BATCH])


def upgrade() -> None:
    _rewrite_keys(lambda name: text.search_columns(name)["search_keys"])


def downgrade() -> None:
    # The typo keys alone, as revision 0018 wrote them.
    def typo_keys(name: str) -> str:
        keys: set[str] = set()
        for token in text.normalize(name).split():
            keys |= text.deletions(token)
        return " ".join(sorted(keys))

    _rewrite_keys(typo_keys)
