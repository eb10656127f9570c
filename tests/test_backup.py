"""Backups: taken while the CRM runs, restored into the other database kind, refused when wrong.

Every test starts from a real database of each kind (the ``database_url`` fixture) and restores
into the other kind, so each one also shows the way from SQLite to PostgreSQL and back.
"""

from __future__ import annotations

import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

import bot.backups
from bot.bootstrap import build_app
from bot.cli import main as cli_main
from bot.plugins import _entry_points
from bot.settings import Settings
from crm_core import backup, db, demo
from crm_core.backup import sealed
from crm_core.backup.retention import backups_in
from crm_core.backup.rows import encode, select_rows, specs_of
from crm_core.backup.stream import RecordWriter
from crm_core.models import Base, Customer, Order, Product
from crm_core.scheduling import run_due, schedule
from crm_core.services import customers, orders
from tests.conftest import pg_admin_skip_reason
from tests.support import TEST_SECRET_KEY

KEY = b"a test key that is long enough"
OTHER_KEY = b"another key that is also long enough"


@pytest.fixture
def other_url(database_url, tmp_path, pg_database) -> str:
    """An empty database of the other kind: a migrated PostgreSQL one for a SQLite source, a SQLite
    file without any schema for a PostgreSQL source (so both ways of creating the schema run)."""
    if database_url.startswith("sqlite"):
        if pg_database is None:
            pytest.skip(pg_admin_skip_reason())
        return pg_database.checkout()
    return f"sqlite:///{tmp_path / 'restored.db'}"


def _seed(app, customers_count: int = 12) -> None:
    with app.uow(demo.DEMO_ACTOR) as uow:
        demo.seed(uow, customers=customers_count)


def _tables(url: str) -> dict[str, list[str]]:
    """Every table's rows in the backup's neutral form, sorted: equal across database kinds."""
    engine = db.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                spec.name: sorted(encode(spec, row) for row in connection.execute(select_rows(spec)))
                for spec in specs_of(Base.metadata)
            }
    finally:
        engine.dispose()


def _row_count(url: str) -> int:
    return sum(len(rows) for rows in _tables(url).values()) if _has_schema(url) else 0


def _has_schema(url: str) -> bool:
    engine = db.create_engine(url)
    try:
        return "customers" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _restore(url: str, path: Path, keys=(KEY,)) -> backup.RestoreReport:
    engine = db.create_engine(url)
    try:
        with path.open("rb") as source:
            return backup.restore(engine, source, keys)
    finally:
        engine.dispose()


