"""Automatic audit log: every ORM insert, update and delete becomes an ``AuditEntry`` row.

The listener runs after each flush, inside the same transaction, so a rolled-back change leaves
no audit entry and a committed one always has one. The actor comes from the unit of work.

Two kinds of deletion never pass through the flush, and are caught where they happen:

- rows the database removes by ``ON DELETE CASCADE`` (or empties by ``SET NULL``) when their
  parent is deleted: a customer's consents, follow-ups, deals... Just before the parent's DELETE
  (``before_delete``) the rows it is about to take along are read and audited;
- a bulk ``session.execute(sa.delete(Model)...)``: the rows it matches (and their cascades) are
  read and audited just before it runs (``do_orm_execute``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import customer_keys
from crm_core.actor import SYSTEM, Actor
from crm_core.clock import utcnow
from crm_core.models import chat_ids
from crm_core.models.audit import AuditEntry
from crm_core.models.base import Base

# Columns that change as a side effect of others and would only add noise to the log.
_DERIVED_COLUMNS = frozenset(
    {
        "updated_at",
        "created_at",
        "search_name",
        "search_keys",
        "email_index",
        "phone_index",
        "phone_tail",
        "email_domain",
        *chat_ids.INDEX_COLUMNS,
    }
)


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
    # A model names the columns never to copy into the log (secrets) in ``__audit_redacted__``.
    skipped = _DERIVED_COLUMNS | getattr(type(obj), "__audit_redacted__", frozenset())
    return [attr.key for attr in sa.inspect(obj).mapper.column_attrs if attr.key not in skipped]


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


def _entry(
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str,
    before: dict | None,
    after: dict | None,
    get: Callable[[str], Any] | None = None,
):
    return {
        # Reads any column of the row (not only the changed ones): which customer it is about.
        "_get": get,
        "actor_user_id": actor.user_id,
        "actor_name": actor.name,
        "platform": actor.platform,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "before": before,
        "after": after,
    }


def _write(connection: sa.Connection, rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
    if rows:
        now = utcnow()
        for row in rows:
            row["at"] = now
            get = row.pop("_get", None)
            if get is not None:
                # Personal values about a customer go in encrypted with their data key (crypto-shredding).
                customer_keys.protect(connection, info, row, get)
        # A Core insert on the flush's own connection: the entries commit or roll back with it.
        connection.execute(sa.insert(AuditEntry), rows)


# Rows audited by a cascade this flush, as (table, id): the flush itself may delete some of
# them too (a child deleted through the ORM after its parent), and one entry is enough.
_ALREADY_AUDITED = "audit_cascaded"


def _after_flush(session: Session, flush_context) -> None:
    actor: Actor = session.info.get("actor") or SYSTEM
    rows: list[dict[str, Any]] = []
    already: set[tuple[str, str]] = session.info.pop(_ALREADY_AUDITED, set())

    def add(action: str, obj: Base, before: dict | None, after: dict | None) -> None:
        key = (_entity_type(obj), _entity_id(obj))
        if action == "delete" and key in already:
            return
        rows.append(_entry(actor, action, *key, before, after, _reader(obj)))

    # Session.new builds a fresh set of every pending object on each access: read once, not per row
    # (per row it made a flush of n new rows cost n^2; 20 s of the demo data's first start).
    created = session.new
    # The flush context knows every row this flush wrote, including orphans removed from a
    # collection (which never appear in session.deleted).
    for state, (is_delete, list_only) in list(flush_context.states.items()):
        obj = state.obj()
        if list_only or obj is None or not _audited(obj):
            continue
        if is_delete:
            add("delete", obj, _snapshot(obj), None)
        elif obj in created:
            add("create", obj, None, _snapshot(obj))
        else:
            before, after = _changes(obj)
            if after:
                add("update", obj, before, after)
    _write(session.connection(), rows, session.info)


def _reader(obj: Base) -> Callable[[str], Any]:
    loaded = sa.inspect(obj).dict
    return lambda key: loaded[key] if key in loaded else getattr(obj, key, None)


def record(uow: Any, action: str, entity_type: str, entity_id: str, after: dict[str, Any] | None) -> None:
    """Write an entry by hand, by the unit of work's actor: for something that is not a row change (an
    export, an erasure), or a bulk write whose rows bypass the flush (an import, a bulk API request),
    where the write as a whole is the audited action. ``after`` must hold no personal values: it is
    stored as given."""
    actor: Actor = uow.session.info.get("actor") or SYSTEM
    entry = _entry(actor, action, entity_type, entity_id[:64], None, after)
    entry.pop("_get")
    _write(uow.session.connection(), [entry], uow.session.info)


# -- deletions the flush does not see --------------------------------------------------------


# Derived from the metadata once per set of tables (plugins may map tables after the first use).
_graph: dict[str, Any] = {"tables": -1}


def _schema() -> dict[str, Any]:
    if _graph["tables"] != len(Base.metadata.tables):
        mappers = {cast(sa.Table, m.local_table).name: m for m in Base.registry.mappers}
        dependents: dict[str, list[tuple[sa.ForeignKeyConstraint, str]]] = {}
        for child in Base.metadata.sorted_tables:
            for constraint in child.foreign_key_constraints:
                action = (constraint.ondelete or "").upper()
                if action in ("CASCADE", "SET NULL"):
                    dependents.setdefault(constraint.referred_table.name, []).append((constraint, action))
        _graph.update(tables=len(Base.metadata.tables), mappers=mappers, dependents=dependents)
    return _graph


def _mapper_of(table: sa.Table) -> sa.orm.Mapper | None:
    return _schema()["mappers"].get(table.name)


def _table_audited(table: sa.Table) -> bool:
    mapper = _mapper_of(table)
    return mapper is not None and getattr(mapper.class_, "__audited__", True)


def _dependents(table: sa.Table) -> list[tuple[sa.ForeignKeyConstraint, str]]:
    """Foreign keys from other tables to ``table`` that the database acts on when a row goes."""
    return _schema()["dependents"].get(table.name, [])


def _row_snapshot(table: sa.Table, row: sa.RowMapping) -> tuple[str, dict[str, Any]]:
    mapper = _mapper_of(table)
    assert mapper is not None
    entity_id = "/".join(str(row[column.name]) for column in mapper.primary_key)
    snapshot = {}
    skipped = _DERIVED_COLUMNS | getattr(mapper.class_, "__audit_redacted__", frozenset())
    for column in table.columns:
        key = mapper.get_property_by_column(column).key
        if key not in skipped:
            snapshot[key] = _jsonable(row[column.name])
    return entity_id, snapshot


def _audit_cascades(
    connection: sa.Connection, actor: Actor, table: sa.Table, parents: list[sa.RowMapping], depth: int = 0
) -> list[dict[str, Any]]:
    """Audit entries for what the database will do to other rows when ``parents`` of ``table`` go."""
    entries: list[dict[str, Any]] = []
    if not parents or depth > 10:  # a guard against a cycle of cascades; the schema has none
        return entries
    for constraint, action in _dependents(table):
        child = constraint.table
        local = [element.parent for element in constraint.elements]
        remote = [element.column.name for element in constraint.elements]
        keys = {tuple(parent[name] for name in remote) for parent in parents}
        keys.discard(tuple(None for _ in remote))
        if not keys:
            continue
        match = (
            local[0].in_([key[0] for key in keys])
            if len(local) == 1
            else sa.tuple_(*local).in_([sa.tuple_(*key) for key in keys])
        )
        children = list(connection.execute(sa.select(child).where(match)).mappings())
        if not children:
            continue
        if action == "CASCADE":
            if _table_audited(child):
                for row in children:
                    entity_id, snapshot = _row_snapshot(child, row)
                    entries.append(_entry(actor, "delete", child.name, entity_id, snapshot, None, snapshot.get))
            entries.extend(_audit_cascades(connection, actor, child, children, depth + 1))
        elif _table_audited(child):
            mapper = _mapper_of(child)
            assert mapper is not None
            names = [mapper.get_property_by_column(column).key for column in local]
            for row in children:
                entity_id, _ = _row_snapshot(child, row)
                before = {name: _jsonable(row[column.name]) for name, column in zip(names, local, strict=True)}
                entries.append(_entry(actor, "update", child.name, entity_id, before, dict.fromkeys(names)))
    return entries


def _before_delete(mapper: sa.orm.Mapper, connection: sa.Connection, target: Base) -> None:
    session = sa.orm.object_session(target)
    table = cast(sa.Table, mapper.local_table)
    if session is None or not _dependents(table):
        return
    actor: Actor = session.info.get("actor") or SYSTEM
    row = {column.name: getattr(target, mapper.get_property_by_column(column).key) for column in table.columns}
    entries = _audit_cascades(connection, actor, table, [cast(sa.RowMapping, row)])
    session.info.setdefault(_ALREADY_AUDITED, set()).update(
        (entry["entity_type"], entry["entity_id"]) for entry in entries if entry["action"] == "delete"
    )
    _write(connection, entries, session.info)


def _before_bulk_delete(state: sa.orm.ORMExecuteState) -> None:
    if not state.is_delete:
        return
    statement = cast(sa.Delete, state.statement)
    # The statement holds an annotated copy of the table; the metadata has the table itself.
    table = Base.metadata.tables.get(cast(sa.Table, statement.table).name)
    if table is None:
        return
    if not (_table_audited(table) or _dependents(table)):
        return
    session = state.session
    actor: Actor = session.info.get("actor") or SYSTEM
    connection = session.connection()
    select = sa.select(table)
    if statement.whereclause is not None:
        select = select.where(statement.whereclause)
    doomed = list(connection.execute(select).mappings())
    entries = []
    if _table_audited(table):
        for row in doomed:
            entity_id, snapshot = _row_snapshot(table, row)
            entries.append(_entry(actor, "delete", table.name, entity_id, snapshot, None, snapshot.get))
    entries.extend(_audit_cascades(connection, actor, table, doomed))
    _write(connection, entries, session.info)


def _forget_data_keys(session: Session, _previous: Any) -> None:
    # A rolled-back (savepoint) transaction may have made a data key that is gone now.
    customer_keys.forget(session.info)


def install() -> None:
    """Register the listeners on every Session and mapped class (idempotent)."""
    if not sa.event.contains(Session, "after_flush", _after_flush):
        sa.event.listen(Session, "after_flush", _after_flush)
    if not sa.event.contains(Session, "do_orm_execute", _before_bulk_delete):
        sa.event.listen(Session, "do_orm_execute", _before_bulk_delete)
    if not sa.event.contains(Session, "after_soft_rollback", _forget_data_keys):
        sa.event.listen(Session, "after_soft_rollback", _forget_data_keys)
    if not sa.event.contains(Base, "before_delete", _before_delete):
        sa.event.listen(Base, "before_delete", _before_delete, propagate=True)
