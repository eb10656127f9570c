"""Engines, connection checks and schema migrations for SQLite (embedded default) and PostgreSQL.

Nothing here runs at import time: callers build an engine from a URL when they need one.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import QueryableAttribute, Session, sessionmaker

from crm_core.errors import SetupError
from crm_core.i18n import _

if TYPE_CHECKING:
    from alembic.config import Config

    from crm_core.models.base import Base

DEFAULT_DATABASE_URL = "sqlite:///chatcrm.db"
MIGRATIONS = Path(__file__).with_name("migrations")
# How long a thread waits for its turn to write to SQLite before it tries anyway (SQLite's own
# busy timeout, also 30 s, still applies then).
WRITE_TURN_PATIENCE = 30.0

log = logging.getLogger("chatcrm.db")
_local = threading.local()


@contextlib.contextmanager
def _thread_flag(name: str, value: bool) -> Iterator[None]:
    """``_local.<name>`` is ``value`` in this block (this thread), and what it was after it."""
    before = getattr(_local, name, False)
    setattr(_local, name, value)
    try:
        yield
    finally:
        setattr(_local, name, before)


def urgent() -> contextlib.AbstractContextManager[None]:
    """Transactions begun in this block (this thread) write to SQLite before the others of this
    process that wait: a delivery kept before a platform's ack, with the platform waiting for it."""
    return _thread_flag("urgent", True)


def reading(read_only: bool = True) -> contextlib.AbstractContextManager[None]:
    """Transactions begun in this block (this thread) only read: on SQLite they begin DEFERRED,
    without the write lock or a write turn, and ``PRAGMA query_only`` makes a write in them fail at
    once. Readers then run beside the writer (WAL) instead of queueing for the one write lock
    behind it, and a delivery waiting to be kept before its ack no longer waits for a customer card
    being read. ``reading(False)`` restores writing for a block inside one. No effect on PostgreSQL."""
    return _thread_flag("reading", read_only)


class WriteTurns:
    """Turns at SQLite's one write lock for the threads of one process, urgent ones first.

    Every SQLite transaction takes the write lock up front (BEGIN IMMEDIATE), and SQLite makes the
    others poll for it with growing sleeps (busy_timeout: 1, 2, 5 … 100 ms). Under load the lock
    then sits idle while its waiters sleep, and a thread that just committed takes it straight back:
    a short transaction with someone waiting for it (a Slack command kept before its ack) waited
    for seconds behind long ones. Here the threads of a process queue instead: the lock goes to a
    waiter the moment it is free, an ``urgent()`` one first. Other processes still meet SQLite's
    own busy timeout. A turn is held from BEGIN to COMMIT or ROLLBACK (and given back when its
    connection returns to the pool, whatever happened); a thread that waited ``patience`` seconds
    goes ahead without one rather than wait forever."""

    def __init__(self, patience: float = WRITE_TURN_PATIENCE):
        self._changed = threading.Condition()
        self._owner: int | None = None
        self._depth = 0
        self._urgent_waiting = 0
        self.patience = patience

    def acquire(self) -> None:
        me = threading.get_ident()
        is_urgent = getattr(_local, "urgent", False)
        with self._changed:
            if self._owner == me:
                self._depth += 1
                return
            deadline = time.monotonic() + self.patience
            if is_urgent:
                self._urgent_waiting += 1
            try:
                while self._owner is not None or (not is_urgent and self._urgent_waiting):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        log.warning("waited %.0f s for a turn to write to SQLite; going ahead", self.patience)
                        return
                    self._changed.wait(remaining)
            finally:
                if is_urgent:
                    self._urgent_waiting -= 1
            self._owner, self._depth = me, 1

    def carry(self, from_thread: int | None) -> None:
        """The calling thread takes over the turn ``from_thread`` holds: a transaction begun in one
        thread goes on, and ends, in another (an API request's, begun by the gate in one worker thread
        and committed after the endpoint in another), so its end gives the turn back."""
        me = threading.get_ident()
        with self._changed:
            if from_thread is not None and self._owner == from_thread != me:
                self._owner = me

    def release(self, *, all_of_it: bool = False) -> None:
        with self._changed:
            if self._owner != threading.get_ident():
                return
            self._depth = 0 if all_of_it else self._depth - 1
            if self._depth <= 0:
                self._owner, self._depth = None, 0
                self._changed.notify_all()


class DatabaseUnavailable(SetupError):
    """The database cannot be reached; the message names the URL with its password masked."""


