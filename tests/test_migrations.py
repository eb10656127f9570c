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


def _insert_customer(connection, now: str) -> None:
    import sqlalchemy as sa

    connection.execute(
        sa.text(
            "INSERT INTO customers (id, kind, name, search_name, search_keys, lifetime_value_cents, "
            "order_count, created_at, updated_at) VALUES (1, 'person', 'Carla', 'carla', '', 0, 0, :now, :now)"
        ),
        {"now": now},
    )


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
            _insert_customer(connection, now)
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


@pytest.mark.parametrize("empty_database_url", ["sqlite", "postgresql"], indirect=True)
def test_chat_ids_stored_before_0024_are_encrypted_and_indexed_and_decrypted_on_downgrade(empty_database_url):
    """0024: customers' chat ids written in the clear are sealed with the migrating engine's key and
    get their blind indexes; the downgrade opens them again."""
    import sqlalchemy as sa

    from crm_core import field_crypto
    from crm_core.models import chat_ids

    engine = db.create_engine(empty_database_url)
    keys = field_crypto.FieldKeys([TEST_SECRET_KEY.encode()])
    field_crypto.use_keys(engine, keys)
    now = "2026-12-01 10:00:00+00:00"
    chats = [(1, "4815162342", "4815162342"), (2, "U02ABCDEF", "D02GHIJKL")]
    try:
        db.upgrade(engine, "0023_field_encryption")
        with engine.begin() as connection:
            _insert_customer(connection, now)
            for chat_id, external_id, conversation in chats:
                connection.execute(
                    sa.text(
                        "INSERT INTO customer_chats (id, customer_id, platform, external_id, conversation, "
                        "placeholder, created_at) VALUES (:id, 1, 'telegram', :external_id, :conversation, false, :now)"
                    ),
                    {"id": chat_id, "external_id": external_id, "conversation": conversation, "now": now},
                )
            connection.execute(
                sa.text(
                    "INSERT INTO customer_consents (id, customer_id, platform, conversation, status) "
                    "VALUES (1, 1, 'telegram', '4815162342', 'opted_in')"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO outbox (id, idempotency_key, kind, platform, conversation, payload, status, attempts, "
                    "not_before, created_at) VALUES (1, 'k1', 'notification', 'telegram', '-1001234567', '{}', "
                    "'pending', 0, :now, :now)"
                ),
                {"now": now},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO blocked_recipients (platform, conversation, reason, blocked_at) "
                    "VALUES ('telegram', '4815162342', 'Forbidden', :now)"
                ),
                {"now": now},
            )
        db.upgrade(engine)
        query = (
            "SELECT external_id, conversation, external_id_index, conversation_index FROM customer_chats ORDER BY id"
        )
        with engine.connect() as connection:
            stored = [tuple(row) for row in connection.execute(sa.text(query))]
        for (_id, external_id, conversation), row in zip(chats, stored, strict=True):
            assert row[0].startswith(field_crypto.PREFIX) and row[1].startswith(field_crypto.PREFIX)
            assert keys.decrypt(chat_ids.CHAT_ID, row[0]) == external_id
            assert keys.decrypt(chat_ids.CHAT_ID, row[1]) == conversation
            assert row[2:] == (chat_ids.blind(keys, external_id), chat_ids.blind(keys, conversation))
        others = {
            "customer_consents": "4815162342",
            "outbox": "-1001234567",
            "blocked_recipients": "4815162342",
        }
        with engine.connect() as connection:
            for table, chat_id in others.items():
                query = f"SELECT conversation, conversation_index FROM {table}"
                [(token, index)] = [tuple(row) for row in connection.execute(sa.text(query))]
                assert token.startswith(field_crypto.PREFIX) and keys.decrypt(chat_ids.CHAT_ID, token) == chat_id
                assert index == chat_ids.blind(keys, chat_id), table
        # A group's index says so (the outbox row's chat).
        assert chat_ids.blind(keys, "-1001234567").startswith(chat_ids.GROUP_MARK)
        command.downgrade(db.alembic_config(engine), "0023_field_encryption")
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, external_id, conversation FROM customer_chats ORDER BY id"))
            assert [tuple(row) for row in rows] == chats
            for table, chat_id in others.items():
                assert connection.execute(sa.text(f"SELECT conversation FROM {table}")).scalars().all() == [chat_id]
    finally:
        engine.dispose()
