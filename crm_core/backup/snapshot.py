"""Taking a backup: every table read in one consistent snapshot while the system keeps running.

- SQLite: one deferred read transaction on a connection of its own. In WAL mode a reader sees
  the database as of its first read until it ends, and neither blocks writers nor waits for
  them. (The online backup API would give the same snapshot but first copies the whole file to a
  temporary one; reading in place needs no extra disk.) The app's engine cannot be used: it
  opens every transaction with BEGIN IMMEDIATE, which would hold the write lock for the whole
  backup.
- PostgreSQL: one REPEATABLE READ, READ ONLY transaction; large tables are read through a
  server-side cursor.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from crm_core import db
from crm_core.backup.rows import Checksum, encode, select_rows, specs_of
from crm_core.backup.sealed import CHUNK_SIZE, BackupError
from crm_core.backup.stream import FORMAT, RecordWriter
from crm_core.clock import utcnow
from crm_core.i18n import _, format_number
from crm_core.models import Base

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class BackupSummary:
    path: Path | None
    size: int
    manifest: dict[str, Any]

    @property
    def rows(self) -> int:
        return sum(table["rows"] for table in self.manifest["tables"].values())

    def describe(self) -> str:
        """What was written, in the current language (the CLI's and the nightly job's: CHATCRM_LANGUAGE)."""
        facts = {
            "rows": format_number(self.rows),
            "tables": len(self.manifest["tables"]),
            "revision": self.manifest["revision"],
            "size": format_number(self.size),
        }
        if self.path:
            return _(
                "Backed up {rows} rows in {tables} tables (schema {revision}) to {path}: {size} bytes, encrypted.",
                path=self.path,
                **facts,
            )
        return _("Backed up {rows} rows in {tables} tables (schema {revision}): {size} bytes, encrypted.", **facts)


def chatcrm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chatcrm")
    except PackageNotFoundError:
        return "unknown"


def head_revision() -> str:
    """The newest schema revision this chatcrm knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    assert head is not None, "crm_core ships its migrations"
    return head


@contextmanager
def snapshot(engine: Engine) -> Iterator[sa.Connection]:
    """A connection whose every read sees the same committed state of the database."""
    if engine.dialect.name == "sqlite":
        reader = sa.create_engine(
            engine.url, poolclass=sa.pool.NullPool, connect_args={"check_same_thread": False, "timeout": 30}
        )

        @sa.event.listens_for(reader, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA busy_timeout=30000")

        @sa.event.listens_for(reader, "begin")
        def _on_begin(connection):
            connection.exec_driver_sql("BEGIN DEFERRED")

        try:
            with reader.connect() as connection, connection.begin():
                # The snapshot starts at the first read, so take it now.
                connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
                yield connection
        finally:
            reader.dispose()
        return
    with (
        engine.connect().execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True) as connection,
        connection.begin(),
    ):
        yield connection


def write_backup(
    engine: Engine, out: BinaryIO, secret: bytes, progress: Progress | None = None, chunk_size: int = CHUNK_SIZE
) -> dict[str, Any]:
    """Write a backup of the whole database to ``out``; returns its manifest. ``progress(table,
    rows)`` is called after each table, inside the snapshot."""
    from alembic.runtime.migration import MigrationContext

    head = head_revision()
    specs = specs_of(Base.metadata)
    writer = RecordWriter(out, secret, chunk_size=chunk_size)
    with snapshot(engine) as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
        if revision != head:
            raise BackupError(
                _(
                    "the database is at schema {revision} and this chatcrm at {head}: run `chatcrm db upgrade` "
                    "first (or back up with the chatcrm that matches the database)",
                    revision=revision or _("none"),
                    head=head,
                )
            )
        about = {
            "format": FORMAT,
            "format_version": 1,
            "revision": revision,
            "chatcrm_version": chatcrm_version(),
            "created_at": utcnow().isoformat(),
            "source": engine.dialect.name,
        }
        writer.record({"kind": "header", **about, "tables": [spec.as_json() for spec in specs]})
        tables: dict[str, dict[str, Any]] = {}
        for spec in specs:
            writer.record({"kind": "table", "name": spec.name})
            checksum = Checksum()
            for row in connection.execution_options(yield_per=5000).execute(select_rows(spec)):
                line = encode(spec, row)
                checksum.add(line)
                writer.line(line)
            tables[spec.name] = {"rows": checksum.rows, "sha256": checksum.hexdigest}
            writer.record({"kind": "end", "name": spec.name, **tables[spec.name]})
            if progress is not None:
                progress(spec.name, checksum.rows)
    manifest = {"kind": "manifest", **about, "tables": tables}
    writer.record(manifest)
    writer.close()
    return manifest


def backup_to_file(
    engine: Engine, path: str | Path, secret: bytes, progress: Progress | None = None, chunk_size: int = CHUNK_SIZE
) -> BackupSummary:
    """Write the backup to ``path``, readable by its owner only. It is written under a temporary
    name and renamed when complete, so an interrupted backup never looks like a finished one."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            manifest = write_backup(engine, out, secret, progress, chunk_size)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupSummary(path, path.stat().st_size, manifest)
