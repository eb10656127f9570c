"""Test fixtures: every database test runs on SQLite and on PostgreSQL, each in its own database.

A migrated template is built once per session (a SQLite file; a PostgreSQL template database),
so tests never pay for migrations, and every test starts from an empty migrated database:

- SQLite: a fresh copy of the template file.
- PostgreSQL: this process's own database (a copy of the template), emptied before each test
  (every row deleted, every sequence restarted), which leaves it as a fresh copy would be. Creating
  and dropping a database per test cost 1-3 s on this machine (both write and sync the whole
  database); emptying costs a few milliseconds. If a test changed the schema (or the emptying
  fails), the database is dropped and copied from the template again.

Names carry the process id, so pytest-xdist workers never share a database. PostgreSQL comes from
``TEST_DATABASE_URL`` or a server on 127.0.0.1:5432; without one the PostgreSQL variants are
skipped with the reason shown, unless ``CHATCRM_REQUIRE_POSTGRES=1`` (set by .ci/run) makes that
an error.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from crm_core import db

# Keep compiled bytecode even where PYTHONDONTWRITEBYTECODE is set (as on the development machines):
# every app a test builds checks the schema against alembic's migration scripts, which alembic
# loads afresh each time, and compiling them from source made building an app 60-120 ms instead
# of 10 ms, a minute or more of the suite. __pycache__ is ignored by git.
sys.dont_write_bytecode = False

# One thread per test process for OpenMP and the BLAS libraries, in this process and the `chatcrm`
# processes tests start (they inherit the environment). pytest-xdist already runs a test on every core
# (and one more); scikit-learn's gradient-boosted trees (churn training: the demo, /model train) then
# started an OpenMP thread per core in each worker, and OpenMP's threads spin while they wait for
# work: tests/test_predictions.py on SQLite took 16.9 s of CPU with them, 7.1 s without, for the same
# models. Set before numpy and scikit-learn load (they read it then); a value given outside is kept.
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

# The Telegram fake and rigs (fake_telegram, webhook_rig, polling_rig) for every test module.
pytest_plugins = ["tests.telegram_rig"]

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_counter = itertools.count()
# Why PostgreSQL tests are skipped, when they are.
_pg_state: dict[str, str] = {}


def _pg_admin_url() -> str:
    return db.normalize_url(os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG_URL)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine | None]:
    """An autocommit engine on the PostgreSQL server, or None (with the reason recorded) if there is none."""
    url = _pg_admin_url()
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        reason = (
            f"PostgreSQL not reachable at {db.mask_url(url)} ({str(exc.orig).splitlines()[0]}); set TEST_DATABASE_URL"
        )
        if os.environ.get("CHATCRM_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason, pytrace=False)
        _pg_state["skip_reason"] = reason
        yield None
        return
    yield engine
    engine.dispose()


def _pg_url_for(database: str) -> str:
    return make_url(_pg_admin_url()).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template(pg_admin) -> Iterator[str | None]:
    if pg_admin is None:
        yield None
        return
    name = f"chatcrm_tpl_{os.getpid()}"
    with pg_admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = db.create_engine(_pg_url_for(name), poolclass=sa.pool.NullPool)
    db.upgrade(engine)
    engine.dispose()
    yield name
    with pg_admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = db.create_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    # Closing the last connection folds the WAL into the file, so a plain copy is complete.
    engine.dispose()
    assert not path.with_name(path.name + "-wal").exists()
    return path


# The schema as PostgreSQL's catalogue has it: tables, their columns, types and nullability.
_SCHEMA_FINGERPRINT = """
    SELECT md5(string_agg(c.relname || '.' || a.attname || ':' || a.atttypid::text || ':' || a.attnotnull::text,
                          ',' ORDER BY c.relname, a.attnum))
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S') AND a.attnum > 0 AND NOT a.attisdropped
"""


class ReusedPgDatabase:
    """This process's PostgreSQL test database, a copy of the template emptied before each use."""

    def __init__(self, pg_admin: sa.Engine, template: str, name: str | None = None):
        self.pg_admin = pg_admin
        self.template = template
        self.name = name or f"chatcrm_t_{os.getpid()}"
        self.url = _pg_url_for(self.name)
        # One connection of ours stays open on the database between tests, so emptying it costs no
        # connection set-up; pre-ping replaces it if it was closed.
        self.engine = sa.create_engine(self.url, pool_size=1, max_overflow=0, pool_pre_ping=True)
        with pg_admin.connect() as connection:
            # Emptying turns foreign keys off for its transaction (session_replication_role), which
            # takes a superuser; without one every test gets a new copy, as it would by default.
            self.can_empty = bool(
                connection.exec_driver_sql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").scalar()
            )
        self._recreate()
        with self.engine.connect() as connection:
            self.fingerprint = connection.exec_driver_sql(_SCHEMA_FINGERPRINT).scalar()
        self.used = False

    def _recreate(self) -> None:
        self.engine.dispose()
        with self.pg_admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{self.name}" TEMPLATE "{self.template}"')
            # A commit need not wait for its WAL to reach the disk: what other connections see is the
            # same, only a crash of the PostgreSQL server itself could lose the last commits, and
            # no test crashes the server (the crash tests kill our processes). Every connection
            # to this database, worker subprocesses' included, gets it.
            connection.exec_driver_sql(f'ALTER DATABASE "{self.name}" SET synchronous_commit = off')

    def checkout(self) -> str:
        """The database's URL, empty and with the template's schema."""
        if self.used and not (self.can_empty and self._empty()):
            self._recreate()
        self.used = True
        return self.url

    def _empty(self) -> bool:
        """Delete every row and restart every sequence; False if the schema is not the template's
        any more (a test renamed a table and failed before renaming it back) or emptying failed."""
        try:
            with self.engine.begin() as connection:
                # Connections a test left behind (a killed worker's, a leaked pool) go, as DROP ... FORCE
                # would make them: none may hold a lock or write after this.
                connection.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                if connection.exec_driver_sql(_SCHEMA_FINGERPRINT).scalar() != self.fingerprint:
                    return False
                connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
                connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
                tables = connection.exec_driver_sql(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                ).scalars()
                sequences = connection.exec_driver_sql(
                    "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL"
                ).scalars()
                statements = [f'DELETE FROM "{table}"' for table in tables]
                statements += [f'ALTER SEQUENCE "{sequence}" RESTART' for sequence in sequences]
                connection.exec_driver_sql("; ".join(statements))
            return True
        except sa.exc.DBAPIError:
            return False

    def drop(self) -> None:
        self.engine.dispose()
        with self.pg_admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database(pg_admin, pg_template) -> Iterator[ReusedPgDatabase | None]:
    if pg_admin is None:
        yield None
        return
    database = ReusedPgDatabase(pg_admin, pg_template)
    yield database
    database.drop()


