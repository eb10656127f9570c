"""Migrations and models agree, upgrade and downgrade cleanly, and old schemas are handled as promised."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from crm_core import db
from crm_core.models import Base


@pytest.mark.parametrize("empty_database_url", ["sqlite", "postgresql"], indirect=True)
def test_upgrade_matches_models_and_downgrades(empty_database_url):
    engine = db.create_engine(empty_database_url)
    try:
        db.upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_object": db.include_object, "compare_type": True}
            )
            assert compare_metadata(context, Base.metadata) == []
        assert db.schema_status(engine).up_to_date
        command.downgrade(db.alembic_config(engine), "base")
        assert db.schema_status(engine).current is None
        db.upgrade(engine)
        assert db.schema_status(engine).up_to_date
    finally:
        engine.dispose()


@pytest.mark.parametrize("empty_database_url", ["postgresql"], indirect=True)
def test_postgres_behind_the_code_refuses_to_start(empty_database_url):
    from bot.bootstrap import build_app
    from bot.settings import Settings

    with pytest.raises(db.SchemaBehind) as behind:
        build_app(Settings(database_url=empty_database_url))
    assert "run `chatcrm db upgrade` first" in str(behind.value)
    assert "is at an empty database" in str(behind.value)


@pytest.mark.parametrize("empty_database_url", ["sqlite"], indirect=True)
def test_sqlite_default_is_migrated_on_start(empty_database_url):
    from bot.bootstrap import build_app
    from bot.settings import Settings

    app = build_app(Settings(database_url=empty_database_url))
    try:
        assert db.schema_status(app.engine).up_to_date
    finally:
        app.close()
