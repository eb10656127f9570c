"""Automatic audit log: every ORM insert, update and delete becomes an ``AuditEntry`` row.

The listener runs after each flush, inside the same transaction, so a rolled-back change leaves
no audit entry and a committed one always has one. The actor comes from the unit of work.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core.actor import SYSTEM, Actor
from crm_core.clock import utcnow
from crm_core.models.audit import AuditEntry
from crm_core.models.base import Base

# Columns that change as a side effect of others and would only add noise to the log.
_DERIVED_COLUMNS = frozenset({"updated_at", "created_at", "search_name", "search_keys", "phone_key"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _entity_type(obj: Base) -> str:
    # Declarative models map a Table; SQLAlchemy types __table__ as the wider FromClause.
    return cast(sa.Table, obj.__table__).name


def _entity_id(obj: Base) -> str:
    # From the primary key columns: in after_flush a new row has its key but no identity yet.
    key = sa.inspect(obj).mapper.primary_key_from_instance(obj)
    return "/".join(str(part) for part in key)


def _columns(obj: Base) -> list[str]:
    return [attr.key for attr in sa.inspect(obj).mapper.column_attrs if attr.key not in _DERIVED_COLUMNS]


def _snapshot(obj: Base) -> dict[str, Any]:
    return {key: _jsonable(getattr(obj, key)) for key in _columns(obj)}


def _changes(obj: Base) -> tuple[dict[str, Any], dict[str, Any]]:
    state = sa.inspect(obj)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key in _columns(obj):
        history = state.attrs[key].history
        if not history.has_changes():
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old == new:
            continue
        before[key] = _jsonable(old)
        after[key] = _jsonable(new)
    return before, after


def _audited(obj: object) -> bool:
    return isinstance(obj, Base) and getattr(type(obj), "__audited__", True)


def _after_flush(session: Session, flush_context) -> None:
    actor: Actor = session.info.get("actor") or SYSTEM
    rows: list[dict[str, Any]] = []

    def add(action: str, obj: Base, before: dict | None, after: dict | None) -> None:
        rows.append(
            {
                "actor_user_id": actor.user_id,
                "actor_name": actor.name,
                "platform": actor.platform,
                "action": action,
                "entity_type": _entity_type(obj),
                "entity_id": _entity_id(obj),
                "before": before,
                "after": after,
            }
        )

    # The flush context knows every row this flush wrote, including orphans removed from a
    # collection (which never appear in session.deleted).
    for state, (is_delete, list_only) in list(flush_context.states.items()):
        obj = state.obj()
        if list_only or obj is None or not _audited(obj):
            continue
        if is_delete:
            add("delete", obj, _snapshot(obj), None)
        elif obj in session.new:
            add("create", obj, None, _snapshot(obj))
        else:
            before, after = _changes(obj)
            if after:
                add("update", obj, before, after)
    if rows:
        now = utcnow()
        for row in rows:
            row["at"] = now
        # A Core insert on the flush's own connection: the entries commit or roll back with it.
        session.connection().execute(sa.insert(AuditEntry), rows)


def install() -> None:
    """Register the listener on every Session (idempotent)."""
    if not sa.event.contains(Session, "after_flush", _after_flush):
        sa.event.listen(Session, "after_flush", _after_flush)
