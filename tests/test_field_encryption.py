"""Field encryption at rest: what the database holds is unreadable without CHATCRM_SECRET_KEY, lookups by
email and phone still work through blind indexes, keys rotate, and a wrong key is one clear error.
On SQLite and PostgreSQL, written through the real services."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
import sqlalchemy as sa

from bot.bootstrap import build_app
from bot.cli import main as cli_main
from bot.settings import Settings
from crm_core import customer_keys, db, field_crypto, outbox, search
from crm_core.actor import Actor
from crm_core.customer_keys import KEYRING, Keyring
from crm_core.errors import NotFound
from crm_core.field_crypto import FieldKeyError
from crm_core.models import (
    BlockedRecipient,
    CampaignRecipient,
    Consent,
    ConsentStatus,
    Customer,
    CustomerChat,
    FieldEntity,
    FieldType,
    Interaction,
    OutboxMessage,
    TicketMessage,
    WebhookEndpoint,
    chat_ids,
)
from crm_core.outbox_payload import MessagePayload
from crm_core.secret_key import SecretKeyError
from crm_core.services import consent, custom_fields, customer_chats, customers, interactions, reachability, tickets
from crm_core.services.users import PlatformId
from tests.support import TEST_SECRET_KEY
from tests.telegram_rig import SUPPORT_CHAT
from tests.test_backup import other_url  # noqa: F401 - fixture: an empty database of the other kind

ACTOR = Actor(user_id=None, name="Tess Tester", platform="console")
EMAIL = "w.q.7731@quintessential.example"
PHONE = "+49 (30) 8675-3091"
DIGITS = "8675 3091"
MESSAGE = "my parcel zanzibarian is lost"
ANSWER = "Sorry, we look for the zanzibarian parcel"
NOTE = "prefers calls after lunch, said gobbledygook"
BIRTHDAY = "1979-04-01"
# Her Telegram user id (a private chat's id is the same number), and a group chat she is in.
TELEGRAM_ID = "7319046285"
GROUP_ID = "-1009182736455"
# A chat that blocked the bot.
BLOCKED_ID = "6402718395"
# None of these may be found in what the database stores.
SECRETS = [EMAIL, "w.q.7731", "86753091", "8675-3091", "zanzibarian", "gobbledygook", BIRTHDAY]
SECRETS += [TELEGRAM_ID, GROUP_ID, BLOCKED_ID]
NEW_KEY = "a-brand-new-secret-key-after-rotation"


def _seed(app) -> int:
    with app.uow(ACTOR) as uow:
        custom_fields.define_field(uow, FieldEntity.CUSTOMER, "birthday", FieldType.DATE, personal=True)
        custom_fields.define_field(uow, FieldEntity.CUSTOMER, "industry", FieldType.TEXT)
    with app.uow(ACTOR) as uow:
        customer = customers.create_customer(
            uow,
            "Wilhelmina Quint",
            {"email": EMAIL, "phone": PHONE, "birthday": BIRTHDAY, "industry": "Zymurgy"},
        )
        interactions.log_interaction(uow, customer.id, NOTE)
        # Chat ids: her chat with the bot, her consent there, a message to a group, a blocked chat.
        customer_chats.ensure_chat(uow, PlatformId("telegram", TELEGRAM_ID), TELEGRAM_ID, "Willa")
        uow.session.add(
            Consent(
                customer_id=customer.id, platform="telegram", conversation=TELEGRAM_ID, status=ConsentStatus.OPTED_IN
            )
        )
        outbox.enqueue(
            uow,
            idempotency_key="seed:group",
            kind="notification",
            platform="telegram",
            conversation=GROUP_ID,
            payload=MessagePayload(formatted_text="hello", format="text"),
        )
        outbox.block_recipient(uow.session, "telegram", BLOCKED_ID, "Forbidden: bot was blocked by the user")
        incoming = tickets.customer_wrote(uow, customer.id, MESSAGE, channel="telegram", external_message_id="1")
        tickets.answer(uow, incoming.ticket.id, ANSWER, channel="telegram")
        customers.create_customer(uow, "Otto Other", {"email": "otto@other.example", "phone": "+33 1 44 00 12 34"})
        return customer.id


def _stored_text(engine: sa.Engine) -> str:
    """Every value of every table as the database stores it: raw SQL, so no column type decrypts."""
    values = []
    with engine.connect() as connection:
        for table in sa.inspect(connection).get_table_names():
            for row in connection.exec_driver_sql(f'SELECT * FROM "{table}"'):
                values += [str(value) for value in row]
    return "\n".join(values)


def test_the_database_holds_no_plaintext_email_phone_or_message(app, database_url):
    customer_id = _seed(app)

    stored = _stored_text(app.engine)
    for secret in SECRETS:
        assert secret not in stored, secret
    # A custom field not marked personal stays in the clear (segments filter on it).
    assert "Zymurgy" in stored
    # The readers see the plaintext.
    with app.uow(ACTOR) as uow:
        customer = uow.session.get(Customer, customer_id)
        assert customer is not None and (customer.email, customer.phone) == (EMAIL, PHONE)
        assert [m.text for m in uow.session.scalars(sa.select(TicketMessage).order_by(TicketMessage.id))] == [
            MESSAGE,
            ANSWER,
        ]
        # The note, and the ticket's messages logged as chat interactions.
        assert sorted(uow.session.scalars(sa.select(Interaction.text))) == sorted([NOTE, MESSAGE, ANSWER])
        shown = {v.definition.key: v.value for v in custom_fields.values_for(uow, FieldEntity.CUSTOMER, customer_id)}
        assert shown == {"birthday": date(1979, 4, 1), "industry": "Zymurgy"}
    if database_url.startswith("sqlite"):
        # And the file itself (the write-ahead log folded in) holds none of it either.
        app.engine.dispose()
        raw = sa.engine.make_url(database_url).database
        assert raw is not None
        with open(raw, "rb") as handle:
            content = handle.read()
        for secret in SECRETS:
            assert secret.encode() not in content, secret


def test_lookups_by_email_phone_and_last_digits_still_work(app):
    customer_id = _seed(app)
    with app.uow(ACTOR) as uow:
        assert customers.resolve_customer(uow, " W.Q.7731@Quintessential.example ").id == customer_id
        assert customers.resolve_customer(uow, "030 86753091").id == customer_id
        # The last digits, however typed: the blind index of the last six finds, the rest is checked.
        assert [hit.customer_id for hit in search.search_customers(uow.session, "753091")] == [customer_id]
        assert [hit.customer_id for hit in search.search_customers(uow.session, DIGITS)] == [customer_id]
        # Seven digits whose last six match another number's, but not the seventh: not found.
        assert search.search_customers(uow.session, "9753091") == []
        assert [hit.customer_id for hit in search.search_customers(uow.session, "@quintessential.example")] == [
            customer_id
        ]
        with pytest.raises(NotFound):
            customers.resolve_customer(uow, "nobody@quintessential.example")
        # A duplicate email is still refused, found by its blind index.
        with pytest.raises(Exception, match="already has the email"):
            customers.create_customer(uow, "Copycat", {"email": EMAIL.upper()})
    with app.uow(ACTOR) as uow:
        # A Telegram user sharing their contact is matched to the customer by the phone number.
        chat, matched = customer_chats.link_by_phone(
            uow, PlatformId("telegram", "424242"), "424242", "Willa", "+4930 867 53091"
        )
        assert matched and chat.customer_id == customer_id


def test_chat_ids_are_found_through_their_blind_indexes(app):
    customer_id = _seed(app)
    with app.uow(ACTOR) as uow:
        chat = customer_chats.chat_for(uow, PlatformId("telegram", TELEGRAM_ID))
        assert chat is not None and (chat.external_id, chat.conversation) == (TELEGRAM_ID, TELEGRAM_ID)
        assert customer_chats.chat_for(uow, PlatformId("telegram", "7319046286")) is None
        assert customer_chats.chat_for(uow, PlatformId("slack", TELEGRAM_ID)) is None
        # Writing again from the same account finds the chat, not a second placeholder.
        assert customer_chats.ensure_chat(uow, PlatformId("telegram", TELEGRAM_ID), TELEGRAM_ID, "W").id == chat.id
        # Her chat and her consent point at the same address.
        assert reachability.customers_at(uow.session, "telegram", TELEGRAM_ID) == {chat.customer_id, customer_id}
        assert consent.reachable(uow.session, customer_id, "telegram", TELEGRAM_ID)
        assert not consent.reachable(uow.session, customer_id, "telegram", GROUP_ID)
        # Deliveries look the block up by the blind index.
        assert outbox.is_blocked(uow.session, "telegram", BLOCKED_ID)
        assert not outbox.is_blocked(uow.session, "telegram", GROUP_ID)
        assert not outbox.is_blocked(uow.session, "slack", BLOCKED_ID)
        # A group's index says it is one (the sender claims fewer rows at a time for groups).
        sent = uow.session.scalars(sa.select(OutboxMessage)).one()
        assert sent.conversation == GROUP_ID and (sent.conversation_index or "").startswith(chat_ids.GROUP_MARK)
        assert not (chat.conversation_index or "").startswith(chat_ids.GROUP_MARK)
        # /stop from the chat reaches the customer behind it by their user id.
        stopped = consent.opt_out_address(uow, "telegram", "elsewhere", "/stop", user_external_id=TELEGRAM_ID)
        assert stopped.customers == 1
    with app.uow(ACTOR) as uow:
        # A chat renumbered by the platform (a group becoming a supergroup): found under its new id.
        reachability.chat_moved(uow, "telegram", TELEGRAM_ID, GROUP_ID)
    with app.uow(ACTOR) as uow:
        assert reachability.customers_at(uow.session, "telegram", TELEGRAM_ID) == set()
        assert reachability.customers_at(uow.session, "telegram", GROUP_ID) == {chat.customer_id, customer_id}
        assert consent.reachable(uow.session, customer_id, "telegram", GROUP_ID)
        moved = uow.session.get(CustomerChat, chat.id)
        assert moved is not None and (moved.external_id, moved.conversation) == (TELEGRAM_ID, GROUP_ID)
        # The one who blocked the bot writes again: the block is lifted.
        assert outbox.unblock_recipient(uow.session, "telegram", BLOCKED_ID)
        assert not outbox.is_blocked(uow.session, "telegram", BLOCKED_ID)
    stored = _stored_text(app.engine)
    for chat_id in (TELEGRAM_ID, GROUP_ID, BLOCKED_ID):
        assert chat_id not in stored, chat_id


def test_comparing_an_encrypted_column_with_a_value_fails_where_the_query_is_built():
    # Every encryption of a value differs, so such a query could never match: a bug, stopped early.
    with pytest.raises(TypeError, match="blind index"):
        Customer.email == EMAIL  # noqa: B015
    for chat_id in (
        CustomerChat.external_id,
        CustomerChat.conversation,
        Consent.conversation,
        CampaignRecipient.conversation,
        OutboxMessage.conversation,
        BlockedRecipient.conversation,
    ):
        with pytest.raises(TypeError, match="blind index"):
            chat_id == TELEGRAM_ID  # noqa: B015
    assert str(Customer.email.is_(None)) == "customers.email IS NULL"


def test_rotation_reencrypts_everything_and_the_old_key_can_then_go(app, database_url, monkeypatch, capsys):
    customer_id = _seed(app)
    with app.uow(ACTOR) as uow:
        uow.session.add(WebhookEndpoint(url="https://hooks.example/x", events=["*"], secret="whsec_c2VjcmV0"))
    before = _stored_text(app.engine)
    old_id = field_crypto.FieldKeys([TEST_SECRET_KEY.encode()]).current.key_id
    new_id = field_crypto.FieldKeys([NEW_KEY.encode()]).current.key_id
    app.close()

    # The new key alone does not open what the old one wrote: one line saying what to do.
    with pytest.raises(FieldKeyError) as refused:
        build_app(replace(app.settings, secret_key=NEW_KEY))
    assert str(refused.value).startswith("CHATCRM_SECRET_KEY does not open the stored personal data")
    assert old_id in str(refused.value) and "chatcrm keys rotate" in str(refused.value)

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CHATCRM_SECRET_KEY", f"{NEW_KEY},{TEST_SECRET_KEY}")
    assert cli_main(["keys", "status"]) == 0
    status = capsys.readouterr().out
    assert f"customers.email: 2 under {old_id}" in status and "run `chatcrm keys rotate`" in status
    # While both keys are configured, the new one writes and lookups find rows under either key.
    both = build_app(replace(app.settings, secret_key=f"{NEW_KEY},{TEST_SECRET_KEY}"))
    try:
        with both.uow(ACTOR) as uow:
            assert customers.resolve_customer(uow, EMAIL).id == customer_id
            assert customer_chats.chat_for(uow, PlatformId("telegram", TELEGRAM_ID)) is not None
            fresh = customers.create_customer(uow, "Nora New", {"email": "nora@new.example", "phone": "+1 555 0100 77"})
        with both.uow(ACTOR) as uow:
            assert customers.resolve_customer(uow, "nora@new.example").id == fresh.id
    finally:
        both.close()

    assert cli_main(["keys", "rotate", "--batch", "2"]) == 0
    rotated = capsys.readouterr().out
    assert f"under key id {new_id}" in rotated and f"No data is left under key id {old_id}" in rotated
    assert cli_main(["keys", "rotate"]) == 0
    assert "Re-encrypted 0 rows" in capsys.readouterr().out

    monkeypatch.setenv("CHATCRM_SECRET_KEY", NEW_KEY)
    assert cli_main(["keys", "status"]) == 0
    assert "Every value is under the current key." in capsys.readouterr().out
    only_new = build_app(replace(app.settings, secret_key=NEW_KEY))
    try:
        after = _stored_text(only_new.engine)
        assert f"{field_crypto.PREFIX}{old_id}$" in before and f"{field_crypto.PREFIX}{old_id}$" not in after
        for secret in SECRETS:
            assert secret not in after, secret
        with only_new.uow(ACTOR) as uow:
            customer = customers.resolve_customer(uow, EMAIL)
            assert (customer.id, customer.phone) == (customer_id, PHONE)
            assert customers.resolve_customer(uow, "86753091").id == customer_id
            # The chat ids' blind indexes were recomputed under the new key.
            chat = customer_chats.chat_for(uow, PlatformId("telegram", TELEGRAM_ID))
            assert chat is not None and chat.conversation == TELEGRAM_ID
            assert [m.text for m in uow.session.scalars(sa.select(TicketMessage).order_by(TicketMessage.id))] == [
                MESSAGE,
                ANSWER,
            ]
            assert uow.session.scalars(sa.select(WebhookEndpoint.secret)).all() == ["whsec_c2VjcmV0"]
            # The audit log's personal values: their data keys were re-wrapped with the new key.
            assert customer_keys.data_key(
                uow.session.connection(), {KEYRING: Keyring([NEW_KEY.encode()])}, customer_id, create=False
            )
    finally:
        only_new.close()


def test_a_wrong_key_is_one_clear_line_at_start(app, database_url, monkeypatch, capsys):
    _seed(app)
    app.close()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CHATCRM_SECRET_KEY", "definitely-not-the-key-it-was-written-with")
    assert cli_main(["console"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("chatcrm: CHATCRM_SECRET_KEY does not open the stored personal data")


def test_a_database_opened_with_another_key_but_never_written_lets_the_new_key_in(database_url):
    first = build_app(Settings(database_url=database_url, secret_key="first-key-never-used-for-data"))
    first.close()
    second = build_app(Settings(database_url=database_url, secret_key=TEST_SECRET_KEY))
    try:
        _seed(second)
    finally:
        second.close()


def test_postgresql_without_a_key_refuses_to_start_in_one_line(database_url):
    if database_url.startswith("sqlite"):
        # The embedded database generates its key next to the file instead (tests/test_backup.py).
        pytest.skip("PostgreSQL only")
    with pytest.raises(SecretKeyError) as refused:
        build_app(Settings(database_url=database_url))
    assert str(refused.value).startswith("CHATCRM_SECRET_KEY is not set: with PostgreSQL chatcrm does not start")
    assert "\n" not in str(refused.value)


def test_an_engine_without_keys_refuses_to_write_personal_data(database_url):
    from crm_core import db
    from crm_core.uow import UnitOfWork

    engine = db.create_engine(database_url)
    try:
        with pytest.raises(FieldKeyError, match="no CHATCRM_SECRET_KEY"):
            with UnitOfWork(db.session_factory(engine), ACTOR) as uow:
                customers.create_customer(uow, "Plain Text", {"email": "plain@text.example"})
    finally:
        engine.dispose()


def test_a_personal_custom_field_cannot_be_filtered_on_and_says_why(app):
    from crm_core.campaigns import filters
    from crm_core.campaigns.filters import FilterError

    _seed(app)
    with app.uow(ACTOR) as uow:
        # Not personal: filtered as before.
        assert filters.compile_filter(uow.session, filters.parse("field.industry=zymurgy")) is not None
        with pytest.raises(FilterError) as refused:
            filters.compile_filter(uow.session, filters.parse("field.birthday=1979-04-01"))
    assert "field.birthday is personal: it is stored encrypted and cannot be filtered on" in refused.value.message


def test_a_backup_restored_into_the_other_database_kind_opens_with_the_same_key(app, other_url, tmp_path):
    from crm_core import backup

    customer_id = _seed(app)
    path = tmp_path / "encrypted.backup"
    backup.backup_to_file(app.engine, path, TEST_SECRET_KEY.encode())
    restored_engine = db.create_engine(other_url)
    try:
        with path.open("rb") as source:
            backup.restore(restored_engine, source, [TEST_SECRET_KEY.encode()])
        # The ciphertext travelled as it was stored: still nothing readable in the other database.
        stored = _stored_text(restored_engine)
        for secret in SECRETS:
            assert secret not in stored, secret
    finally:
        restored_engine.dispose()
    restored = build_app(Settings(database_url=other_url, secret_key=TEST_SECRET_KEY))
    try:
        with restored.uow(ACTOR) as uow:
            assert customers.resolve_customer(uow, EMAIL).id == customer_id
            assert customers.resolve_customer(uow, "753091").phone == PHONE
            texts = uow.session.scalars(sa.select(TicketMessage.text).order_by(TicketMessage.id)).all()
            assert texts == [MESSAGE, ANSWER]
    finally:
        restored.close()


def test_a_customer_writing_to_the_telegram_bot_leaves_no_chat_id_in_the_clear(webhook_rig):
    """Through the real Telegram path: /start (consent), a message (placeholder customer, ticket,
    relay, acknowledgement in the outbox), and the staff's answer back to the customer."""
    rig, tg = webhook_rig, webhook_rig.fake
    sam = rig.staff(900, "Sam Support")
    customer_id = 7480213965
    carla = rig.customer(customer_id, "Carla Customer")

    rig.send(tg.private_text(carla, "/start"))
    rig.send(tg.private_text(carla, "My printer jams"))
    relay = tg.last_sent(SUPPORT_CHAT)
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "Open tray 2", reply_to=tg.message(relay)))
    assert tg.last_sent(customer_id).text == "Open tray 2"

    stored = _stored_text(rig.app.engine)
    assert str(customer_id) not in stored
    with rig.app.uow(ACTOR) as uow:
        chat = customer_chats.chat_for(uow, PlatformId("telegram", str(customer_id)))
        assert chat is not None and chat.conversation == str(customer_id)
        assert uow.session.scalars(sa.select(Consent.conversation)).all() == [str(customer_id)]
