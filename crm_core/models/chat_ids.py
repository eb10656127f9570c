"""Customers' chat ids, encrypted at rest and found through blind indexes.

A chat id (the platform's id of a customer, the chat we write to them in) identifies a person to
anyone with the platform's data, so every column holding one is ``Encrypted`` (crm_core.field_crypto)
with a blind index beside it, ``<column>_index``: the HMAC of the id under the blind-index key.
Every lookup that compared the id in SQL (an inbound message finding its customer chat, a
delivery's blocked check, a consent lookup, a group renumbered to a supergroup, erasure) compares
the index instead, asking for it under every configured key (``is_chat``) so lookups keep working
while ``chatcrm keys rotate`` moves rows to the new key.

Unlike the other encrypted columns, all chat-id columns share one purpose, ``chat_id``: an id
is the same datum wherever it is kept, and the campaign path copies ids from table to table in
SQL (INSERT … SELECT from consents to campaign recipients to the outbox) without decrypting;
the token and its index travel together, and open in the column they land in. The indexes of
equal ids are equal across tables, so SQL can still match two rows of one chat.

A group chat's index starts with ``g`` (one hex digit of the HMAC less): the outbox claims fewer
rows at a time for groups, whose platforms allow fewer messages (Telegram's group ids are the
negative ones), and must tell them apart in SQL. That a chat is a group says nothing of a person.

``keep_indexed`` sets the index whenever the ORM writes the id. Core statements (bulk updates,
INSERT … SELECT) must set or copy the index themselves: grep for ``_index`` beside them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapper

from crm_core import field_crypto
from crm_core.field_crypto import Encrypted, FieldKey, FieldKeys

CHAT_ID = "chat_id"
INDEX_SUFFIX = "_index"
# Chat ids starting with this are groups (crm_core.outbox.GROUP_PREFIX); their indexes with GROUP_MARK.
GROUP_PREFIX = "-"
GROUP_MARK = "g"

# The blind index columns of chat ids: derived data, left out of the audit log and of exports.
INDEX_COLUMNS = frozenset({"external_id_index", "conversation_index"})

# table -> its chat-id columns (each with ``<column>_index``), for key rotation and the migration.
INDEXED: dict[str, tuple[str, ...]] = {}


def chat_id_type(sqlite_length: int) -> Encrypted:
    """The column type of a chat id (``sqlite_length``: the VARCHAR length the column had)."""
    return Encrypted(CHAT_ID, sqlite_length=sqlite_length)


def index_type() -> sa.String:
    return sa.String(field_crypto.BLIND_LENGTH)


def blind(keys: FieldKeys, chat_id: str | None, key: FieldKey | None = None) -> str | None:
    """The blind index of a chat id under ``key`` (the current one by default)."""
    mac = keys.blind(CHAT_ID, chat_id, key)
    if mac is None or chat_id is None or not chat_id.startswith(GROUP_PREFIX):
        return mac
    return GROUP_MARK + mac[1:]


def blind_any(keys: FieldKeys, chat_id: str) -> list[str]:
    """The blind index of a chat id under every configured key (what a lookup asks for)."""
    return [blind(keys, chat_id, key) or "" for key in keys.keys]


def is_chat(bind: Any, index: Any, chat_id: str) -> sa.ColumnElement[bool]:
    """``index`` (a ``<column>_index`` column) names ``chat_id``, under any configured key."""
    return index.in_(blind_any(field_crypto.keys_for(bind), chat_id))


def is_group(index: Any) -> sa.ColumnElement[bool]:
    """The chat whose index this is is a group (see the module docstring)."""
    return sa.func.substr(index, 1, 1) == GROUP_MARK


def indexes(keys: FieldKeys, values: dict[str, str | None]) -> dict[str, str | None]:
    """The index columns of the chat-id columns in ``values`` (column -> plaintext)."""
    return {name + INDEX_SUFFIX: blind(keys, value) for name, value in values.items()}


def keep_indexed(model: type, *columns: str) -> None:
    """Set ``<column>_index`` from ``<column>`` whenever the ORM inserts or changes a row of ``model``."""
    INDEXED[model.__tablename__] = columns  # type: ignore[attr-defined]

    def set_indexes(_mapper: Mapper[Any], connection: sa.Connection, row: Any) -> None:
        # Here rather than in a validator: the key belongs to the engine, which only a flush knows.
        state = sa.inspect(row)
        changed = [c for c in columns if not state.persistent or state.attrs[c].history.has_changes()]
        if not changed:
            return
        keys = field_crypto.keys_for(connection)
        for name, value in indexes(keys, {c: getattr(row, c) for c in changed}).items():
            setattr(row, name, value)

    sa.event.listen(model, "before_insert", set_indexes)
    sa.event.listen(model, "before_update", set_indexes)
