"""Test fixtures: every database test runs on SQLite and on PostgreSQL, each in its own database.

A migrated template is built once per session (a SQLite file; a PostgreSQL template database)
and every test gets a fresh copy, so tests never share state and never pay for migrations.
PostgreSQL comes from ``TEST_DATABASE_URL`` or a server on 127.0.0.1:5432; without one the
PostgreSQL variants are skipped with the reason shown, unless ``CHATCRM_REQUIRE_POSTGRES=1``
(set by .ci/run) makes that an error.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from crm_core import db

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


def fresh_database(kind: str, tmp_path: Path, sqlite_template: Path, pg_admin, pg_template) -> Iterator[str]:
    if kind == "sqlite":
        path = tmp_path / "chatcrm.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    yield from _temporary_pg_database(pg_admin, "chatcrm_t", template=pg_template)


def _temporary_pg_database(pg_admin, prefix: str, template: str | None = None) -> Iterator[str]:
    """A PostgreSQL database of its own (a copy of ``template``, or empty), dropped afterwards."""
    if pg_admin is None:
        pytest.skip(pg_admin_skip_reason())
    name = f"{prefix}_{os.getpid()}_{next(_counter)}"
    with pg_admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield _pg_url_for(name)
    finally:
        with pg_admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_admin_skip_reason() -> str:
    return _pg_state.get("skip_reason", "PostgreSQL is not available")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, sqlite_template, pg_admin, pg_template) -> Iterator[str]:
    """A migrated, empty database of its own for this test, on SQLite and on PostgreSQL."""
    yield from fresh_database(request.param, tmp_path, sqlite_template, pg_admin, pg_template)


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

    return Settings(database_url=database_url)


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