class SchemaBehind(SetupError):
    """The database schema is older than the code; the message names the command to run."""


def normalize_url(url: str) -> str:
    """Accept the common spellings (``postgres://``, ``postgresql://``) and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def mask_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable database URL>"


def is_sqlite(url_or_engine: str | Engine) -> bool:
    url = url_or_engine.url if isinstance(url_or_engine, Engine) else make_url(normalize_url(url_or_engine))
    return url.get_backend_name() == "sqlite"


def create_engine(url: str, **kwargs) -> Engine:
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        # SQLAlchemy's reason says no more than that, in English: the forms that work say more.
        raise DatabaseUnavailable(
            _(
                "DATABASE_URL is not a valid database URL: write it like {sqlite} or {postgresql}",
                sqlite="sqlite:///path/to/file.db",
                postgresql="postgresql://user@host/dbname",
            )
        ) from None
    # Every query is written and tested for these two only; any other URL fails here, in one line.
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseUnavailable(
            _(
                "DATABASE_URL {url}: {backend} is not supported; use {sqlite} or {postgresql}",
                url=mask_url(url),
                backend=parsed.get_backend_name(),
                sqlite="sqlite:///path/to/file.db",
                postgresql="postgresql://user@host/dbname",
            )
        )
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see "begin").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    turns = WriteTurns()
    _TURNS[engine] = turns

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        read_only = getattr(_local, "reading", False)
        # query_only belongs to the connection, which the pool hands on: set when it changes.
        if connection.info.get("query_only", False) != read_only:
            connection.exec_driver_sql(f"PRAGMA query_only={'ON' if read_only else 'OFF'}")
            connection.info["query_only"] = read_only
        if read_only:
            # A reader's snapshot is its own (WAL): it needs neither the lock nor a turn.
            connection.exec_driver_sql("BEGIN")
            return
        # Take the write lock up front: a deferred transaction that reads and then writes fails
        # with "database is locked" when another writer got in between; IMMEDIATE waits instead.
        turns.acquire()
        connection.info[_TURN_THREAD] = threading.get_ident()
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            turns.release()
            raise

    @sa.event.listens_for(engine, "commit")
    def _on_commit(connection):
        # The transaction's end: no thread holds a turn for this connection any more (a transaction
        # begun later without one, a reader, must not pass for the holder of this one's).
        connection.info.pop(_TURN_THREAD, None)
        turns.release()

    @sa.event.listens_for(engine, "rollback")
    def _on_rollback(connection):
        connection.info.pop(_TURN_THREAD, None)
        turns.release()

    @sa.event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection, _record):
        # A connection given back with its transaction never ended (an error, a closed session):
        # its thread's turn ends here too.
        turns.release(all_of_it=True)


# The SQLite engines' write turns, and the key of a connection's info naming the thread that began its
# transaction (and so holds its turn).
_TURNS: weakref.WeakKeyDictionary[Engine, WriteTurns] = weakref.WeakKeyDictionary()
_TURN_THREAD = "chatcrm_write_turn_thread"


def carry_write_turn(session: Session) -> None:
    """Before a session's transaction goes on in another thread than the one that began it (and
    before it ends there): that thread takes over its SQLite write turn (``WriteTurns.carry``).
    Nothing to do on PostgreSQL, or for a session with no transaction."""
    bind = session.get_bind()
    turns = _TURNS.get(bind) if isinstance(bind, Engine) else None
    if turns is None or not session.in_transaction():
        return
    info = session.connection().info
    turns.carry(info.get(_TURN_THREAD))
    info[_TURN_THREAD] = threading.get_ident()


def insert_or_ignore(session: Session, model: type[Base], values: dict) -> bool:
    """INSERT a row unless it clashes with a unique key (ON CONFLICT DO NOTHING, on both databases);
    True when the row went in. Safe against concurrent inserts of the same key, unlike select-then-insert.
    ``values`` are by column key (the mapped attribute names)."""
    statement = _insert_or_ignore_statement(
        session.get_bind().dialect.name, cast(sa.Table, model.__table__), returning=True
    )
    # RETURNING, not rowcount: psycopg does not always report a rowcount for this statement.
    return session.execute(statement, values).first() is not None


def insert_all_or_ignore(session: Session, model: type[Base], rows: Sequence[dict]) -> None:
    """``insert_or_ignore`` for several rows, in one statement (an executemany)."""
    if rows:
        statement = _insert_or_ignore_statement(
            session.get_bind().dialect.name, cast(sa.Table, model.__table__), returning=False
        )
        session.execute(statement, list(rows))


@functools.cache
def _insert_or_ignore_statement(dialect: str, table: sa.Table, *, returning: bool) -> sa.Insert:
    """The INSERT … ON CONFLICT DO NOTHING of ``table``, built once per dialect with its values bound
    at execution: built with them as literals it was compiled again for every row (a Telegram
    update is kept with it, every button of a Telegram message stored with it)."""
    statement = insert_ignoring(dialect, table)
    return statement.returning(*table.primary_key.columns) if returning else statement


def insert_ignoring(dialect: str, table: sa.Table) -> sa.Insert:
    """``INSERT INTO table … ON CONFLICT DO NOTHING`` on either database, its values left to bind at
    execution (callers build it once and keep it)."""
    insert: Any
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:  # pragma: no cover - only the two supported databases exist
        raise RuntimeError(f"insert_or_ignore does not support {dialect}")
    return insert(table).on_conflict_do_nothing()


def one_of(
    session: Session, column: QueryableAttribute[Any] | sa.ColumnElement[Any], values: Sequence[Any]
) -> sa.ColumnElement[bool]:
    """``column IN (values)``, written for the session's database: on PostgreSQL ``column =
    ANY(:values)``, one array parameter. psycopg rewrites a statement's placeholders one by one and
    caches the result only for statements under 4 KB, so an IN of 500 ids (a bulk request's
    customers) cost more in the client than the query did in the server."""
    if session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def new_ids(session: Session, table: sa.Table, count: int) -> list[int]:
    """``count`` ids for rows about to be inserted into ``table`` (integer primary key ``id``), so that a
    multi-row INSERT needs no RETURNING to tell which row got which id (an ordered RETURNING makes
    SQLite insert one row a statement). PostgreSQL: drawn from the column's sequence. SQLite: the ones
    it would give next (max + 1, …), safe because a SQLite transaction holds the write lock from its
    start (BEGIN IMMEDIATE, ``_configure_sqlite``)."""
    if count <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        sequence = sa.func.pg_get_serial_sequence(table.name, "id")
        drawn = sa.select(sa.func.nextval(sequence)).select_from(sa.func.generate_series(1, count))
        return list(session.scalars(drawn))
    top = session.scalar(sa.select(sa.func.max(table.c.id))) or 0
    return list(range(top + 1, top + 1 + count))


def session_factory(engine: Engine, keyring: object | None = None) -> sessionmaker[Session]:
    """Sessions on ``engine``; ``keyring`` (a crm_core.customer_keys.Keyring) wraps the customers' data
    keys that personal values in the audit log are encrypted with."""
    from crm_core.customer_keys import KEYRING

    return sessionmaker(engine, expire_on_commit=False, info={KEYRING: keyring} if keyring is not None else None)


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(
            _(
                "cannot reach the database at {url}: {reason}",
                url=engine.url.render_as_string(hide_password=True),
                reason=reason,
            )
        ) from None


# Database-specific search objects created by hand in migrations (FTS5 on SQLite, GIN and
# pattern indexes on PostgreSQL): they have no model, so autogenerate must not drop them.
HAND_MADE_PREFIXES = ("customer_fts", "ix_customers_search_", "ix_companies_search_")


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic autogenerate filter: ignore the hand-made search objects."""
    return not (reflected and compare_to is None and name and name.startswith(HAND_MADE_PREFIXES))


# Alembic is imported where migrations are read or run, not by every process that imports crm_core.db.
def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


@functools.cache
def head_revision() -> str:
    """The newest migration's revision. Read once per process: the migrations ship with the code, so
    they cannot change under a running process, and reading them loads every migration script
    (a few milliseconds each time an app is built; a test suite builds one per test)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "crm_core ships its migrations, so there is a head revision"
    return head


def schema_status(engine: Engine) -> SchemaStatus:
    from alembic.runtime.migration import MigrationContext

    head = head_revision()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return SchemaStatus(current=current, head=head)


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def ensure_schema(engine: Engine, *, auto_upgrade: bool) -> None:
    """Bring the schema up to date (SQLite default) or refuse to run on an old one (PostgreSQL)."""
    status = schema_status(engine)
    if status.up_to_date:
        return
    if auto_upgrade:
        upgrade(engine)
        return
    raise SchemaBehind(
        _(
            "the database at {url} is at {revision}, the code needs {head}: run `chatcrm db upgrade` first",
            url=engine.url.render_as_string(hide_password=True),
            revision=status.current or _("an empty database"),
            head=status.head,
        )
    )
