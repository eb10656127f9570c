"""A chat message's attachment is kept as a kind, not as English words in its text

A customer's photo, file or voice message used to be stored as ``[voice message] caption`` in
``ticket_messages.text`` and ``interactions.text``, so staff reading in Chinese saw English. The
attachment now has its own columns, ``attachment_kind`` ("voice") and ``attachment_name`` (a file's
name, a sticker's emoji, a location's coordinates), and the text keeps only the caption; the
readers name the attachment in their own language (crm_core.attachments).

Existing customer messages written that way (inbound chat messages on Telegram, in the exact forms
the Telegram adapter wrote) are split into the new columns here; the downgrade writes the words back.

Revision ID: 0021_message_attachments
Revises: 0020_external_threads
Create Date: 2026-12-03 02:00:00
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0021_message_attachments"
down_revision = "0020_external_threads"
branch_labels = None
depends_on = None

_TABLES = ("ticket_messages", "interactions")
_BATCH = 5000
# What bot/adapters/telegram/inbound.py wrote before this revision: "[photo] caption",
# "[voice message]", "[file: name]", "[sticker 😀]", "[location 52.52000, 13.40500]".
_OLD = re.compile(
    r"\A\[(?:(?P<plain>photo|video|audio)|(?P<voice>voice) message|file: (?P<file>[^\]\n]*)"
    r"|(?P<kind>sticker|location)(?: (?P<detail>[^\]\n]*))?)\](?: (?P<caption>.*))?\Z",
    re.DOTALL,
)


def _table(name: str) -> sa.TableClause:
    return sa.table(
        name,
        sa.column("id", sa.Integer),
        sa.column("text", sa.Text),
        sa.column("direction", sa.String),
        sa.column("channel", sa.String),
        sa.column("attachment_kind", sa.String),
        sa.column("attachment_name", sa.String),
    )


def split(text: str) -> tuple[str, str | None, str | None] | None:
    """``"[file: a.pdf] see this"`` -> ``("see this", "file", "a.pdf")``; None for any other text."""
    found = _OLD.match(text)
    if found is None:
        return None
    caption = found["caption"] or ""
    if found["plain"]:
        return caption, found["plain"], None
    if found["voice"]:
        return caption, "voice", None
    if found["file"] is not None:
        name = found["file"]
        return caption, "file", None if name in ("", "unnamed") else name
    return caption, found["kind"], found["detail"] or None


def joined(text: str, kind: str, name: str | None) -> str:
    """The words the adapter used to write (for the downgrade)."""
    if kind == "file":
        words = f"[file: {name or 'unnamed'}]"
    elif kind == "voice":
        words = "[voice message]"
    elif kind in ("sticker", "location") and name:
        words = f"[{kind} {name}]"
    else:
        words = f"[{kind}]"
    return f"{words} {text}".strip()


def _rewrite(table: sa.TableClause, rows: list[dict[str, object]]) -> None:
    statement = (
        table.update()
        .where(table.c.id == sa.bindparam("row_id"))
        .values(
            text=sa.bindparam("new_text"),
            attachment_kind=sa.bindparam("kind"),
            attachment_name=sa.bindparam("name"),
        )
    )
    bind = op.get_bind()
    for start in range(0, len(rows), _BATCH):
        bind.execute(statement, rows[start : start + _BATCH])


def upgrade() -> None:
    for name in _TABLES:
        op.add_column(name, sa.Column("attachment_kind", sa.String(length=20), nullable=True))
        op.add_column(name, sa.Column("attachment_name", sa.String(length=200), nullable=True))
    bind = op.get_bind()
    for name in _TABLES:
        table = _table(name)
        query = sa.select(table.c.id, table.c.text).where(
            table.c.direction == "inbound", table.c.channel == "telegram", table.c.text.like("[%")
        )
        rows = []
        for row in bind.execute(query):
            parts = split(row.text)
            if parts is not None:
                caption, kind, detail = parts
                rows.append({"row_id": row.id, "new_text": caption, "kind": kind, "name": detail})
        _rewrite(table, rows)


def downgrade() -> None:
    bind = op.get_bind()
    for name in _TABLES:
        table = _table(name)
        query = sa.select(table.c.id, table.c.text, table.c.attachment_kind, table.c.attachment_name).where(
            table.c.attachment_kind.is_not(None)
        )
        rows = [
            {
                "row_id": row.id,
                "new_text": joined(row.text, row.attachment_kind, row.attachment_name),
                "kind": None,
                "name": None,
            }
            for row in bind.execute(query)
        ]
        _rewrite(table, rows)
        with op.batch_alter_table(name) as batch:
            batch.drop_column("attachment_name")
            batch.drop_column("attachment_kind")
