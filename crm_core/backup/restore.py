"""Restoring a backup into an empty database of either kind, and checking a backup file.

The schema is brought to the backup's revision with Alembic; then every table is loaded in
dependency order, in batches, inside ONE transaction that also re-reads each table and compares
its count and checksum with the manifest. Any failure (a wrong key, a damaged or cut file, a row
the database refuses, a checksum that differs) rolls that transaction back, so the database is
left without rows, never half restored. A backup from an older chatcrm is upgraded to the current
schema after it is loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from crm_core import db
from crm_core.backup.rows import Checksum, TableSpec, decode, table_checksum
from crm_core.backup.sealed import BackupError, DamagedBackup
from crm_core.backup.stream import FORMAT, parse_record, read_lines
from crm_core.i18n import _, format_number

BATCH = 2000


class NotEmpty(BackupError):
    """The target database holds rows already."""


class BackupReader:
    """The sections of a backup in order; each table's rows are checked against its end record,
    and the end records against the manifest, as they are read."""

    def __init__(self, source: BinaryIO, secrets: Sequence[bytes]) -> None:
        self._lines = read_lines(source, secrets)
        first = next(self._lines, None)
        if first is None:
            raise DamagedBackup(_("the backup file is empty"))
        header = parse_record(first)
        if header.get("kind") != "header" or header.get("format") != FORMAT:
            raise DamagedBackup(_("the backup file is damaged (it does not start with its header)"))
        self.header = header
        self.specs = [TableSpec.from_json(table) for table in header["tables"]]
        self.manifest: dict[str, Any] | None = None
        self.checksums: dict[str, Checksum] = {}

    @property
    def revision(self) -> str:
        return str(self.header["revision"])

    def tables(self) -> Iterator[tuple[TableSpec, Iterator[bytes]]]:
        """(spec, rows) per table; consume each table's rows before asking for the next table."""
        for spec in self.specs:
            record = self._record()
            if record.get("kind") != "table" or record.get("name") != spec.name:
                raise DamagedBackup(
                    _("the backup file is damaged (table {table} is not where it should be)", table=spec.name)
                )
            yield spec, self._rows(spec)
        manifest = self._record()
        if manifest.get("kind") != "manifest":
            raise DamagedBackup(_("the backup file is damaged (its manifest is missing)"))
        if next(self._lines, None) is not None:
            raise DamagedBackup(_("the backup file is damaged (records follow its manifest)"))
        for name, checksum in self.checksums.items():
            expected = manifest["tables"].get(name, {})
            if (expected.get("rows"), expected.get("sha256")) != (checksum.rows, checksum.hexdigest):
                raise DamagedBackup(
                    _("the backup file is damaged (table {table} does not match its manifest)", table=name)
                )
        self.manifest = manifest

    def _record(self) -> dict[str, Any]:
        line = next(self._lines, None)
        if line is None:
            raise DamagedBackup(_("the backup file is incomplete (it ends before its manifest)"))
        return parse_record(line)

    def _rows(self, spec: TableSpec) -> Iterator[bytes]:
        checksum = self.checksums[spec.name] = Checksum()
        for line in self._lines:
            if line.startswith(b"{"):
                end = parse_record(line)
                if end.get("kind") != "end" or (end.get("rows"), end.get("sha256")) != (
                    checksum.rows,
                    checksum.hexdigest,
                ):
                    raise DamagedBackup(
                        _("the backup file is damaged (table {table} does not match its count)", table=spec.name)
                    )
                return
            checksum.add(line)
            yield line
        raise DamagedBackup(_("the backup file is incomplete (it ends inside a table)"))


@dataclass
class RestoreReport:
    manifest: dict[str, Any]
    seconds: float
    upgraded_to: str | None = None
    tables: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """What was restored, in the current language (the CLI's: CHATCRM_LANGUAGE)."""
        text = _(
            "Restored {rows} rows in {tables} tables from the backup of {made} UTC (chatcrm {version}, {source}, "
            "schema {revision}) in {seconds} s; every table's count and checksum match the manifest.",
            rows=format_number(sum(self.tables.values())),
            tables=len(self.tables),
            seconds=format_number(self.seconds, 1),
            **_made(self.manifest),
        )
        if self.upgraded_to:
            text += " " + _("Schema upgraded to {revision}.", revision=self.upgraded_to)
        return text


def _made(manifest: dict[str, Any]) -> dict[str, str]:
    """When, by which chatcrm, from which database and at which schema a backup was made."""
    return {
        "made": manifest["created_at"][:19].replace("T", " "),
        "version": manifest["chatcrm_version"],
        "source": manifest["source"],
        "revision": manifest["revision"],
    }


