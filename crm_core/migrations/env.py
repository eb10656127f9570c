"""Alembic environment: runs migrations on the engine handed over by crm_core.db, or DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context

from crm_core import db
from crm_core.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        engine = db.create_engine(os.environ.get("DATABASE_URL", db.DEFAULT_DATABASE_URL))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=db.include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `chatcrm db upgrade`")
run_migrations_online()