def test_demo_data_restores_into_the_other_database_kind_table_by_table(app, database_url, other_url, tmp_path):
    _seed(app)
    path = tmp_path / "demo.backup"
    summary = backup.backup_to_file(app.engine, path, KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert summary.manifest["source"] == app.engine.dialect.name
    assert summary.manifest["tables"]["customers"]["rows"] == 12
    # Encrypted: no customer name is readable in the file.
    assert b"Acme" not in path.read_bytes()

    report = _restore(other_url, path)

    assert report.tables == {name: table["rows"] for name, table in summary.manifest["tables"].items()}
    before, after = _tables(database_url), _tables(other_url)
    assert list(before) == list(after)
    for name in before:
        assert after[name] == before[name], name
    # The restored database works: the next customer gets the next id (PostgreSQL's sequences moved on).
    # With the key the data were encrypted with: the backup carries the ciphertext as it was.
    restored = build_app(Settings(database_url=other_url, secret_key=TEST_SECRET_KEY))
    try:
        with restored.uow(demo.DEMO_ACTOR) as uow:
            highest = uow.session.scalar(sa.select(sa.func.max(Customer.id)))
            assert customers.create_customer(uow, "After Restore Ltd").id == highest + 1
    finally:
        restored.close()


def test_a_backup_taken_while_another_thread_writes_is_one_consistent_moment(app, database_url, other_url, tmp_path):
    _seed(app)
    with app.uow() as uow:
        product_id = uow.session.scalar(sa.select(Product.id).order_by(Product.id).limit(1))
    stop, written, failures = threading.Event(), [0], []

    def write(label: str) -> None:
        with app.uow(demo.DEMO_ACTOR) as uow:
            person = customers.create_customer(uow, f"Writer {label}")
            uow.flush()
            orders.create_order(uow, person.id, [orders.LineInput(product_id, 2, 1500)])

    def writer() -> None:
        try:
            # Bounded: the writes compete with the backup for the two cores of a test machine.
            while not stop.is_set() and written[0] < 25:
                write(str(written[0]))
                written[0] += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    during: list[str] = []

    def progress(table: str, _rows: int) -> None:
        # Customers are in the snapshot; a customer with an order committed now must not be: its
        # order would be read later, and the restore would refuse it for its missing customer.
        if table == "customers":
            write("during the backup")
            during.append(table)

    try:
        summary = backup.backup_to_file(app.engine, tmp_path / "busy.backup", KEY, progress)
    finally:
        stop.set()
        thread.join()
    assert not failures and during and written[0] > 0
    manifest = summary.manifest["tables"]

    report = _restore(other_url, tmp_path / "busy.backup")

    assert report.tables == {name: table["rows"] for name, table in manifest.items()}
    restored = _tables(other_url)
    assert {name: len(rows) for name, rows in restored.items()} == {n: t["rows"] for n, t in manifest.items()}
    assert not any("Writer during the backup" in row for row in restored["customers"])
    engine = db.create_engine(other_url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            # The derived order count on each customer agrees with the orders in the same backup.
            stale = connection.execute(
                sa.select(Customer.id).where(
                    Customer.order_count
                    != sa.select(sa.func.count(Order.id)).where(Order.customer_id == Customer.id).scalar_subquery()
                )
            ).all()
            assert stale == []
    finally:
        engine.dispose()


def _damaged(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "tampered":
        # A byte inside the last chunk's ciphertext: most tables are loaded by the time it is read.
        # Found by walking the chunks' length fields: a fixed offset from the end sometimes hit a
        # length field instead (the chunks' sizes vary with the encrypted values they hold), which
        # reads as a truncated file, rightly.
        offset, last = sealed.HEADER_SIZE, (0, 0)
        while offset < len(data):
            length = int.from_bytes(data[offset : offset + 4], "big")
            last = (offset + 4, length)
            offset += 4 + length
        start, length = last
        data[start + length // 2] ^= 0x01
    elif how == "truncated":
        del data[-3000:]
    path.write_bytes(bytes(data))


DAMAGE = [
    ("wrong key", "the backup was made with a different CHATCRM_SECRET_KEY"),
    ("tampered", "the backup file is damaged (a chunk fails its authentication check"),
    ("truncated", "the backup file is truncated"),
]


def test_a_wrong_key_a_changed_byte_or_a_cut_file_is_one_clear_error_and_restores_nothing(
    app, other_url, tmp_path, monkeypatch, capsys
):
    _seed(app)
    original = tmp_path / "good.backup"
    # Small chunks, so the damage sits in a later chunk, read after earlier tables were loaded.
    backup.backup_to_file(app.engine, original, KEY, chunk_size=4096)
    monkeypatch.setenv("DATABASE_URL", other_url)
    for how, message in DAMAGE:
        path = tmp_path / f"{how}.backup"
        path.write_bytes(original.read_bytes())
        if how != "wrong key":
            _damaged(path, how)
        monkeypatch.setenv("CHATCRM_SECRET_KEY", (OTHER_KEY if how == "wrong key" else KEY).decode())

        assert cli_main(["restore", str(path)]) == 1

        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"chatcrm: {message}"), (how, err)
        assert _row_count(other_url) == 0, how


def test_sealed_chunks_cannot_be_reordered_dropped_or_extended():
    import io

    from crm_core.backup.sealed import DamagedBackup, SealedWriter, open_sealed

    out = io.BytesIO()
    writer = SealedWriter(out, KEY, chunk_size=16)
    writer.write(b"0123456789abcdef" * 4 + b"tail")
    writer.close()
    data = out.getvalue()
    header, body = data[:48], data[48:]
    chunks = []
    while body:
        length = int.from_bytes(body[:4], "big")
        chunks.append(body[: 4 + length])
        body = body[4 + length :]
    assert len(chunks) == 5
    assert b"".join(open_sealed(io.BytesIO(data), [KEY])) == b"0123456789abcdef" * 4 + b"tail"

    def read(raw: bytes) -> str:
        with pytest.raises(DamagedBackup) as failure:
            b"".join(open_sealed(io.BytesIO(raw), [KEY]))
        return str(failure.value)

    assert "truncated (its final chunk is missing)" in read(header + b"".join(chunks[:3]))
    assert "authentication" in read(header + chunks[1] + chunks[0] + b"".join(chunks[2:]))
    assert "data follows its final chunk" in read(data + chunks[4])
    assert "not a chatcrm backup" in read(b"PK\x03\x04" + data[4:])


def test_restore_refuses_a_database_that_has_rows(app, other_url, tmp_path, monkeypatch, capsys):
    path = tmp_path / "full.backup"
    backup.backup_to_file(app.engine, path, KEY)
    target = build_app(Settings(database_url=other_url, secret_key=TEST_SECRET_KEY))
    try:
        with target.uow(demo.DEMO_ACTOR) as uow:
            customers.create_customer(uow, "Already Here GmbH")
    finally:
        target.close()
    monkeypatch.setenv("DATABASE_URL", other_url)
    monkeypatch.setenv("CHATCRM_SECRET_KEY", KEY.decode())

    assert cli_main(["restore", str(path)]) == 1

    err = capsys.readouterr().err.strip()
    assert "is not empty (table " in err and "restore into a new, empty database" in err
    assert [row for row in _tables(other_url)["customers"] if "Already Here" in row]
    assert len(_tables(other_url)["customers"]) == 1


def test_a_backup_from_a_newer_chatcrm_is_refused_before_anything_is_written(database_url, tmp_path):
    path = tmp_path / "future.backup"
    with path.open("wb") as out:
        writer = RecordWriter(out, KEY)
        writer.record(
            {
                "kind": "header",
                "format": "chatcrm-backup",
                "revision": "9999_from_the_future",
                "chatcrm_version": "9.0.0",
                "tables": [],
            }
        )
        writer.close()
    with pytest.raises(backup.BackupError, match="schema revision 9999_from_the_future is unknown to this chatcrm"):
        _restore(database_url, path)


def test_the_cli_generates_a_key_next_to_a_sqlite_database_once_and_refuses_postgresql_without_one(
    tmp_path, monkeypatch, capsys, sqlite_template
):
    import shutil

    database = tmp_path / "crm.db"
    shutil.copyfile(sqlite_template, database)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.delenv("CHATCRM_SECRET_KEY", raising=False)
    assert cli_main(["backup", "--out", str(tmp_path / "one.backup")]) == 0
    first = capsys.readouterr()
    key_file = tmp_path / "crm.db.key"
    assert f"generated a secret key into {key_file}" in first.err
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "Backed up 0 rows" in first.out
    assert cli_main(["backup", "--out", str(tmp_path / "two.backup")]) == 0
    assert "generated" not in capsys.readouterr().err
    assert cli_main(["restore", "--check", str(tmp_path / "two.backup")]) == 0
    assert "every checksum matches" in capsys.readouterr().out

    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert cli_main(["backup"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chatcrm: CHATCRM_SECRET_KEY is not set: with PostgreSQL")


# -- the nightly job ----------------------------------------------------------------------------


def _backup_app(database_url: str, directory: Path, keep: int):
    """An app as `chatcrm worker` builds it, with the backup settings; the backups plugin comes
    from its entry point once the project is installed, else it is given."""
    env = {"CHATCRM_BACKUP_DIR": str(directory), "CHATCRM_BACKUP_KEEP": str(keep), "CHATCRM_SECRET_KEY": KEY.decode()}
    settings = Settings.from_env({**env, "DATABASE_URL": database_url})
    return build_app(settings, plugins=_backups_plugin())


def _backups_plugin() -> list:
    """bot.backups, unless the installed project already loads it by its entry point."""
    return [] if any(entry.value == "bot.backups" for entry, _, _ in _entry_points()) else [bot.backups]


def _register_nightly(app) -> None:
    """What the leading scheduler does at start for every job with a trigger."""
    job = app.plugins.jobs[bot.backups.TASK]
    assert job.trigger is not None
    with app.uow() as uow:
        schedule(uow, job.name, job.name, job.trigger, misfire_grace_seconds=job.misfire_grace_seconds)


def _run_nightly(app) -> list:
    job = app.plugins.jobs[bot.backups.TASK]
    return run_due(app.session_factory, tasks={job.name: job.function}, config=app.settings.extra)


def test_the_nightly_job_is_scheduled_only_with_a_folder_and_keeps_the_newest_n(database_url, tmp_path):
    plain = build_app(Settings(database_url=database_url, secret_key=KEY.decode()), plugins=_backups_plugin())
    try:
        assert plain.plugins.jobs[bot.backups.TASK].trigger is None
    finally:
        plain.close()
    folder = tmp_path / "backups"
    app = _backup_app(database_url, folder, keep=3)
    try:
        with time_machine.travel(datetime(2026, 3, 1, 12, tzinfo=UTC), tick=False) as traveller:
            _register_nightly(app)
            for night in range(5):
                traveller.move_to(datetime(2026, 3, 2 + night, 3, 0, 5, tzinfo=UTC))
                assert [outcome.status for outcome in _run_nightly(app)] == ["ok"]
        names = [path.name for path in backups_in(folder)]
        assert names == [f"chatcrm-202603{day:02d}T030005Z.backup" for day in (4, 5, 6)]
        assert not [path for path in folder.iterdir() if path.name.endswith(".partial")]
    finally:
        app.close()


def test_restores_yesterdays_backup_and_compares_every_table(database_url, other_url, tmp_path):
    folder = tmp_path / "nightly"
    app = _backup_app(database_url, folder, keep=14)
    try:
        with time_machine.travel(datetime(2026, 5, 10, 15, tzinfo=UTC), tick=False) as traveller:
            _seed(app, 10)
            _register_nightly(app)
            traveller.move_to(datetime(2026, 5, 11, 3, 0, 1, tzinfo=UTC))
            assert [outcome.status for outcome in _run_nightly(app)] == ["ok"]
            yesterday = _tables(database_url)
            # The next day the CRM moves on: a new customer, an edited one.
            traveller.move_to(datetime(2026, 5, 11, 16, tzinfo=UTC))
            with app.uow(demo.DEMO_ACTOR) as uow:
                customers.create_customer(uow, "Tuesday Trading")
                first = uow.session.scalars(sa.select(Customer).order_by(Customer.id)).first()
                assert first is not None
                first.name = "Renamed on Tuesday"
            assert _tables(database_url) != yesterday
            # Wednesday morning: restore yesterday's (Tuesday night's) backup.
            traveller.move_to(datetime(2026, 5, 12, 9, tzinfo=UTC))
            yesterdays_name = (datetime.now(UTC) - timedelta(days=1)).strftime("chatcrm-%Y%m%dT")
            [last_night] = [path for path in backups_in(folder) if path.name.startswith(yesterdays_name)]
    finally:
        app.close()

    _restore(other_url, last_night)

    restored = _tables(other_url)
    # The backup was taken by the job while it ran: its own row holds the run's lease, not yet the
    # outcome recorded after the backup finished. Every other table is exactly as it was.
    jobs_then, jobs_now = restored.pop("scheduled_jobs"), yesterday.pop("scheduled_jobs")
    assert restored == yesterday
    assert len(jobs_then) == len(jobs_now) == 1 and '"ok"' in jobs_now[0] and '"ok"' not in jobs_then[0]