def describe_check(path: str, manifest: dict[str, Any]) -> str:
    """What ``chatcrm restore --check`` found in a whole, verified backup, in the current language."""
    return _(
        "{file}: a complete chatcrm backup of {made} UTC ({source}, schema {revision}, chatcrm {version}): "
        "{rows} rows in {tables} tables, every checksum matches.",
        file=path,
        rows=format_number(sum(table["rows"] for table in manifest["tables"].values())),
        tables=len(manifest["tables"]),
        **_made(manifest),
    )


def check_file(source: BinaryIO, secrets: Sequence[bytes]) -> dict[str, Any]:
    """Read a whole backup without a database: decrypt, authenticate and recount it."""
    reader = BackupReader(source, secrets)
    for _spec, rows in reader.tables():
        for _row in rows:
            pass
    assert reader.manifest is not None
    return reader.manifest


def restore(
    engine: Engine,
    source: BinaryIO,
    secrets: Sequence[bytes],
    progress: Callable[[str, int], None] | None = None,
) -> RestoreReport:
    started = time.perf_counter()
    reader = BackupReader(source, secrets)
    order = _known_revisions()
    if reader.revision not in order:
        raise BackupError(
            _(
                "the backup's schema revision {revision} is unknown to this chatcrm (it knows up to {known}): "
                "restore it with the chatcrm version that made it ({version}) or newer",
                revision=reader.revision,
                known=order[-1],
                version=reader.header["chatcrm_version"],
            )
        )
    _refuse_unless_empty(engine, reader.specs)
    _migrate_to(engine, reader.revision, order)
    loaded: dict[str, int] = {}
    with engine.begin() as connection:
        for spec, rows in reader.tables():
            loaded[spec.name] = _load(connection, spec, rows)
            if progress is not None:
                progress(spec.name, loaded[spec.name])
        assert reader.manifest is not None
        for spec in reader.specs:
            found = table_checksum(connection, spec)
            expected = reader.manifest["tables"][spec.name]
            if (found.rows, found.hexdigest) != (expected["rows"], expected["sha256"]):
                raise BackupError(
                    f"table {spec.name} does not match the backup after loading ({found.rows} rows, "
                    f"expected {expected['rows']}); nothing was restored"
                )
        if connection.dialect.name == "postgresql":
            _reset_sequences(connection, reader.specs)
    upgraded = None
    if reader.revision != order[-1]:
        db.upgrade(engine)
        upgraded = order[-1]
    return RestoreReport(reader.manifest, time.perf_counter() - started, upgraded, loaded)


def _known_revisions() -> list[str]:
    """This chatcrm's schema revisions, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db.alembic_config())
    return [revision.revision for revision in script.walk_revisions()][::-1]


def _refuse_unless_empty(engine: Engine, specs: Sequence[TableSpec]) -> None:
    existing = set(sa.inspect(engine).get_table_names())
    with engine.connect() as connection:
        for spec in specs:
            if spec.name not in existing:
                continue
            if connection.execute(sa.select(sa.literal(1)).select_from(sa.table(spec.name)).limit(1)).first():
                raise NotEmpty(
                    _(
                        "the database at {url} is not empty (table {table} has rows): restore into a new, empty "
                        "database",
                        url=engine.url.render_as_string(hide_password=True),
                        table=spec.name,
                    )
                )


def _migrate_to(engine: Engine, revision: str, order: list[str]) -> None:
    """Bring the (empty) schema to exactly the backup's revision."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current == revision:
        return
    if current is None or order.index(current) < order.index(revision):
        db.upgrade(engine, revision)
    else:
        # A database created by a newer chatcrm than the backup's: it has no rows, so stepping its
        # schema back loses nothing.
        command.downgrade(db.alembic_config(engine), revision)


def _load(connection: sa.Connection, spec: TableSpec, rows: Iterator[bytes]) -> int:
    insert = spec.table().insert()
    batch: list[dict[str, Any]] = []
    count = 0
    try:
        for line in rows:
            batch.append(decode(spec, line))
            if len(batch) >= BATCH:
                connection.execute(insert, batch)
                count += len(batch)
                batch.clear()
        if batch:
            connection.execute(insert, batch)
            count += len(batch)
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise BackupError(
            _(
                "the database refused a row of table {table} ({reason}); nothing was restored",
                table=spec.name,
                reason=reason,
            )
        ) from None
    return count


def _reset_sequences(connection: sa.Connection, specs: Sequence[TableSpec]) -> None:
    """Rows were inserted with their ids, so each id sequence must continue after the highest."""
    for spec in specs:
        if len(spec.primary_key) != 1 or dict(spec.columns)[spec.primary_key[0]] != "int":
            continue
        column = spec.primary_key[0]
        sequence = connection.execute(
            sa.text("SELECT pg_get_serial_sequence(:table, :column)"), {"table": spec.name, "column": column}
        ).scalar()
        if sequence is None:
            continue
        connection.execute(
            sa.text(
                f'SELECT setval(:sequence, COALESCE(MAX("{column}"), 1), MAX("{column}") IS NOT NULL) FROM "{spec.name}"'
            ),
            {"sequence": sequence},
        )
