"""Migrations and models agree, upgrade and downgrade cleanly, and old schemas are handled as promised."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from crm_core import db
from crm_core.models import Base
from tests.support import TEST_SECRET_KEY


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
        build_app(Settings(database_url=empty_database_url, secret_key=TEST_SECRET_KEY))
    assert "run `chatcrm db upgrade` first" in str(behind.value)
    assert "is at an empty database" in str(behind.value)


def test_the_migration_scripts_are_read_once_per_process(database_url, monkeypatch):
    # Each app built checks the schema against the newest migration; reading the scripts for it every
    # time cost a few milliseconds per app (per test, in this suite). They ship with the code, so a
    # process reads them once; the database's revision is still read every time.
    from alembic.script import ScriptDirectory

    reads = []
    from_config = ScriptDirectory.from_config

    def counted(config):
        reads.append(config)
        return from_config(config)

    monkeypatch.setattr(ScriptDirectory, "from_config", counted)
    engine = db.create_engine(database_url)
    try:
        assert db.schema_status(engine).up_to_date and db.schema_status(engine).up_to_date
    finally:
        engine.dispose()
    assert len(reads) <= 1


@pytest.mark.parametrize("empty_database_url", ["sqlite"], indirect=True)
def test_sqlite_default_is_migrated_on_start(empty_database_url):
    from bot.bootstrap import build_app
    from bot.settings import Settings

    app = build_app(Settings(database_url=empty_database_url, secret_key=TEST_SECRET_KEY))
    try:
        assert db.schema_status(app.engine).up_to_date
    finally:
        app.close()


@pytest.mark.parametrize("empty_database_url", ["sqlite", "postgresql"], indirect=True)
def test_attachment_words_in_old_messages_become_kinds_and_come_back_on_downgrade(empty_database_url):
    """0020: "[voice message]", "[file: a.pdf] caption"... written by the Telegram adapter into
    ticket_messages and interactions are split into attachment columns; other texts are untouched."""
    import sqlalchemy as sa

    engine = db.create_engine(empty_database_url)
    now = "2026-12-01 10:00:00+00:00"
    old = [
        ("[voice message]", "inbound", "telegram"),
        ("[file: 报价单.pdf] 请看附件", "inbound", "telegram"),
        ("[file: unnamed]", "inbound", "telegram"),
        ("[sticker 😀]", "inbound", "telegram"),
        ("[location 52.52000, 13.40500] here", "inbound", "telegram"),
        ("[photo] the error\nscreen", "inbound", "telegram"),
        # Not the adapter's words, or not a customer's Telegram message: left alone.
        ("[photo] of our answer", "outbound", "telegram"),
        ("[draft] call back", "inbound", "telegram"),
        ("[voice message]", "inbound", "console"),
    ]
    try:
        db.upgrade(engine, "0019_cjk_search")
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO customers (id, kind, name, search_name, search_keys, lifetime_value_cents, "
                    "order_count, created_at, updated_at) VALUES (1, 'person', 'Carla', 'carla', '', 0, 0, :now, :now)"
                ),
                {"now": now},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO tickets (id, customer_id, subject, status, priority, channel, created_at, updated_at) "
                    "VALUES (1, 1, 'Help', 'open', 'normal', 'telegram', :now, :now)"
                ),
                {"now": now},
            )
            for number, (text, direction, channel) in enumerate(old, 1):
                values = {"id": number, "text": text, "direction": direction, "channel": channel, "now": now}
                connection.execute(
                    sa.text(
                        "INSERT INTO ticket_messages (id, ticket_id, direction, channel, text, created_at) "
                        "VALUES (:id, 1, :direction, :channel, :text, :now)"
                    ),
                    values,
                )
                connection.execute(
                    sa.text(
                        "INSERT INTO interactions (id, customer_id, kind, direction, channel, text, occurred_at, "
                        "created_at) VALUES (:id, 1, 'chat', :direction, :channel, :text, :now, :now)"
                    ),
                    values,
                )
        db.upgrade(engine, "0021_message_attachments")
        expected = [
            ("", "voice", None),
            ("请看附件", "file", "报价单.pdf"),
            ("", "file", None),
            ("", "sticker", "😀"),
            ("here", "location", "52.52000, 13.40500"),
            ("the error\nscreen", "photo", None),
            ("[photo] of our answer", None, None),
            ("[draft] call back", None, None),
            ("[voice message]", None, None),
        ]
        with engine.connect() as connection:
            for table in ("ticket_messages", "interactions"):
                query = sa.text(f"SELECT text, attachment_kind, attachment_name FROM {table} ORDER BY id")
                assert [tuple(row) for row in connection.execute(query)] == expected, table
        command.downgrade(db.alembic_config(engine), "0019_cjk_search")
        with engine.connect() as connection:
            for table in ("ticket_messages", "interactions"):
                texts = [row[0] for row in connection.execute(sa.text(f"SELECT text FROM {table} ORDER BY id"))]
                assert texts == [text for text, _direction, _channel in old], table
    finally:
        engine.dispose()