def fresh_database(kind: str, tmp_path: Path, sqlite_template: Path, pg_database) -> Iterator[str]:
    if kind == "sqlite":
        path = tmp_path / "chatcrm.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if pg_database is None:
        pytest.skip(pg_admin_skip_reason())
    yield pg_database.checkout()


def _temporary_pg_database(pg_admin, prefix: str) -> Iterator[str]:
    """An empty PostgreSQL database of its own, dropped afterwards."""
    if pg_admin is None:
        pytest.skip(pg_admin_skip_reason())
    name = f"{prefix}_{os.getpid()}_{next(_counter)}"
    with pg_admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url_for(name)
    finally:
        with pg_admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_admin_skip_reason() -> str:
    return _pg_state.get("skip_reason", "PostgreSQL is not available")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, sqlite_template, pg_database) -> Iterator[str]:
    """A migrated, empty database for this test alone, on SQLite and on PostgreSQL."""
    yield from fresh_database(request.param, tmp_path, sqlite_template, pg_database)


@pytest.fixture
def empty_database_url(request, tmp_path, pg_admin) -> Iterator[str]:
    """Unmigrated databases, for migration tests; parametrised by the test with indirect=True."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    yield from _temporary_pg_database(pg_admin, "chatcrm_e")


@pytest.fixture
def settings(database_url):
    from bot.settings import Settings
    from tests.support import TEST_SECRET_KEY

    return Settings(database_url=database_url, secret_key=TEST_SECRET_KEY)


@pytest.fixture
def app(settings) -> Iterator:
    from bot.bootstrap import build_app

    application = build_app(settings)
    yield application
    application.close()


@pytest.fixture
def chat(app):
    """Talk to the real dispatcher as a given user; returns the reply (and its plain-text rendering)."""
    from tests.support import Chat

    return Chat(app)


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """``chatcrm`` commands run in-process (``bot.cli.main``) point the root logger at the stderr pytest
    captured for that test; put the root logger back so later tests never log to a closed stream."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _company_language_is_english() -> None:
    """CHATCRM_LANGUAGE is process-wide (``build_app`` sets it from the settings): every test starts
    from the default, whatever the test before it in this worker built (a Chinese app left it zh)."""
    from crm_core import i18n

    i18n.set_default_language(None)


# -- order -------------------------------------------------------------------------------------

# Test modules whose tests must share one xdist worker (a module-scoped fixture that is expensive to
# start: the Spark tests' JVM, about 20 s of CPU each time). pytest-xdist's ``xdist_group`` mark does
# this by suffixing each node id with "@group", but pytest 9 derives node ids from a structure that
# suffix no longer reaches, so on pytest 9 the mark alone spread the Spark tests over every worker
# (three JVMs, a minute of the suite). The scheduler below groups by module instead, and still
# honours the suffix where an xdist and pytest pair applies it.
ONE_WORKER_MODULES = frozenset({"tests/test_spark_mining.py"})


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: optional where it is not installed
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with every test of ``ONE_WORKER_MODULES`` in one work unit, the rest
    handed out one at a time."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class ModuleGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else super()._split_scope(nodeid)

    return ModuleGroupScheduling(config, log)


def pytest_collection_modifyitems(items) -> None:
    """Slow tests (the crash tests, minutes of real worker processes) run first, in their usual
    order: under pytest-xdist the short tests then fill the other worker around them, instead of
    one crash test starting last and running on alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# -- figures a test measures, shown at the end of the run -------------------------------------

_reports: list[str] = []


@pytest.fixture
def report(request):
    """``report(text)``: a figure the test measured (crash-test counts, timings), printed in the
    run's summary. Kept with the test's report, so it shows under pytest-xdist too, where what a
    test prints is not."""

    def add(text: str) -> None:
        request.node.user_properties.append(("report", text))

    return add


def pytest_runtest_logreport(report) -> None:
    if report.when == "call":
        _reports.extend(text for name, text in report.user_properties if name == "report")


def pytest_terminal_summary(terminalreporter) -> None:
    if _reports:
        terminalreporter.section("measured")
        for text in _reports:
            terminalreporter.write_line(text)
